-- A submission's photo is stored without its metadata: JPEG and PNG uploads are
-- stripped of their EXIF block (GPS position, device, times) without re-encoding
-- (ocr/strip.py), so the picture's EXIF orientation is kept here instead, read
-- before stripping, and applied by the worker when it decodes the photo. NULL:
-- the stored picture is upright as it is (no orientation, 1, or a re-encoded photo).
-- depends: 0012_rate_limits

ALTER TABLE submissions
    ADD COLUMN photo_orientation smallint
    CHECK (photo_orientation BETWEEN 2 AND 8);
