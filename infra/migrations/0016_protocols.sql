-- Protocol photos (api/protocols): photos of a station's posted final protocol,
-- the figures read from them (by the machine, or typed by two or three observers
-- where the machine is unsure), and each person's typed entry. The figures of a
-- station are reconciled on read (api/protocols/consensus.py), not stored: their
-- sources (the official import, each photo's fields) live in their own tables and
-- change on their own.
--
-- Nothing here names a voter: a voter's upload keeps only their keyed hash (the
-- voter_key of their device token), and times are cut to the hour as for ballots.
-- depends: 0015_quarantine_indexes

-- New tables only; the foreign keys take a brief SHARE ROW EXCLUSIVE lock on
-- elections, precincts and users. Give up rather than queue behind a long
-- transaction (and hold every writer of those tables up behind us): a failed
-- migration is rerun.
SET LOCAL lock_timeout = '5s';

CREATE TABLE protocol_photos (
    -- Chosen by the client (idempotency key), as a submission's id.
    id                 uuid PRIMARY KEY,
    election_id        text NOT NULL,
    precinct_id        text NOT NULL,  -- as declared by the uploader
    -- Who sent it: an account (observer, admin), or a verified voter's keyed hash.
    uploader_user_id   bigint REFERENCES users (id),
    uploader_voter_key bytea CHECK (length(uploader_voter_key) = 32),
    request_digest     text NOT NULL,
    photo_sha256       text NOT NULL,  -- the stored photo, stripped of its metadata
    photo_orientation  smallint CHECK (photo_orientation BETWEEN 2 AND 8),
    status             text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'read', 'partial', 'unreadable', 'not_a_protocol')),
    -- Why the photo's figures are not used, or what the reader said (its reasons).
    reasons            text[] NOT NULL DEFAULT '{}',
    -- The same bytes already posted for this station: this row counts for nothing,
    -- its status is the first one's.
    duplicate_of       uuid REFERENCES protocol_photos (id),
    -- The reader's output (protocol-template/1 "Reading a photo", with quads).
    reading            jsonb,
    received_hour      timestamptz NOT NULL DEFAULT date_trunc('hour', now()),
    seq                bigserial,
    CHECK ((uploader_user_id IS NULL) <> (uploader_voter_key IS NULL)),
    FOREIGN KEY (election_id, precinct_id) REFERENCES precincts (election_id, id)
);
-- One counted photo per content and station.
CREATE UNIQUE INDEX protocol_photos_one_per_content
    ON protocol_photos (election_id, precinct_id, photo_sha256) WHERE duplicate_of IS NULL;
CREATE INDEX protocol_photos_station ON protocol_photos (election_id, precinct_id);
CREATE INDEX protocol_photos_waiting ON protocol_photos (seq) WHERE status = 'received';

-- One row per field of a read photo: the machine's value, and this photo's figure.
CREATE TABLE protocol_fields (
    photo_id           uuid NOT NULL REFERENCES protocol_photos (id) ON DELETE CASCADE,
    field_id           text NOT NULL,
    position           integer NOT NULL,  -- the template's order
    machine_value      integer CHECK (machine_value >= 0),
    machine_confidence real CHECK (machine_confidence BETWEEN 0 AND 1),
    -- Where the field's cell is in the upright photo: 4 [x, y] points, or NULL.
    quad               jsonb,
    -- This photo's figure; NULL until known (or when agreed illegible).
    value              integer CHECK (value >= 0),
    source             text NOT NULL CHECK (source IN ('machine', 'transcription', 'decision')),
    state              text NOT NULL CHECK (state IN (
                           'given', 'transcribing', 'needs_third', 'disputed', 'agreed',
                           'illegible')),
    PRIMARY KEY (photo_id, field_id),
    CHECK (state <> 'given' OR (source = 'machine' AND value IS NOT NULL)),
    CHECK (state <> 'illegible' OR value IS NULL)
);
-- The observers' queue: fields still waiting for people.
CREATE INDEX protocol_fields_to_type ON protocol_fields (photo_id, position)
    WHERE state IN ('transcribing', 'needs_third');

-- Each person's entry for a field (value NULL: "illegible"), and, before it, their
-- claim on the field while they type it (entered_at NULL, claimed_until set): the
-- queue hands a field to no more people than it needs entries.
CREATE TABLE transcription_entries (
    photo_id      uuid NOT NULL,
    field_id      text NOT NULL,
    account_id    bigint NOT NULL REFERENCES users (id),
    value         integer CHECK (value >= 0),
    entered_at    timestamptz,
    claimed_until timestamptz,
    PRIMARY KEY (photo_id, field_id, account_id),
    FOREIGN KEY (photo_id, field_id)
        REFERENCES protocol_fields (photo_id, field_id) ON DELETE CASCADE,
    CHECK (entered_at IS NOT NULL OR value IS NULL)
);
CREATE INDEX transcription_entries_account ON transcription_entries (account_id);
