"""Every SQL statement on the submissions domain's tables: ``submissions``,
``photo_owners``, ``photo_fingerprints`` and ``photo_fingerprint_bands``.

Functions run in the caller's transaction and never commit; the rules that decide
what to write live in ``service``, ``pipeline`` and ``duplicates``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, TypedDict

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from api.submissions.schemas import Reason, Status, SubmissionStatus

# -- submissions ------------------------------------------------------------------


class Pending(NamedTuple):
    """A received submission, as the pipeline needs it."""

    election_id: str
    precinct_id: str
    declared: list[str]
    photo_sha256: str
    voter_key: bytes | None
    seq: int
    owns_photo: bool  # the first submission of this photo in its election


class Replaced(NamedTuple):
    precinct_id: str
    marks: list[str]


class ReceivedRef(NamedTuple):
    seq: int
    submission_id: uuid.UUID


def get_status(conn: psycopg.Connection, submission_id: uuid.UUID) -> SubmissionStatus | None:
    with conn.cursor(row_factory=class_row(SubmissionStatus)) as cur:
        return cur.execute(
            """
            SELECT id AS submission_id, election_id, precinct_id, status, reasons, marks
            FROM submissions WHERE id = %s
            """,
            (submission_id,),
        ).fetchone()


def request_digest(conn: psycopg.Connection, submission_id: uuid.UUID) -> str | None:
    """The digest of the request that created this submission; None if there is none."""
    row = conn.execute(
        "SELECT request_digest FROM submissions WHERE id = %s", (submission_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def try_lock_request(conn: psycopg.Connection, submission_id: uuid.UUID) -> bool:
    """Take the submission id's request lock until the transaction ends, without
    waiting; False when another request with this id holds it."""
    row = conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 1))", (str(submission_id),)
    ).fetchone()
    return bool(row and row[0])


def insert(
    conn: psycopg.Connection,
    submission_id: uuid.UUID,
    election_id: str,
    precinct_id: str,
    declared_choice: Sequence[str],
    digest: str,
    photo_sha256: str,
    voter_key: bytes,
    photo_orientation: int | None = None,
) -> bool:
    """Record a received submission; False when the id exists already.
    ``photo_orientation``: the EXIF orientation (2..8) stripped from the stored photo,
    for the worker to apply (migration 0013); None: upright as stored."""
    inserted = conn.execute(
        """
        INSERT INTO submissions (id, election_id, precinct_id, declared_choice,
                                 request_digest, photo_sha256, voter_key, photo_orientation)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (id) DO NOTHING
        RETURNING id
        """,
        (
            submission_id,
            election_id,
            precinct_id,
            list(declared_choice),
            digest,
            photo_sha256,
            voter_key,
            photo_orientation,
        ),
    ).fetchone()
    return inserted is not None


def claim_photo(
    conn: psycopg.Connection, election_id: str, photo_sha256: str, submission_id: uuid.UUID
) -> None:
    """Make the submission the photo's owner in its election, unless one is already:
    the first submission of a photo owns it, later copies are duplicates."""
    conn.execute(
        """
        INSERT INTO photo_owners (election_id, photo_sha256, submission_id)
        VALUES (%s, %s, %s) ON CONFLICT DO NOTHING
        """,
        (election_id, photo_sha256, submission_id),
    )


def pending(conn: psycopg.Connection, submission_id: uuid.UUID) -> Pending | None:
    """The submission if it is still 'received'."""
    row = conn.execute(
        """
        SELECT s.election_id, s.precinct_id, s.declared_choice, s.photo_sha256, s.voter_key,
               s.seq, o.submission_id = s.id
        FROM submissions s
        LEFT JOIN photo_owners o
               ON o.election_id = s.election_id AND o.photo_sha256 = s.photo_sha256
        WHERE s.id = %s AND s.status = %s
        """,
        (submission_id, Status.RECEIVED),
    ).fetchone()
    if row is None:
        return None
    return Pending(row[0], row[1], list(row[2]), row[3], row[4], row[5], bool(row[6]))


def lock_received(conn: psycopg.Connection, submission_id: uuid.UUID) -> bool:
    """Lock the submission's row until the transaction ends; False if it is no longer
    'received' (another run decided it)."""
    row = conn.execute(
        "SELECT 1 FROM submissions WHERE id = %s AND status = %s FOR UPDATE",
        (submission_id, Status.RECEIVED),
    ).fetchone()
    return row is not None


def lock_voter(conn: psycopg.Connection, election_id: str, voter_key: bytes) -> None:
    """Serialise the one-vote-per-voter decision per voter and election, until the
    transaction ends."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s || encode(%s, 'hex'), 0))",
        (election_id, voter_key),
    )


def later_verified_exists(
    conn: psycopg.Connection, election_id: str, voter_key: bytes, seq: int
) -> bool:
    """Whether the voter has a verified submission received after ``seq``."""
    row = conn.execute(
        """
        SELECT 1 FROM submissions
        WHERE election_id = %s AND voter_key = %s AND status = %s AND seq > %s
        """,
        (election_id, voter_key, Status.VERIFIED, seq),
    ).fetchone()
    return row is not None


def supersede_verified(
    conn: psycopg.Connection, election_id: str, voter_key: bytes, keep: uuid.UUID
) -> list[Replaced]:
    """Mark the voter's verified submissions other than ``keep`` superseded; returns
    what they had counted."""
    rows = conn.execute(
        """
        UPDATE submissions SET status = %s, reasons = %s
        WHERE election_id = %s AND voter_key = %s AND status = %s AND id <> %s
        RETURNING precinct_id, marks
        """,
        (
            Status.SUPERSEDED,
            [Reason.REPLACED_BY_LATER_SUBMISSION],
            election_id,
            voter_key,
            Status.VERIFIED,
            keep,
        ),
    ).fetchall()
    return [Replaced(precinct_id, list(marks)) for precinct_id, marks in rows]


def record_decision(
    conn: psycopg.Connection,
    submission_id: uuid.UUID,
    status: Status,
    reasons: Sequence[str],
    marks: Sequence[str] | None,
    reading_json: str | None,
) -> None:
    conn.execute(
        "UPDATE submissions SET status = %s, reasons = %s, marks = %s, reading = %s WHERE id = %s",
        (
            status,
            list(reasons),
            None if marks is None else list(marks),
            reading_json,
            submission_id,
        ),
    )


def send_to_review(conn: psycopg.Connection, submission_id: uuid.UUID, reason: Reason) -> None:
    """A submission still 'received' goes to a person, with the reason."""
    conn.execute(
        "UPDATE submissions SET status = %s, reasons = %s WHERE id = %s AND status = %s",
        (Status.REVIEW, [reason], submission_id, Status.RECEIVED),
    )


def received_page(conn: psycopg.Connection, after_seq: int, limit: int) -> list[ReceivedRef]:
    """Up to ``limit`` submissions waiting to be read, oldest first, received after
    ``after_seq`` (keyset pagination: page on from the last row's seq). A seek on the
    partial index submissions_waiting (migration 0005)."""
    with conn.cursor(row_factory=class_row(_ReceivedRow)) as cur:
        rows = cur.execute(
            "SELECT seq, id FROM submissions WHERE status = %s AND seq > %s ORDER BY seq LIMIT %s",
            (Status.RECEIVED, after_seq, limit),
        ).fetchall()
    return [ReceivedRef(row.seq, row.id) for row in rows]


class _ReceivedRow(NamedTuple):
    seq: int
    id: uuid.UUID


class Intake(NamedTuple):
    """The queue of photos as a progress bar sees it."""

    waiting: int  # submissions not read yet, in every election
    arrived: int  # submissions received after the given seq, whatever their status
    last_seq: int  # the newest submission's seq (the given one when none arrived)


def intake(conn: psycopg.Connection, after_seq: int) -> Intake:
    """How many submissions wait to be read, and how many arrived after ``after_seq``.

    The waiting count scans the partial index submissions_waiting (migration 0005):
    it costs as much as the backlog is long, not the table. The arrivals are a range
    of submissions_seq from ``after_seq``: pass the last answer's ``last_seq`` (or
    ``newest_seq`` at the start), never 0 on a big table. A row inserted before
    another but committed after it may be counted late or not at all: a progress
    bar's figure, not an audit's."""
    waiting = conn.execute(
        "SELECT count(*) FROM submissions WHERE status = %s", (Status.RECEIVED,)
    ).fetchone()
    arrived = conn.execute(
        "SELECT count(*), coalesce(max(seq), %s) FROM submissions WHERE seq > %s",
        (after_seq, after_seq),
    ).fetchone()
    assert waiting is not None and arrived is not None
    return Intake(int(waiting[0]), int(arrived[0]), int(arrived[1]))


def newest_seq(conn: psycopg.Connection) -> int:
    """The newest submission's seq (0 when there is none): one seek on submissions_seq."""
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM submissions").fetchone()
    assert row is not None
    return int(row[0])


def count_by_status(conn: psycopg.Connection, election_id: str) -> dict[str, int]:
    """How many of the election's submissions stand in each status (absent: none)."""
    rows = conn.execute(
        "SELECT status, count(*) FROM submissions WHERE election_id = %s GROUP BY status",
        (election_id,),
    ).fetchall()
    return {str(status): int(n) for status, n in rows}


def not_counted_by_reason(conn: psycopg.Connection, election_id: str) -> dict[str, int]:
    """The first reason of the election's rejected and in-review submissions, counted,
    in reason order."""
    rows = conn.execute(
        """
        SELECT reasons[1], count(*) FROM submissions
        WHERE election_id = %s AND status IN (%s, %s)
        GROUP BY reasons[1] ORDER BY 1
        """,
        (election_id, Status.REJECTED, Status.REVIEW),
    ).fetchall()
    return {reason: int(n) for reason, n in rows}


def progress(conn: psycopg.Connection, election_id: str) -> tuple[int, int]:
    """(submissions received, of which read) for the election."""
    row = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE status <> %s)"
        " FROM submissions WHERE election_id = %s",
        (Status.RECEIVED, election_id),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def clear_election(conn: psycopg.Connection, election_id: str) -> None:
    """Delete the election's rows of the four tables, referencing rows first."""
    for statement in (
        "DELETE FROM photo_fingerprint_bands WHERE election_id = %s",
        "DELETE FROM photo_fingerprints WHERE election_id = %s",
        "DELETE FROM photo_owners WHERE election_id = %s",
        "DELETE FROM submissions WHERE election_id = %s",
    ):
        conn.execute(statement, (election_id,))


# -- fingerprints (the near-duplicate index; the maths is in duplicates.py) --------


class StoredFingerprint(NamedTuple):
    election_id: str
    fingerprint: int  # signed, as stored


class LookupParams(TypedDict):
    """LOOKUP_KEYS's parameters (built by ``duplicates.lookup_params``)."""

    v: int  # the fingerprint, signed
    w: str | None  # the second key (ocr.scene.scene_key) as bit(256) input; None: none
    nos: list[int]  # band numbers
    vals: list[int]  # band values, signed
    e: str  # election id
    k: int  # bits
    k2: int  # bits of the second key
    p: str | None  # the paper key (ocr.scene.paper_key) as bit(512) input; None: none
    k3: int  # bits of the paper key
    self: uuid.UUID | None  # the submission to leave out
    statuses: list[str]  # the candidates' statuses


def lock_fingerprints(conn: psycopg.Connection, election_id: str) -> None:
    """Serialise fingerprint check-and-record per election, until the transaction ends."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('near_duplicate:' || %s, 0))",
        (election_id,),
    )


def delete_fingerprint(
    conn: psycopg.Connection, submission_id: uuid.UUID
) -> StoredFingerprint | None:
    """Remove the submission's recorded fingerprint (not its bands); returns it."""
    row = conn.execute(
        "DELETE FROM photo_fingerprints WHERE submission_id = %s"
        " RETURNING election_id, fingerprint",
        (submission_id,),
    ).fetchone()
    return None if row is None else StoredFingerprint(row[0], row[1])


def delete_bands(
    conn: psycopg.Connection,
    election_id: str,
    bits: int,
    submission_id: uuid.UUID,
    numbers: Sequence[int],
    values: Sequence[int],
) -> None:
    """Remove the submission's bands (numbers and signed values, cut for ``bits``)."""
    conn.execute(
        """
        DELETE FROM photo_fingerprint_bands b
        USING unnest(%s::smallint[], %s::bigint[]) AS q (band_no, band_value)
        WHERE b.election_id = %s AND b.band_bits = %s AND b.band_no = q.band_no
          AND b.band_value = q.band_value AND b.submission_id = %s
        """,
        (list(numbers), list(values), election_id, bits, submission_id),
    )


def insert_fingerprint(
    conn: psycopg.Connection,
    submission_id: uuid.UUID,
    election_id: str,
    fingerprint: int,
    near_duplicate_of: uuid.UUID | None,
    distance: int | None,
    scene_key: str | None = None,
    paper_key: str | None = None,
    pose: Sequence[float] | None = None,
) -> None:
    """Record a read photo's fingerprint (signed), second key (bit(256) input),
    paper key (bit(512) input; None: none), page pose and the match found for it,
    if any."""
    conn.execute(
        """
        INSERT INTO photo_fingerprints
            (submission_id, election_id, fingerprint, near_duplicate_of, distance, scene_key,
             paper_key, pose)
        VALUES (%s, %s, %s, %s, %s, %s::bit(256), %s::bit(512), %s::real[])
        """,
        (
            submission_id,
            election_id,
            fingerprint,
            near_duplicate_of,
            distance,
            scene_key,
            paper_key,
            None if pose is None else list(pose),
        ),
    )


def insert_bands(
    conn: psycopg.Connection,
    election_id: str,
    bits: int,
    submission_id: uuid.UUID,
    fingerprint: int,
    numbers: Sequence[int],
    values: Sequence[int],
    scene_key: str | None = None,
) -> None:
    conn.execute(
        """
        INSERT INTO photo_fingerprint_bands
            (election_id, band_bits, band_no, band_value, submission_id, fingerprint, scene_key)
        SELECT %s, %s, q.band_no, q.band_value, %s, %s, %s::bit(256)
        FROM unnest(%s::smallint[], %s::bigint[]) AS q (band_no, band_value)
        """,
        (election_id, bits, submission_id, fingerprint, scene_key, list(numbers), list(values)),
    )


def band_bits_range(conn: psycopg.Connection, election_id: str) -> tuple[int, int] | None:
    """The least and greatest ``bits`` the election's bands were cut for; None: no bands."""
    # min and max are two seeks at the ends of the election's range of the index
    # (an EXISTS on band_bits <> k would, planned generically, scan the table).
    row = conn.execute(
        "SELECT min(band_bits), max(band_bits) FROM photo_fingerprint_bands WHERE election_id = %s",
        (election_id,),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


def election_fingerprints(
    conn: psycopg.Connection, election_id: str
) -> list[tuple[uuid.UUID, int, str | None]]:
    """(submission id, signed fingerprint, second key as bits or None) of every
    photo recorded in the election."""
    rows = conn.execute(
        "SELECT submission_id, fingerprint, scene_key FROM photo_fingerprints"
        " WHERE election_id = %s",
        (election_id,),
    ).fetchall()
    return [(sid, int(fingerprint), key) for sid, fingerprint, key in rows]


def replace_election_bands(
    conn: psycopg.Connection,
    election_id: str,
    bits: int,
    rows: Iterable[tuple[int, int, uuid.UUID, int, str | None]],
) -> None:
    """Replace all the election's bands with ``rows`` of (band number, signed band
    value, submission id, signed fingerprint, second key as bit(256) input or
    None), cut for ``bits``; written with COPY."""
    conn.execute("DELETE FROM photo_fingerprint_bands WHERE election_id = %s", (election_id,))
    with conn.cursor().copy(
        "COPY photo_fingerprint_bands (election_id, band_bits, band_no, band_value,"
        " submission_id, fingerprint, scene_key) FROM STDIN"
    ) as copy:
        for number, value, submission_id, fingerprint, key in rows:
            copy.write_row((election_id, bits, number, value, submission_id, fingerprint, key))


# --- voters ---


def submission_voter_key(conn: psycopg.Connection, submission_id: uuid.UUID) -> bytes | None:
    """The keyed hash of the voter who sent a submission; None when there is none."""
    row = conn.execute(
        "SELECT voter_key FROM submissions WHERE id = %s", (submission_id,)
    ).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


# --- review ---
#
# The observers' review (api/review) reads the submissions in review and decides
# them here. Nothing below returns a voter_key but ``lock_for_review``, whose
# result the review service only hands to the one-vote-per-voter rule.

# The last row of a review queue page, to page on from (keyset pagination):
# (rank, near-duplicate distance or 0, seq).
ReviewCursor = tuple[int, int, int]


class ReviewQueueRow(NamedTuple):
    submission_id: uuid.UUID
    precinct_id: str
    reasons: list[str]
    declared_choice: list[str]
    marks: list[str] | None
    rank: int  # review_submission_rank(reasons) (migration 0009)
    distance: int  # the near-duplicate's fingerprint distance; 0 for other ranks
    seq: int


class ReviewSubmission(NamedTuple):
    """A submission as a reviewer sees it: no voter key, no request digest."""

    submission_id: uuid.UUID
    election_id: str
    precinct_id: str
    declared_choice: list[str]
    status: str
    reasons: list[str]
    marks: list[str] | None
    reading: dict[str, Any] | None
    photo_sha256: str
    received_hour: Any
    near_duplicate_of: uuid.UUID | None
    distance: int | None


class LockedForReview(NamedTuple):
    pending: Pending  # as the pipeline's one-vote-per-voter rule takes it
    status: str
    reasons: list[str]
    marks: list[str] | None


_REVIEW_QUEUE_COLUMNS = sql.SQL(
    "s.id AS submission_id, s.precinct_id, s.reasons, s.declared_choice, s.marks,"
    " review_submission_rank(s.reasons)::int AS rank, {distance} AS distance, s.seq"
)


def _review_filters(precinct_ids: Sequence[str] | None, reason: str | None) -> sql.Composable:
    parts: list[sql.Composable] = []
    if precinct_ids is not None:
        parts.append(sql.SQL(" AND s.precinct_id = ANY(%(precincts)s)"))
    if reason is not None:
        parts.append(sql.SQL(" AND s.reasons @> ARRAY[%(reason)s]::text[]"))
    return sql.Composed(parts)


_AFTER_EVERY_SEQ = 2**63 - 1


def review_queue_page(
    conn: psycopg.Connection,
    election_id: str,
    *,
    precinct_ids: Sequence[str] | None,
    reason: str | None,
    after: ReviewCursor | None,
    limit: int,
) -> list[ReviewQueueRow]:
    """Up to ``limit`` submissions in review after ``after``, in queue order: by
    review_submission_rank, near-duplicates (rank 0) by fingerprint distance, then
    by seq. Two range scans of the partial index submissions_review_queue: the
    near-duplicates (a small group, sorted by distance), then the other ranks
    straight in index order, so a page costs the same at the start and deep in."""
    rank, distance, seq = after if after is not None else (-1, -1, -1)
    params: dict[str, Any] = {
        "e": election_id,
        "precincts": list(precinct_ids) if precinct_ids is not None else None,
        "reason": reason,
        "d": distance,
        "seq": seq,
        "n": limit,
    }
    filters = _review_filters(precinct_ids, reason)
    rows: list[ReviewQueueRow] = []
    with conn.cursor(row_factory=class_row(ReviewQueueRow)) as cur:
        if rank <= 0:
            query = sql.SQL(
                "SELECT {columns} FROM submissions s"
                " LEFT JOIN photo_fingerprints f ON f.submission_id = s.id"
                " WHERE s.election_id = %(e)s AND s.status = 'review'"
                " AND review_submission_rank(s.reasons) = 0{filters}"
                " AND (coalesce(f.distance, 64), s.seq) > (%(d)s, %(seq)s)"
                " ORDER BY coalesce(f.distance, 64), s.seq LIMIT %(n)s"
            ).format(
                columns=_REVIEW_QUEUE_COLUMNS.format(
                    distance=sql.SQL("coalesce(f.distance, 64)::int")
                ),
                filters=filters,
            )
            rows = cur.execute(query, params).fetchall()
            params.update(r=0, seq=_AFTER_EVERY_SEQ)  # past every rank-0 row
        else:
            params.update(r=rank)
        if len(rows) < limit:
            params["n"] = limit - len(rows)
            query = sql.SQL(
                "SELECT {columns} FROM submissions s"
                " WHERE s.election_id = %(e)s AND s.status = 'review'{filters}"
                " AND (review_submission_rank(s.reasons), s.seq) > (%(r)s, %(seq)s)"
                " ORDER BY review_submission_rank(s.reasons), s.seq LIMIT %(n)s"
            ).format(columns=_REVIEW_QUEUE_COLUMNS.format(distance=sql.SQL("0")), filters=filters)
            rows += cur.execute(query, params).fetchall()
    return rows


def review_submission(
    conn: psycopg.Connection, submission_id: uuid.UUID
) -> ReviewSubmission | None:
    """The submission as a reviewer sees it, with the earlier submission its photo
    nearly duplicates, if any."""
    with conn.cursor(row_factory=class_row(ReviewSubmission)) as cur:
        return cur.execute(
            """
            SELECT s.id AS submission_id, s.election_id, s.precinct_id, s.declared_choice,
                   s.status, s.reasons, s.marks, s.reading, s.photo_sha256, s.received_hour,
                   f.near_duplicate_of, f.distance::int AS distance
            FROM submissions s LEFT JOIN photo_fingerprints f ON f.submission_id = s.id
            WHERE s.id = %s
            """,
            (submission_id,),
        ).fetchone()


def lock_for_review(conn: psycopg.Connection, submission_id: uuid.UUID) -> LockedForReview | None:
    """Lock the submission's row until the transaction ends (the same row lock the
    pipeline takes first) and return it; None when there is no such submission."""
    row = conn.execute(
        """
        SELECT s.election_id, s.precinct_id, s.declared_choice, s.photo_sha256, s.voter_key,
               s.seq, o.submission_id = s.id, s.status, s.reasons, s.marks
        FROM submissions s
        LEFT JOIN photo_owners o
               ON o.election_id = s.election_id AND o.photo_sha256 = s.photo_sha256
        WHERE s.id = %s
        FOR UPDATE OF s
        """,
        (submission_id,),
    ).fetchone()
    if row is None:
        return None
    pending = Pending(row[0], row[1], list(row[2]), row[3], row[4], row[5], bool(row[6]))
    return LockedForReview(pending, row[7], list(row[8]), None if row[9] is None else list(row[9]))


def set_review_outcome(
    conn: psycopg.Connection,
    submission_id: uuid.UUID,
    status: Status,
    reasons: Sequence[str],
    marks: Sequence[str] | None,
) -> None:
    """Record a reviewer's decision on a submission (its reading is kept)."""
    conn.execute(
        "UPDATE submissions SET status = %s, reasons = %s, marks = %s WHERE id = %s",
        (status, list(reasons), None if marks is None else list(marks), submission_id),
    )


def photo_key(conn: psycopg.Connection, submission_id: uuid.UUID) -> str | None:
    """The photo-store key of the submission's photo; None when there is none."""
    row = conn.execute(
        "SELECT photo_sha256 FROM submissions WHERE id = %s", (submission_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def station_verified_photos(
    conn: psycopg.Connection, election_id: str, precinct_id: str, limit: int
) -> list[uuid.UUID]:
    """The station's verified submissions, the latest first (partial index
    submissions_station_verified, migration 0009)."""
    rows = conn.execute(
        "SELECT id FROM submissions WHERE election_id = %s AND precinct_id = %s"
        " AND status = %s ORDER BY seq DESC LIMIT %s",
        (election_id, precinct_id, Status.VERIFIED, limit),
    ).fetchall()
    return [row[0] for row in rows]


def count_with_status(conn: psycopg.Connection, election_id: str, status: Status) -> int:
    """How many of the election's submissions are in ``status`` (in review and
    quarantined: waiting for a reviewer)."""
    row = conn.execute(
        "SELECT count(*) FROM submissions WHERE election_id = %s AND status = %s",
        (election_id, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


# --- ingest (the upload's path) ---


def photo_orientation(conn: psycopg.Connection, submission_id: uuid.UUID) -> int | None:
    """The EXIF orientation (2..8) to apply to the submission's stored photo when it
    is decoded (migration 0013); None: upright as stored, or no such submission."""
    row = conn.execute(
        "SELECT photo_orientation FROM submissions WHERE id = %s", (submission_id,)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


# --- quarantine (api/submissions/abuse.py; migration 0015) ---
#
# ``submission_holds`` keeps why a submission is held (reason codes only);
# ``burst_arrivals`` which recent submissions arrived in one group, under the
# group's keyed hash, until the end of the window after their own.


class HeldSibling(NamedTuple):
    """A submission of a burst, locked, as the quarantine needs it."""

    submission_id: uuid.UUID
    election_id: str
    precinct_id: str
    status: str
    marks: list[str] | None


def add_hold(
    conn: psycopg.Connection, submission_ids: Sequence[uuid.UUID], reasons: Sequence[str]
) -> None:
    """Hold the submissions for ``reasons``, adding them to an existing hold's."""
    conn.execute(
        """
        INSERT INTO submission_holds (submission_id, reasons)
        SELECT id, %s FROM unnest(%s::uuid[]) AS id
        ON CONFLICT (submission_id) DO UPDATE SET reasons = submission_holds.reasons
            || ARRAY(SELECT unnest(EXCLUDED.reasons)
                     EXCEPT SELECT unnest(submission_holds.reasons))
        """,
        (list(reasons), list(submission_ids)),
    )


def hold_reasons(conn: psycopg.Connection, submission_id: uuid.UUID) -> list[str]:
    """Why the submission is held; empty when it is not."""
    row = conn.execute(
        "SELECT reasons FROM submission_holds WHERE submission_id = %s", (submission_id,)
    ).fetchone()
    return [] if row is None else list(row[0])


def record_burst_arrival(
    conn: psycopg.Connection,
    group_key: bytes,
    window_start: int,
    submission_id: uuid.UUID,
    expires_at: int,
) -> None:
    """Note that the submission arrived in the group's window (Unix seconds)."""
    conn.execute(
        """
        INSERT INTO burst_arrivals (group_key, window_start, submission_id, expires_at)
        VALUES (%s, to_timestamp(%s), %s, to_timestamp(%s)) ON CONFLICT DO NOTHING
        """,
        (group_key, window_start, submission_id, expires_at),
    )


def burst_members(
    conn: psycopg.Connection, groups: Sequence[tuple[bytes, int, str]], now: float
) -> list[tuple[bytes, uuid.UUID]]:
    """(group key, submission id) of the arrivals of each (group key, since: Unix
    seconds, reason) in the windows from ``since`` that have not expired at ``now``
    and are not held for that reason yet (a burst's later arrivals find only
    themselves, not the members held already)."""
    rows = conn.execute(
        """
        SELECT b.group_key, b.submission_id
        FROM unnest(%s::bytea[], %s::bigint[], %s::text[]) AS g (group_key, since, reason)
        JOIN burst_arrivals b ON b.group_key = g.group_key
         AND b.window_start >= to_timestamp(g.since) AND b.expires_at > to_timestamp(%s)
        LEFT JOIN submission_holds h ON h.submission_id = b.submission_id
        WHERE h.submission_id IS NULL OR NOT g.reason = ANY(h.reasons)
        """,
        ([g[0] for g in groups], [g[1] for g in groups], [g[2] for g in groups], now),
    ).fetchall()
    return [(bytes(key), sid) for key, sid in rows]


def lock_submissions(
    conn: psycopg.Connection, submission_ids: Sequence[uuid.UUID]
) -> list[HeldSibling]:
    """The submissions, their rows locked in one statement in seq order (one order
    for every caller: no deadlock between two bursts)."""
    rows = conn.execute(
        """
        SELECT id, election_id, precinct_id, status, marks FROM submissions
        WHERE id = ANY(%s) ORDER BY seq FOR UPDATE
        """,
        (list(submission_ids),),
    ).fetchall()
    return [HeldSibling(r[0], r[1], r[2], r[3], None if r[4] is None else list(r[4])) for r in rows]


def add_reasons(conn: psycopg.Connection, submission_id: uuid.UUID, reasons: Sequence[str]) -> None:
    """Append to a (locked) submission's reasons those it does not list yet."""
    conn.execute(
        """
        UPDATE submissions SET reasons = reasons
            || ARRAY(SELECT r FROM unnest(%s::text[]) WITH ORDINALITY AS n (r, i)
                     WHERE NOT r = ANY(reasons) ORDER BY i)
        WHERE id = %s
        """,
        (list(reasons), submission_id),
    )


def quarantine(conn: psycopg.Connection, submission_id: uuid.UUID, reasons: Sequence[str]) -> None:
    """Mark a (locked) submission quarantined, with the reasons."""
    conn.execute(
        "UPDATE submissions SET status = %s, reasons = %s WHERE id = %s",
        (Status.QUARANTINED, list(reasons), submission_id),
    )


def forget_burst_arrivals(conn: psycopg.Connection, now: float) -> int:
    """Delete the arrivals whose window weighs in no threshold any more; how many.
    Rows another transaction holds are skipped (the next sweep takes them): a sweep
    inside an upload's transaction never waits for, nor deadlocks with, another."""
    return conn.execute(
        """
        DELETE FROM burst_arrivals WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM burst_arrivals WHERE expires_at <= to_timestamp(%s)
            FOR UPDATE SKIP LOCKED))
        """,
        (now,),
    ).rowcount


def quarantine_queue_page(
    conn: psycopg.Connection,
    election_id: str,
    *,
    precinct_ids: Sequence[str] | None,
    reason: str | None,
    after_seq: int,
    limit: int,
    rank: int,
) -> list[ReviewQueueRow]:
    """Up to ``limit`` quarantined submissions received after ``after_seq``, oldest
    first (a range scan of the partial index submissions_quarantine_queue), as queue
    rows of the given ``rank``."""
    query = sql.SQL(
        "SELECT {columns} FROM submissions s"
        " WHERE s.election_id = %(e)s AND s.status = 'quarantined'{filters}"
        " AND s.seq > %(seq)s ORDER BY s.seq LIMIT %(n)s"
    ).format(
        columns=sql.SQL(
            "s.id AS submission_id, s.precinct_id, s.reasons, s.declared_choice, s.marks,"
            " %(rank)s::int AS rank, 0 AS distance, s.seq"
        ),
        filters=_review_filters(precinct_ids, reason),
    )
    params: dict[str, Any] = {
        "e": election_id,
        "precincts": list(precinct_ids) if precinct_ids is not None else None,
        "reason": reason,
        "seq": after_seq,
        "n": limit,
        "rank": rank,
    }
    with conn.cursor(row_factory=class_row(ReviewQueueRow)) as cur:
        return cur.execute(query, params).fetchall()


def verified_identities(conn: psycopg.Connection, election_id: str) -> dict[tuple[str, str], int]:
    """Distinct verified voters (voter keys) per (precinct, option) among the election's
    verified submissions, where there are any (the flags' ``identities``)."""
    rows = conn.execute(
        """
        SELECT s.precinct_id, m.option, count(DISTINCT s.voter_key)
        FROM submissions s CROSS JOIN LATERAL unnest(s.marks) AS m (option)
        WHERE s.election_id = %s AND s.status = %s AND s.voter_key IS NOT NULL
        GROUP BY 1, 2
        """,
        (election_id, Status.VERIFIED),
    )
    return {(str(p), str(o)): int(n) for p, o, n in rows}


def insert_received(
    conn: psycopg.Connection,
    submission_id: uuid.UUID,
    election_id: str,
    precinct_id: str,
    declared_choice: Sequence[str],
    digest: str,
    photo_sha256: str,
    voter_key: bytes,
    photo_orientation: int | None,
) -> tuple[bool, bool]:
    """``try_lock_request``, ``insert`` and, when inserted, ``claim_photo`` in one
    statement (one round trip), which also sets the transaction's ``lock_timeout``
    (2 s: a wait beyond it fails the upload, answered 503, and the phone retries):
    (whether the id's request lock was taken, whether the submission was inserted).
    Not locked: nothing was written."""
    row = conn.execute(
        """
        WITH timeout AS (
            -- SET LOCAL lock_timeout, in the transaction's first statement: no wait
            -- on a row another upload holds outlasts it (api.submissions.abuse).
            SELECT set_config('lock_timeout', '2s', true)
        ), lock AS (
            SELECT pg_try_advisory_xact_lock(hashtextextended(%(sid_text)s, 1)) AS ok
            FROM timeout
        ), inserted AS (
            INSERT INTO submissions (id, election_id, precinct_id, declared_choice,
                                     request_digest, photo_sha256, voter_key,
                                     photo_orientation)
            SELECT %(sid)s::uuid, %(e)s::text, %(p)s::text, %(choice)s::text[], %(digest)s::text,
                   %(sha)s::text, %(voter)s::bytea, %(orientation)s::smallint
            FROM lock WHERE lock.ok
            ON CONFLICT (id) DO NOTHING
            RETURNING id
        ), owner AS (
            INSERT INTO photo_owners (election_id, photo_sha256, submission_id)
            SELECT %(e)s::text, %(sha)s::text, id FROM inserted
            ON CONFLICT DO NOTHING
        )
        SELECT (SELECT ok FROM lock), EXISTS (SELECT 1 FROM inserted)
        """,
        {
            "sid_text": str(submission_id),
            "sid": submission_id,
            "e": election_id,
            "p": precinct_id,
            "choice": list(declared_choice),
            "digest": digest,
            "sha": photo_sha256,
            "voter": voter_key,
            "orientation": photo_orientation,
        },
    ).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


def leave_bursts(conn: psycopg.Connection, submission_id: uuid.UUID) -> None:
    """Take the submission out of every burst group it is listed in (a person decided
    it: no later arrival of its groups may hold it again)."""
    conn.execute("DELETE FROM burst_arrivals WHERE submission_id = %s", (submission_id,))


def in_bursts(conn: psycopg.Connection, submission_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of the submissions are still listed in a burst group (not decided)."""
    rows = conn.execute(
        "SELECT DISTINCT submission_id FROM burst_arrivals WHERE submission_id = ANY(%s)",
        (list(submission_ids),),
    ).fetchall()
    return {row[0] for row in rows}


class CandidateKeys(NamedTuple):
    submission_id: uuid.UUID
    distance: int  # first key (fingerprint) bits
    scene_distance: int | None  # second key bits; None where either photo has none
    pose: list[float] | None  # the page's pose in the candidate photo (ocr.ink.page_pose)


# The rows equal on some band (one index range seek per band) within k bits and,
# where both photos have a second key, within k2 bits on it (both checked in the
# index-only scan: infra/migrations/0014), and, where both have a paper key,
# within k3 bits on it (infra/migrations/0017: read from the candidate's
# photo_fingerprints row by its primary key), the closest first, the oldest first
# on a tie; with the second key's distance, without the stored readings:
# duplicates.find_near_duplicate reads the readings of the candidates it confirms
# a few at a time (stored_readings), so a lookup that the first candidates settle
# (a copy and its original) reads no other reading (each ~4 KB, nearly all of
# it the scene descriptor: READINGS), even where no paper key prunes the rest.
# The candidate's pose (infra/migrations/0020) comes from the row already joined.
LOOKUP_KEYS = """
    SELECT c.submission_id, c.distance, c.scene_distance, f.pose
    FROM (
        SELECT DISTINCT b.submission_id,
               bit_count((b.fingerprint # %(v)s)::bit(64))::int AS distance,
               bit_count(b.scene_key # %(w)s::bit(256))::int AS scene_distance
        FROM unnest(%(nos)s::smallint[], %(vals)s::bigint[]) AS q (band_no, band_value)
        JOIN photo_fingerprint_bands b
          ON b.election_id = %(e)s AND b.band_bits = %(k)s
         AND b.band_no = q.band_no AND b.band_value = q.band_value
        WHERE bit_count((b.fingerprint # %(v)s)::bit(64)) <= %(k)s
          AND (b.scene_key IS NULL OR %(w)s::bit(256) IS NULL
               OR bit_count(b.scene_key # %(w)s::bit(256)) <= %(k2)s)
          AND b.submission_id IS DISTINCT FROM %(self)s
    ) c
    JOIN photo_fingerprints f ON f.submission_id = c.submission_id
    JOIN submissions s ON s.id = c.submission_id
    WHERE s.status = ANY(%(statuses)s)
      AND (f.paper_key IS NULL OR %(p)s::bit(512) IS NULL
           OR bit_count(f.paper_key # %(p)s::bit(512)) <= %(k3)s)
    ORDER BY c.distance, s.seq
    """


def near_duplicate_candidate_keys(
    conn: psycopg.Connection, params: LookupParams
) -> list[CandidateKeys]:
    """The near-duplicate candidates of a lookup (LOOKUP_KEYS)."""
    with conn.cursor(row_factory=class_row(CandidateKeys)) as cur:
        return cur.execute(LOOKUP_KEYS, dict(params)).fetchall()


# A stored reading is ~4 KB of JSON, nearly all of it the scene descriptor (one
# string). Read as JSONB, PostgreSQL serialises that string and json.loads parses
# it back, character by character, for every candidate confirmed; read beside
# the rest (->> extracts it as it is stored), it arrives as text. The copy
# lookups' slow tail at a million photos is a photo whose paper clipped (no
# paper key prunes its ~200 honest look-alikes; 62-126 readings read before its
# original is confirmed): reading the ~200 readings of each of the three slowest
# took 14-34 ms instead of 24-42 ms (best of 9; bench/near_duplicates.py's
# sample, seed 2, on a shared core), and the readings of all 300 copy lookups
# of three runs 440 ms instead of 571 ms.
READINGS = """
    SELECT id,
           CASE WHEN jsonb_typeof(reading -> 'scene') = 'string'
                THEN reading - 'scene' ELSE reading END AS rest,
           CASE WHEN jsonb_typeof(reading -> 'scene') = 'string'
                THEN reading ->> 'scene' END AS scene
    FROM submissions WHERE id = ANY(%s)
    """


def stored_readings(
    conn: psycopg.Connection, submission_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any] | None]:
    """The stored readings of these submissions, by id (the scene descriptor read
    as text and put back: the same dicts as the JSONB column's)."""
    rows = conn.execute(READINGS, (list(submission_ids),)).fetchall()
    return {sid: rest if scene is None else {**rest, "scene": scene} for sid, rest, scene in rows}
