-- The quarantine (api/submissions/abuse.py): submissions from identities or
-- networks beyond plausible thresholds, or in implausible bursts at one station,
-- are held. A held submission that would count is 'quarantined' instead: it does
-- not count until two observers approve it in the review (api/review).
--
-- Nothing here names anyone. The counts behind a hold are the sliding-window
-- counters of rate_limits (migration 0012; keyed hashes, coarse windows, deleted
-- once they weigh in nothing). A hold keeps only why (reason codes, never a key
-- or a time). burst_arrivals lists which recent submissions came in one group (a
-- network at one station, one station) under a keyed hash of the group, in
-- windows as coarse as the threshold's, so that a group crossing its threshold
-- holds its earlier members too; a row is deleted once its window ends.
-- The flags say how many distinct verified identities stand behind a crowd count
-- (flags.identities; tally/proof.py).
-- depends: 0012_rate_limits

-- A constraint added NOT VALID takes its table's lock for a moment only; the rows
-- already there are checked by 0015_quarantine_indexes (VALIDATE does not block
-- writes).
ALTER TABLE submissions DROP CONSTRAINT IF EXISTS submissions_status_check;
ALTER TABLE submissions ADD CONSTRAINT submissions_status_check
    CHECK (status IN ('received', 'verified', 'review', 'rejected', 'superseded',
                      'quarantined')) NOT VALID;

CREATE TABLE submission_holds (
    submission_id uuid PRIMARY KEY REFERENCES submissions (id) ON DELETE CASCADE,
    reasons       text[] NOT NULL CHECK (cardinality(reasons) > 0)
);

CREATE TABLE burst_arrivals (
    group_key     bytea NOT NULL CHECK (length(group_key) = 16),
    window_start  timestamptz NOT NULL,
    submission_id uuid NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (group_key, window_start, submission_id)
);
CREATE INDEX burst_arrivals_expires ON burst_arrivals (expires_at);
CREATE INDEX burst_arrivals_submission ON burst_arrivals (submission_id);

-- The distinct verified identities behind a crowd figure (crowd_exceeds_official
-- from the platform's photos); empty for every other flag.
ALTER TABLE flags ADD COLUMN identities integer CHECK (identities >= 0);
