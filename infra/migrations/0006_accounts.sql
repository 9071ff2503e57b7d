-- People's accounts (observers, analysts, admins), their browser sessions, their
-- scripts' API tokens, and failed logins kept for rate limiting. Voters have no
-- account (api/voters). Secrets are stored only as hashes: a password as argon2id,
-- a session or token as the SHA-256 of a 256-bit random value (a fast hash suffices
-- for a value nobody can guess).
-- depends: 0005_waiting_submissions

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{1,39}$'),
    role          text NOT NULL CHECK (role IN ('observer', 'analyst', 'admin')),
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_sha256 bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    token_sha256 bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id),
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked      boolean NOT NULL DEFAULT false
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- One row per failed login: the username tried and the caller's network, kept only
-- as a keyed hash of its /24 (IPv4) or /48 (IPv6) prefix (api.accounts.service.
-- network_key); rows older than the rate-limit window are deleted as logins happen.
CREATE TABLE login_failures (
    username  text NOT NULL,
    network   bytea NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username ON login_failures (username, failed_at);
CREATE INDEX login_failures_network ON login_failures (network, failed_at);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);
