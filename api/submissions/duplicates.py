"""Near-duplicate ballot photos: one photo re-used in two submissions.

The reader gives each aligned ballot a 64-bit perceptual fingerprint of its ink
(16 hex digits): fingerprints within ocr.reader.NEAR_DUPLICATE_BITS = k bits
show the same marks (the same paper, or two voters' look-alike marks in one
box). The fingerprint is an opaque hash here: only its Hamming distance means
anything. The index below finds every earlier fingerprint within k bits; the
caller confirms each candidate (the pipeline with ocr.reader.same_photo, which
also needs the page to lie at the same angles in both photos).

Lookup by pigeonhole banding: cut the 64 bits into k+1 bands; if two hashes
differ in at most k bits, at least one band holds none of those bits, so the two
agree exactly on it. The candidates for a new hash are the stored rows equal to
it on some band (k+1 btree range seeks, see infra/migrations/0004); the exact
distance then sorts them out.

Candidates are the other submissions of the election whose fingerprint is
recorded (their photo was read and decided 'verified' or 'review') and whose
status is still 'verified', 'review' or 'superseded': a photo a reviewer later
rejects no longer makes copies of it suspect. Earlier means recorded earlier:
check_and_record runs under a per-election transaction lock, so of two
near-duplicates processed at once exactly one finds the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import psycopg

from ocr.reader import NEAR_DUPLICATE_BITS

HASH_BITS = 64
NEAR_DUPLICATE = "near_duplicate_photo"
CANDIDATE_STATUSES = ("verified", "review", "superseded")


class Match(NamedTuple):
    submission_id: uuid.UUID
    distance: int


class Candidate(NamedTuple):
    submission_id: uuid.UUID
    distance: int
    reading: dict[str, Any] | None  # the earlier submission's stored reading


Confirm = Callable[[Candidate], bool]


def bands(value: int, bits: int) -> list[int]:
    """The 64-bit `value` cut into bits+1 bands, most significant first. Pure.

    Band widths differ by at most one bit (64 // (bits+1), the first 64 % (bits+1)
    one wider); two values within `bits` bits of each other agree on some band.
    """
    if not 0 <= value < 1 << HASH_BITS:
        raise ValueError(f"not a 64-bit value: {value}")
    if not 0 <= bits < HASH_BITS:
        raise ValueError(f"bits must be in [0, 63]: {bits}")
    count = bits + 1
    out = []
    shift = HASH_BITS
    for i in range(count):
        width = HASH_BITS // count + (1 if i < HASH_BITS % count else 0)
        shift -= width
        out.append((value >> shift) & ((1 << width) - 1))
    return out


def parse_fingerprint(fingerprint: str) -> int:
    """The reader's 16 hex digits as an unsigned 64-bit int."""
    if len(fingerprint) != 16:
        raise ValueError(f"a fingerprint is 16 hex digits: {fingerprint!r}")
    return int(fingerprint, 16)


def to_signed(value: int) -> int:
    """Unsigned 64-bit to PostgreSQL's bigint (two's complement), and back below."""
    return value - (1 << HASH_BITS) if value >= 1 << (HASH_BITS - 1) else value


def to_unsigned(value: int) -> int:
    return value + (1 << HASH_BITS) if value < 0 else value


def lock_election(conn: psycopg.Connection, election_id: str) -> None:
    """Serialise fingerprint check-and-record per election, until the transaction ends."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('near_duplicate:' || %s, 0))",
        (election_id,),
    )


def _band_rows(value: int, bits: int) -> tuple[list[int], list[int]]:
    values = bands(value, bits)
    return list(range(len(values))), [to_signed(v) for v in values]


# The rows equal on some band (one index range seek per band) within k bits, the
# closest first, the oldest first on a tie.
LOOKUP = """
    SELECT c.submission_id, c.distance, s.reading
    FROM (
        -- DISTINCT: a close hash agrees on several bands, and is one candidate
        SELECT DISTINCT b.submission_id,
               bit_count((b.fingerprint # %(v)s)::bit(64))::int AS distance
        FROM unnest(%(nos)s::smallint[], %(vals)s::bigint[]) AS q (band_no, band_value)
        JOIN photo_fingerprint_bands b
          ON b.election_id = %(e)s AND b.band_bits = %(k)s
         AND b.band_no = q.band_no AND b.band_value = q.band_value
        WHERE bit_count((b.fingerprint # %(v)s)::bit(64)) <= %(k)s
          AND b.submission_id IS DISTINCT FROM %(self)s
    ) c
    JOIN submissions s ON s.id = c.submission_id
    WHERE s.status = ANY(%(statuses)s)
    ORDER BY c.distance, s.seq
    """


def lookup_params(
    election_id: str, fingerprint: int, exclude: uuid.UUID | None, bits: int
) -> dict[str, object]:
    numbers, values = _band_rows(fingerprint, bits)
    return {
        "v": to_signed(fingerprint),
        "nos": numbers,
        "vals": values,
        "e": election_id,
        "k": bits,
        "self": exclude,
        "statuses": list(CANDIDATE_STATUSES),
    }


def find_near_duplicate(
    conn: psycopg.Connection,
    election_id: str,
    fingerprint: int,
    *,
    exclude: uuid.UUID | None = None,
    bits: int = NEAR_DUPLICATE_BITS,
    confirm: Confirm | None = None,
) -> Match | None:
    """The closest candidate (oldest on a tie) within `bits` bits, other than
    `exclude`, that `confirm` accepts (all do without it)."""
    rows = conn.execute(LOOKUP, lookup_params(election_id, fingerprint, exclude, bits))
    for row in rows:
        candidate = Candidate(row[0], row[1], row[2])
        if confirm is None or confirm(candidate):
            return Match(candidate.submission_id, candidate.distance)
    return None


def record_fingerprint(
    conn: psycopg.Connection,
    election_id: str,
    submission_id: uuid.UUID,
    fingerprint: int,
    match: Match | None = None,
    *,
    bits: int = NEAR_DUPLICATE_BITS,
) -> None:
    """Store a submission's fingerprint and its bands (replacing any earlier reading's)."""
    old = conn.execute(
        "DELETE FROM photo_fingerprints WHERE submission_id = %s"
        " RETURNING election_id, fingerprint",
        (submission_id,),
    ).fetchone()
    if old is not None:
        numbers, values = _band_rows(to_unsigned(old[1]), bits)
        conn.execute(
            """
            DELETE FROM photo_fingerprint_bands b
            USING unnest(%s::smallint[], %s::bigint[]) AS q (band_no, band_value)
            WHERE b.election_id = %s AND b.band_bits = %s AND b.band_no = q.band_no
              AND b.band_value = q.band_value AND b.submission_id = %s
            """,
            (numbers, values, old[0], bits, submission_id),
        )
    conn.execute(
        """
        INSERT INTO photo_fingerprints
            (submission_id, election_id, fingerprint, near_duplicate_of, distance)
        VALUES (%s, %s, %s, %s, %s)
        """,
        (
            submission_id,
            election_id,
            to_signed(fingerprint),
            match.submission_id if match else None,
            match.distance if match else None,
        ),
    )
    numbers, values = _band_rows(fingerprint, bits)
    conn.execute(
        """
        INSERT INTO photo_fingerprint_bands
            (election_id, band_bits, band_no, band_value, submission_id, fingerprint)
        SELECT %s, %s, q.band_no, q.band_value, %s, %s
        FROM unnest(%s::smallint[], %s::bigint[]) AS q (band_no, band_value)
        """,
        (election_id, bits, submission_id, to_signed(fingerprint), numbers, values),
    )


def recut_bands(conn: psycopg.Connection, election_id: str, bits: int) -> int:
    """Re-cut an election's bands for `bits` if any were cut for another value (the
    constant changed since they were written); returns how many photos were re-cut.
    Call under lock_election."""
    # min and max are two seeks at the ends of the election's range of the index
    # (an EXISTS on band_bits <> k would, planned generically, scan the table).
    cut = conn.execute(
        "SELECT min(band_bits), max(band_bits) FROM photo_fingerprint_bands WHERE election_id = %s",
        (election_id,),
    ).fetchone()
    if cut is None or cut[0] is None or cut[0] == cut[1] == bits:
        return 0
    conn.execute("DELETE FROM photo_fingerprint_bands WHERE election_id = %s", (election_id,))
    rows = conn.execute(
        "SELECT submission_id, fingerprint FROM photo_fingerprints WHERE election_id = %s",
        (election_id,),
    ).fetchall()
    with conn.cursor().copy(
        "COPY photo_fingerprint_bands"
        " (election_id, band_bits, band_no, band_value, submission_id, fingerprint) FROM STDIN"
    ) as copy:
        for submission_id, signed in rows:
            for number, value in enumerate(bands(to_unsigned(signed), bits)):
                copy.write_row((election_id, bits, number, to_signed(value), submission_id, signed))
    return len(rows)


def check_and_record(
    conn: psycopg.Connection,
    election_id: str,
    submission_id: uuid.UUID,
    fingerprint: str,
    *,
    bits: int = NEAR_DUPLICATE_BITS,
    confirm: Confirm | None = None,
) -> Match | None:
    """Inside the caller's transaction: the earlier submission this photo nearly
    duplicates (within `bits` and accepted by `confirm`), if any; either way the
    photo's fingerprint is recorded (with the match, for the reviewer). Holds the
    election's lock until the transaction ends."""
    value = parse_fingerprint(fingerprint)
    lock_election(conn, election_id)
    recut_bands(conn, election_id, bits)
    match = find_near_duplicate(
        conn, election_id, value, exclude=submission_id, bits=bits, confirm=confirm
    )
    record_fingerprint(conn, election_id, submission_id, value, match, bits=bits)
    return match
