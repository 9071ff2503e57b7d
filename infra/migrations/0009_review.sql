-- The observers' review (api/review): decisions on submissions in review and on
-- flags, the two-person rule's proposals, and the sort keys its two queues read.
-- depends: 0007_audit

-- "Ask for more evidence" is a flag's fourth review status (tally.vocab.ReviewStatus).
ALTER TABLE flags DROP CONSTRAINT IF EXISTS flags_review_status_check;
ALTER TABLE flags ADD CONSTRAINT flags_review_status_check
    CHECK (review_status IN ('open', 'confirmed', 'dismissed', 'more_evidence'));

-- The queues' sort keys (strength of evidence, strongest first: ascending), as
-- IMMUTABLE functions of a row's own columns so that an expression index holds
-- them and a page is an index range scan (keyset pagination), not a sort of the
-- whole queue. The reasoning behind each order is in api/review/service.py.

-- Flags: proof before statistical; proof by how far the crowd exceeds the official
-- figure (more first), statistical by q-value, else p-value (smaller first); a
-- statistical lead with neither (a declared source's count) after those, a larger
-- excess first.
CREATE FUNCTION review_flag_rank(
    kind text, crowd integer, official integer, q_value double precision,
    p_value double precision
) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN kind = 'proof' THEN -1.0 - greatest(coalesce(crowd - official, 0), 0)
        WHEN q_value IS NOT NULL OR p_value IS NOT NULL THEN coalesce(q_value, p_value)
        ELSE 1.0 + 1.0 / (1 + greatest(coalesce(crowd - official, 0), 0))
    END
$$;

-- Submissions in review: a re-used photo first (the group is then ordered by
-- fingerprint distance, from photo_fingerprints), then a reading that contradicts
-- the declared choice, then an unreadable photo, then anything else.
CREATE FUNCTION review_submission_rank(reasons text[]) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN 'near_duplicate_photo' = ANY (reasons) THEN 0
        WHEN 'choice_mismatch' = ANY (reasons) THEN 1
        WHEN 'unreadable' = ANY (reasons) THEN 2
        ELSE 3
    END::smallint
$$;

-- The queues' indexes on flags and submissions are built CONCURRENTLY by
-- 0010_review_indexes (a plain build on a live election would hold off uploads).

-- Every decision an observer or admin takes, one row each. A decision under the
-- two-person rule starts 'proposed' and becomes 'final' when a second observer
-- agrees, 'disagreed' when one disagrees, 'overridden' when an admin decides
-- otherwise, 'stale' when its subject changed under it (the flag's numbers moved,
-- the submission was decided otherwise). Other decisions are 'final' at once.
-- The audit log (api/audit) records the same events, hash-chained.
--
-- No foreign key to the subject: a flag the flag stage no longer finds is deleted
-- (tally.repository.store_flags) and its history stays here and in the audit log.
CREATE TABLE review_decisions (
    id            bigserial PRIMARY KEY,
    election_id   text NOT NULL REFERENCES elections (id) ON DELETE CASCADE,
    precinct_id   text NOT NULL,
    subject       text NOT NULL CHECK (subject ~ '^(submission|flag):[0-9a-f-]+$'),
    action        text NOT NULL CHECK (action IN (
                      'count_read', 'count_declared', 'reject',
                      'confirm', 'dismiss', 'more_evidence')),
    reason        text,
    note          text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    -- What the decision was about: a flag's (crowd, official, detail) when proposed;
    -- agreeing to it when the numbers have changed since is refused.
    evidence      jsonb NOT NULL DEFAULT '{}',
    state         text NOT NULL CHECK (state IN (
                      'proposed', 'final', 'disagreed', 'overridden', 'stale')),
    proposed_by   bigint NOT NULL REFERENCES users (id),
    proposer      text NOT NULL,
    proposed_at   timestamptz NOT NULL DEFAULT now(),
    decided_by    bigint REFERENCES users (id),
    decider       text,
    decided_note  text CHECK (length(decided_note) <= 2000),
    decided_at    timestamptz,
    -- Finalised by an admin alone, without a second observer.
    override      boolean NOT NULL DEFAULT false
);
-- At most one proposal awaits agreement per subject.
CREATE UNIQUE INDEX review_decisions_one_proposal
    ON review_decisions (subject) WHERE state = 'proposed';
CREATE INDEX review_decisions_awaiting
    ON review_decisions (election_id, id) WHERE state = 'proposed';
CREATE INDEX review_decisions_subject ON review_decisions (subject, id);
