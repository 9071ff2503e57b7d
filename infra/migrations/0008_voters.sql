-- Voters' verified identities (api/voters). A voter has no account: they prove a
-- phone number with a one-time code (the verifier sends it) and receive a device
-- token. Nothing here names a voter: the phone number is kept only as its keyed
-- hash per election (the same voter_key as on their submissions), the code only as
-- its keyed hash, the token only as its SHA-256. Challenges serve abuse control
-- (attempts, the per-hour limit) and are deleted once older than the limit's window.
-- depends: 0007_audit

CREATE TABLE voter_challenges (
    id          uuid PRIMARY KEY,
    election_id text NOT NULL REFERENCES elections (id) ON DELETE CASCADE,
    voter_key   bytea NOT NULL CHECK (length(voter_key) = 32),
    code_hash   bytea NOT NULL CHECK (length(code_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    used        boolean NOT NULL DEFAULT false
);
CREATE INDEX voter_challenges_voter ON voter_challenges (election_id, voter_key, created_at);
CREATE INDEX voter_challenges_created ON voter_challenges (created_at);

CREATE TABLE device_tokens (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    election_id  text NOT NULL REFERENCES elections (id) ON DELETE CASCADE,
    voter_key    bytea NOT NULL CHECK (length(voter_key) = 32),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX device_tokens_expires ON device_tokens (expires_at);
