-- The quarantine's review queue (api/review) and the check of the submissions'
-- new status constraint, outside a transaction like 0005 and 0010: on a live
-- election neither may block uploads.
-- depends: 0015_quarantine
-- transactional: false

ALTER TABLE submissions VALIDATE CONSTRAINT submissions_status_check;
CREATE INDEX CONCURRENTLY IF NOT EXISTS submissions_quarantine_queue ON submissions
    (election_id, seq) WHERE status = 'quarantined';
