-- Crowd tallies imported from elsewhere (crowd-tallies/1), and the platform's
-- own photo tallies kept up to date as each photo is verified.
-- depends: 0002_core

CREATE TABLE crowd_imports (
    id           bigserial PRIMARY KEY,
    election_id  text NOT NULL REFERENCES elections (id) ON DELETE CASCADE,
    source       text NOT NULL CHECK (source NOT IN ('photos', 'protocol')),
    level        text NOT NULL CHECK (level IN ('verified', 'declared')),
    filename     text NOT NULL,
    sha256       text NOT NULL,
    row_count    integer NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    replaces     bigint REFERENCES crowd_imports (id),
    is_current   boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX crowd_imports_one_current
    ON crowd_imports (election_id, source) WHERE is_current;

CREATE TABLE crowd_counts (
    import_id   bigint NOT NULL REFERENCES crowd_imports (id) ON DELETE CASCADE,
    election_id text NOT NULL,
    precinct_id text NOT NULL,
    option_id   text NOT NULL,
    votes       integer CHECK (votes >= 0),
    PRIMARY KEY (import_id, precinct_id, option_id),
    FOREIGN KEY (election_id, precinct_id) REFERENCES precincts (election_id, id)
);

CREATE VIEW current_crowd_counts AS
    SELECT i.election_id, i.source, i.level, c.precinct_id, c.option_id, c.votes
    FROM crowd_counts c JOIN crowd_imports i ON i.id = c.import_id AND i.is_current;

-- Verified photo votes per station and option, and verified voters per station.
CREATE TABLE photo_tallies (
    election_id text NOT NULL,
    precinct_id text NOT NULL,
    option_id   text NOT NULL,
    votes       integer NOT NULL CHECK (votes >= 0),
    PRIMARY KEY (election_id, precinct_id, option_id)
);
CREATE TABLE photo_voters (
    election_id text NOT NULL,
    precinct_id text NOT NULL,
    voters      integer NOT NULL CHECK (voters >= 0),
    PRIMARY KEY (election_id, precinct_id)
);

INSERT INTO photo_tallies (election_id, precinct_id, option_id, votes)
    SELECT election_id, precinct_id, mark, count(*)
    FROM submissions, unnest(marks) AS mark
    WHERE status = 'verified'
    GROUP BY election_id, precinct_id, mark;
INSERT INTO photo_voters (election_id, precinct_id, voters)
    SELECT election_id, precinct_id, count(*) FROM submissions
    WHERE status = 'verified' GROUP BY election_id, precinct_id;

-- Reports generated in the background for download.
CREATE TABLE reports (
    id          uuid PRIMARY KEY,
    election_id text NOT NULL REFERENCES elections (id) ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'ready', 'failed')),
    files       text[] NOT NULL DEFAULT '{}',
    error       text,
    created_at  timestamptz NOT NULL DEFAULT date_trunc('minute', now()),
    finished_at timestamptz
);
