-- The lookup index again, now carrying the second key, so the lookup checks both
-- keys' distances without visiting the heap; built beside the old one and then
-- the old one dropped, outside a transaction like 0005, 0010 and 0015: on a live
-- election neither may block the worker's inserts.
-- depends: 0014_scene_keys
-- transactional: false

CREATE INDEX CONCURRENTLY IF NOT EXISTS photo_fingerprint_bands_keys
    ON photo_fingerprint_bands (election_id, band_bits, band_no, band_value)
    INCLUDE (fingerprint, scene_key, submission_id);
DROP INDEX CONCURRENTLY IF EXISTS photo_fingerprint_bands_lookup;
