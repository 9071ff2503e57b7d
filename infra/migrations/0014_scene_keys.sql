-- The near-duplicate index's second key (api/submissions/duplicates.py): a 256-bit
-- SimHash of the strokes' finer detail (ocr.scene.scene_key), independent of the
-- first (the fingerprint). A candidate is surfaced only when both keys are near,
-- so at a million photos the look-alike honest ballots that share the first key
-- no longer each cost a confirmation. Kept in the band rows too, so that the
-- lookup checks it in the same index-only scan (0014_scene_keys_index): 32 more
-- bytes per band row, which the lookup reads anyway.
--
-- NULL: the photo was recorded before the second key existed (or its reading has
-- no scene descriptor); such a row is compared on the first key alone, as before.
-- Its key can be computed again from the stored reading (submissions.reading ->
-- 'scene'), but an old row left NULL loses nothing: it is only surfaced more
-- often, and every candidate is confirmed on the scene evidence anyway.
-- depends: 0013_photo_orientation

ALTER TABLE photo_fingerprints ADD COLUMN scene_key bit(256);
ALTER TABLE photo_fingerprint_bands ADD COLUMN scene_key bit(256);
