-- The audit trail: every review decision, override and account change, appended
-- in order; each entry carries the SHA-256 of the previous entry (api/audit).
-- Nothing updates, deletes or truncates an entry: the triggers below refuse it for
-- every role, the owner included (only disabling the trigger, which a person with
-- the database owner's rights can do and `golos audit verify` then catches, gets
-- round it).
-- depends: 0006_accounts

CREATE TABLE audit_log (
    seq        bigint PRIMARY KEY CHECK (seq >= 1),
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    subject    text NOT NULL,
    detail     jsonb NOT NULL,
    prev_hash  text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash       text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
