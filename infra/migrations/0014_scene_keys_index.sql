-- The lookup index again, now carrying the second key, so the lookup checks both
-- keys' distances without visiting the heap; built beside the old one and then
-- the old one dropped, outside a transaction like 0005, 0010 and 0015: on a live
-- election neither may block the worker's inserts.
-- depends: 0014_scene_keys
-- transactional: false

-- A build that failed part-way leaves an INVALID index of that name, and this file
-- unrecorded: run again, it drops that one first (a valid one from a run that
-- failed later is only built again), never the old index before the new is whole.
DROP INDEX CONCURRENTLY IF EXISTS photo_fingerprint_bands_keys;
CREATE INDEX CONCURRENTLY photo_fingerprint_bands_keys
    ON photo_fingerprint_bands (election_id, band_bits, band_no, band_value)
    INCLUDE (fingerprint, scene_key, submission_id);
DROP INDEX CONCURRENTLY IF EXISTS photo_fingerprint_bands_lookup;
