-- The observers' queues' indexes (api/review), on the two busiest tables.
-- Built CONCURRENTLY, outside a transaction, like 0005: on a live election a plain
-- CREATE INDEX on submissions would block every upload until it is done.
-- depends: 0009_review
-- transactional: false

CREATE INDEX CONCURRENTLY IF NOT EXISTS flags_review_queue ON flags
    (election_id, review_flag_rank(kind, crowd, official, q_value, p_value), id);
-- The status filter is the common one ("what is still open"): its own order.
CREATE INDEX CONCURRENTLY IF NOT EXISTS flags_review_queue_status ON flags
    (election_id, review_status, review_flag_rank(kind, crowd, official, q_value, p_value), id);
-- One station's flags (the station page).
CREATE INDEX CONCURRENTLY IF NOT EXISTS flags_precinct ON flags (election_id, precinct_id);

CREATE INDEX CONCURRENTLY IF NOT EXISTS submissions_review_queue ON submissions
    (election_id, review_submission_rank(reasons), seq) WHERE status = 'review';
-- A station's verified photos (the station page's thumbnails), newest first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS submissions_station_verified ON submissions
    (election_id, precinct_id, seq) WHERE status = 'verified';
