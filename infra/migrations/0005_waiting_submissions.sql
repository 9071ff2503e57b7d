-- The submissions waiting to be read, oldest first: the sweep pages through them
-- (api/submissions/jobs.py enqueue_pending) and `golos worker` counts them for its
-- progress bar. A partial index holds only the backlog, so paging it stays cheap
-- when the table holds a million read photos; the unique index on seq lets the
-- progress bar find the newest submission and those after it with a seek.
-- Built CONCURRENTLY, outside a transaction: on a live table the build must not
-- block uploads (a plain CREATE INDEX holds off every INSERT until it is done).
-- depends: 0004_photo_fingerprints
-- transactional: false

CREATE INDEX CONCURRENTLY IF NOT EXISTS submissions_waiting ON submissions (seq)
    WHERE status = 'received';
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS submissions_seq ON submissions (seq);
