-- The page's pose (ocr.ink.page_pose: the directions of its four sides in the
-- photo, degrees) beside a read photo's near-duplicate keys, so the lookup
-- (api/submissions/duplicates.py, confirmation_order) confirms first the
-- candidates lying in the frame as the new photo does. A re-saved, rescaled,
-- cropped or brightened copy keeps its original's pose to a tenth of a degree;
-- two honest photos lie within ocr.reader.NEAR_DUPLICATE_POSE_DEG of each other in
-- about 1 pair in 2,000. A brightened copy whose paper clipped has no paper key
-- to prune its ~200 look-alikes at a million photos, and was confirming dozens of
-- them before its original (bench/near_duplicates.py).
--
-- NULL: recorded before this column (no backfill: rewriting every row is no job
-- for election night) or read without a pose; such a row is ordered on the
-- stroke keys alone, as before. Adding a nullable column rewrites nothing.
-- depends: 0019_queue_without_insert_notify

SET LOCAL lock_timeout = '5s';
ALTER TABLE photo_fingerprints ADD COLUMN pose real[];
