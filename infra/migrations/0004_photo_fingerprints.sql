-- Perceptual fingerprints of read ballot photos, to find near-duplicates: a
-- re-saved, rescaled or cropped copy of a photo that an earlier submission of the
-- election already sent (api/submissions/duplicates.py).
-- depends: 0003_crowd_sources_and_tallies

-- One row per submission whose photo was read and decided 'verified' or 'review'
-- (it may be 'superseded' since). The fingerprint is the reader's 64-bit hash as a
-- two's-complement bigint. near_duplicate_of is the earlier submission it was found
-- to match (then this one went to review), for the reviewer to see both.
CREATE TABLE photo_fingerprints (
    submission_id     uuid PRIMARY KEY REFERENCES submissions (id),
    election_id       text NOT NULL,
    fingerprint       bigint NOT NULL,
    near_duplicate_of uuid REFERENCES submissions (id),
    distance          smallint CHECK (distance BETWEEN 0 AND 64)
);
CREATE INDEX photo_fingerprints_near_duplicate_of
    ON photo_fingerprints (near_duplicate_of) WHERE near_duplicate_of IS NOT NULL;

-- The lookup index (pigeonhole banding): the 64 bits are cut into k+1 bands
-- (k = ocr.reader.NEAR_DUPLICATE_BITS, cut for at band_bits); two hashes within k
-- bits agree exactly on at least one band, so the candidates are the rows equal to
-- the new hash on some band, and the exact Hamming distance confirms them.
--
-- Why a table of (election, band, value) rows under a btree rather than an int[]
-- column under GIN: the btree leads with election_id (a GIN index cannot without
-- the btree_gin extension, which the platform's role may not create), each band
-- is one equality range seek, INCLUDE (fingerprint, submission_id) lets the
-- candidates be confirmed by an index-only scan without visiting the heap, and
-- btree inserts stay cheap and predictable where GIN defers them to a pending list
-- that lookups must scan. band_bits in the key makes rows cut for another k
-- invisible to lookups; duplicates.py re-cuts them when the constant changes.
--
-- Derived data of photo_fingerprints, written and deleted with it (no foreign
-- key: checking one on every delete would need yet another index on the largest
-- table, k+1 rows per photo).
CREATE TABLE photo_fingerprint_bands (
    election_id   text NOT NULL,
    band_bits     smallint NOT NULL CHECK (band_bits BETWEEN 0 AND 63),
    band_no       smallint NOT NULL,
    band_value    bigint NOT NULL,
    submission_id uuid NOT NULL,
    fingerprint   bigint NOT NULL
);
CREATE INDEX photo_fingerprint_bands_lookup
    ON photo_fingerprint_bands (election_id, band_bits, band_no, band_value)
    INCLUDE (fingerprint, submission_id);
