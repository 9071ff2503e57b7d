-- Rate limits (infra/ratelimit.py, this table's one owner): how many times a key
-- did something in a fixed window, for the sliding-window counters of the limits
-- per verified voter, per network and per anonymous caller. Nothing here names
-- anyone: a key is a keyed hash (a voter's voter_key, an HMAC of a network's /24
-- or /48 prefix), never a number or an address, and a window is as coarse as the
-- limit's (minutes to an hour), never the time of one request. A row is deleted
-- once it no longer weighs in any limit (expires_at: the end of the next window).
-- depends: 0010_review_indexes

CREATE TABLE rate_limits (
    scope        text NOT NULL,
    key          bytea NOT NULL CHECK (length(key) BETWEEN 16 AND 32),
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL CHECK (hits >= 0),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key, window_start)
);
CREATE INDEX rate_limits_expires ON rate_limits (expires_at);
