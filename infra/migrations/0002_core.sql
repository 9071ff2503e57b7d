-- Elections, precincts, official results, submissions, flags.
-- depends: 0001_procrastinate

CREATE TABLE elections (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$'),
    name            text NOT NULL,
    election_date   date,
    definition      jsonb NOT NULL,
    ballot_template jsonb,
    ballot_reference_sha256 text,
    protocol_template jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE options (
    election_id text NOT NULL REFERENCES elections (id) ON DELETE CASCADE,
    id          text NOT NULL CHECK (id ~ '^[a-z0-9_]+$'),
    label       text NOT NULL,
    position    integer NOT NULL,
    PRIMARY KEY (election_id, id)
);

CREATE TABLE precincts (
    election_id text NOT NULL REFERENCES elections (id) ON DELETE CASCADE,
    id          text NOT NULL,
    region      text NOT NULL,
    district    text NOT NULL,
    name        text,
    registered  integer CHECK (registered >= 0),
    attributes  jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (election_id, id)
);

-- Every import of official figures is kept; exactly one per election is current.
CREATE TABLE official_imports (
    id           bigserial PRIMARY KEY,
    election_id  text NOT NULL REFERENCES elections (id) ON DELETE CASCADE,
    filename     text NOT NULL,
    sha256       text NOT NULL,
    row_count    integer NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    replaces     bigint REFERENCES official_imports (id),
    is_current   boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX official_imports_one_current
    ON official_imports (election_id) WHERE is_current;

CREATE TABLE official_results (
    import_id            bigint NOT NULL REFERENCES official_imports (id) ON DELETE CASCADE,
    election_id          text NOT NULL,
    precinct_id          text NOT NULL,
    registered           integer CHECK (registered >= 0),
    ballots_issued       integer CHECK (ballots_issued >= 0),
    ballots_cast         integer CHECK (ballots_cast >= 0),
    invalid              integer CHECK (invalid >= 0),
    ballots_issued_early integer CHECK (ballots_issued_early >= 0),
    ballots_issued_home  integer CHECK (ballots_issued_home >= 0),
    ballots_received     integer CHECK (ballots_received >= 0),
    ballots_cancelled    integer CHECK (ballots_cancelled >= 0),
    PRIMARY KEY (import_id, precinct_id),
    FOREIGN KEY (election_id, precinct_id) REFERENCES precincts (election_id, id)
);

CREATE TABLE official_votes (
    import_id   bigint NOT NULL,
    precinct_id text NOT NULL,
    option_id   text NOT NULL,
    votes       integer CHECK (votes >= 0),
    PRIMARY KEY (import_id, precinct_id, option_id),
    FOREIGN KEY (import_id, precinct_id)
        REFERENCES official_results (import_id, precinct_id) ON DELETE CASCADE
);

CREATE VIEW current_official_results AS
    SELECT r.* FROM official_results r
    JOIN official_imports i ON i.id = r.import_id AND i.is_current;

CREATE VIEW current_official_votes AS
    SELECT i.election_id, v.precinct_id, v.option_id, v.votes FROM official_votes v
    JOIN official_imports i ON i.id = v.import_id AND i.is_current;

-- A voter's ballot photo. No phone number, IP address or user agent is kept:
-- voter_key is an HMAC of the voter's identifier under a server-side secret,
-- and times are coarsened to the hour.
CREATE TABLE submissions (
    id               uuid PRIMARY KEY,
    election_id      text NOT NULL,
    precinct_id      text NOT NULL,
    declared_choice  text[] NOT NULL,
    request_digest   text NOT NULL,
    photo_sha256     text NOT NULL,
    voter_key        bytea,
    status           text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'verified', 'review', 'rejected', 'superseded')),
    reasons          text[] NOT NULL DEFAULT '{}',
    marks            text[],
    reading          jsonb,
    received_hour    timestamptz NOT NULL DEFAULT date_trunc('hour', now()),
    seq              bigserial,
    FOREIGN KEY (election_id, precinct_id) REFERENCES precincts (election_id, id)
);
CREATE INDEX submissions_status ON submissions (election_id, status);
CREATE INDEX submissions_tally ON submissions (election_id, precinct_id) WHERE status = 'verified';
CREATE INDEX submissions_voter ON submissions (election_id, voter_key) WHERE voter_key IS NOT NULL;

-- The first submission of a photo owns it; later copies are duplicates.
CREATE TABLE photo_owners (
    election_id   text NOT NULL,
    photo_sha256  text NOT NULL,
    submission_id uuid NOT NULL REFERENCES submissions (id),
    PRIMARY KEY (election_id, photo_sha256)
);

CREATE TABLE flags (
    id            bigserial PRIMARY KEY,
    election_id   text NOT NULL REFERENCES elections (id) ON DELETE CASCADE,
    precinct_id   text NOT NULL,
    flag          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('proof', 'statistical')),
    option_id     text NOT NULL DEFAULT '',
    source        text NOT NULL,
    crowd         integer,
    official      integer,
    statistic     double precision,
    p_value       double precision,
    q_value       double precision,
    detail        text NOT NULL,
    review_status text NOT NULL DEFAULT 'open'
        CHECK (review_status IN ('open', 'confirmed', 'dismissed')),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (election_id, precinct_id, flag, option_id, source)
);
