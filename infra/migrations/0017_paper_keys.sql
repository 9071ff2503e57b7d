-- The near-duplicate index's paper key (api/submissions/duplicates.py): the signs
-- of a 512-value sketch of the sheet's own texture (ocr.scene.paper_key), which
-- no two sheets share and every copy of a photo keeps. The lookup surfaces a
-- candidate only when its paper key is near too, so at a million photos the
-- honest look-alike marks that pass both stroke keys are turned away in SQL
-- instead of each costing a confirmation. Kept in photo_fingerprints only (the
-- band rows and their index are untouched): the lookup reads that row by its
-- primary key for the few candidates the bands surface.
--
-- NULL: recorded before the key existed, or too little paper showed; such a row
-- is surfaced on the stroke keys alone, as before, and confirmed on the scene.
-- Adding a nullable column with no default rewrites nothing; the lock it takes is
-- brief, but it must not queue behind a long transaction on election night.
-- depends: 0015_quarantine_indexes

SET LOCAL lock_timeout = '5s';
ALTER TABLE photo_fingerprints ADD COLUMN paper_key bit(512);
