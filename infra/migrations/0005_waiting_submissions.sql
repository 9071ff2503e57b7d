-- The submissions waiting to be read, oldest first: the sweep pages through them
-- (api/submissions/jobs.py enqueue_pending) and `golos worker` counts them for its
-- progress bar. A partial index holds only the backlog, so both stay seeks when
-- the table holds a million read photos.
-- depends: 0004_photo_fingerprints

CREATE INDEX submissions_waiting ON submissions (seq) WHERE status = 'received';
CREATE UNIQUE INDEX submissions_seq ON submissions (seq);
