"""Near-duplicate ballot photos: one photo re-used in two submissions.

The reader gives each aligned ballot a 64-bit perceptual fingerprint of the
pen strokes in its marked boxes (16 hex digits; ocr.scene.scene_hash):
fingerprints within ocr.reader.NEAR_DUPLICATE_BITS = k bits show the same
strokes (the same paper, or two voters' look-alike marks in one box). A second
256-bit key, independent of the first (ocr.scene.scene_key, from the reading's
scene descriptor: the strokes' finer detail, which look-alike marks share far
less often than their shape), must be within ocr.scene.KEY_BITS = k2 bits as
well; at a million photos the first key alone surfaces too many honest
look-alikes, each costing a confirmation. Both are opaque hashes here: only
their Hamming distances mean anything. The index below finds every earlier
photo within k bits on the first key and k2 on the second, the closest first;
a photo without a second key (a reading stored before it existed, or its old
row) is compared on the first key alone. A third key, of the sheet's own paper
texture (ocr.scene.paper_key: no two sheets share it, a copy keeps it), must be
within ocr.scene.PAPER_KEY_BITS where both photos have one; it turns away the
honest look-alike marks that share both stroke keys before any confirmation.
The caller confirms each candidate (the pipeline with ocr.reader.same_photo,
which compares the two readings' scene descriptors: the paper's texture, the
strokes' fine detail, the table around the page, the light on it; see ocr.scene
and bench/near_duplicates.py for what that separates and what it costs at a
million photos).

Lookup by pigeonhole banding: cut the 64 bits into k+1 bands; if two hashes
differ in at most k bits, at least one band holds none of those bits, so the two
agree exactly on it. The candidates for a new hash are the stored rows equal to
it on some band (k+1 btree range seeks, see infra/migrations/0004); the exact
distances of both keys, stored in the band rows (infra/migrations/0014) and
checked in the index-only scan, then sort them out.

Candidates are the other submissions of the election whose fingerprint is
recorded (their photo was read and decided 'verified' or 'review') and whose
status is still 'verified', 'review', 'superseded' or 'quarantined' (a held
photo was sent all the same): a photo a reviewer later rejects no longer makes
copies of it suspect. Earlier means recorded earlier:
check_and_record runs under a per-election transaction lock, so of two
near-duplicates processed at once exactly one finds the other.

The banding maths here is pure; the SQL (LOOKUP_KEYS, the stored readings of
the candidates as they are confirmed, and the writes) is in repository.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import psycopg

from api.submissions import repository
from api.submissions.schemas import Status
from ocr.ink import poses_within
from ocr.reader import NEAR_DUPLICATE_BITS, NEAR_DUPLICATE_POSE_DEG
from ocr.scene import (
    KEY_BITS,
    KEY_LENGTH,
    PAPER_KEY_BITS,
    PAPER_LENGTH,
    paper_key_of,
    scene_key_of,
)

HASH_BITS = 64
CANDIDATE_STATUSES = (Status.VERIFIED, Status.REVIEW, Status.SUPERSEDED, Status.QUARANTINED)


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
    out: list[int] = []
    shift = HASH_BITS
    for i in range(count):
        width = HASH_BITS // count + (1 if i < HASH_BITS % count else 0)
        shift -= width
        out.append((value >> shift) & ((1 << width) - 1))
    return out


def parse_fingerprint(fingerprint: str) -> int:
    """The reader's 16 hex digits as an unsigned 64-bit int. Pure."""
    if len(fingerprint) != 16:
        raise ValueError(f"a fingerprint is 16 hex digits: {fingerprint!r}")
    return int(fingerprint, 16)


def to_signed(value: int) -> int:
    """Unsigned 64-bit to PostgreSQL's bigint (two's complement), and back below. Pure."""
    return value - (1 << HASH_BITS) if value >= 1 << (HASH_BITS - 1) else value


def to_unsigned(value: int) -> int:
    """PostgreSQL's bigint back to unsigned 64-bit. Pure."""
    return value + (1 << HASH_BITS) if value < 0 else value


def band_rows(value: int, bits: int) -> tuple[list[int], list[int]]:
    """The band numbers and the bands as PostgreSQL bigints. Pure."""
    values = bands(value, bits)
    return list(range(len(values))), [to_signed(v) for v in values]


def scene_key_value(scene: str | None) -> int | None:
    """The second key (KEY_LENGTH bits, unsigned) of a reading's scene descriptor
    (text); None without a usable one. Pure."""
    key = scene_key_of(scene)
    return None if key is None else int(key, 16)


def paper_key_value(scene: str | None) -> int | None:
    """The paper key (PAPER_LENGTH bits, unsigned) of a reading's scene descriptor
    (text); None without one. Pure."""
    key = paper_key_of(scene)
    return None if key is None else int(key, 16)


def key_text(value: int | None, length: int = KEY_LENGTH) -> str | None:
    """A key as PostgreSQL's bit(length) input (hex after an x). Pure."""
    if value is None:
        return None
    if not 0 <= value < 1 << length:
        raise ValueError(f"not a {length}-bit value")
    return f"x{value:0{length // 4}x}"


def lookup_params(
    election_id: str,
    fingerprint: int,
    exclude: uuid.UUID | None,
    bits: int,
    scene_key: int | None = None,
    scene_bits: int = KEY_BITS,
    paper_key: int | None = None,
    paper_bits: int = PAPER_KEY_BITS,
) -> repository.LookupParams:
    """The parameters of repository.LOOKUP_KEYS for an unsigned fingerprint, second key
    and paper key (None: without that key). Pure."""
    numbers, values = band_rows(fingerprint, bits)
    return {
        "v": to_signed(fingerprint),
        "w": key_text(scene_key),
        "p": key_text(paper_key, PAPER_LENGTH),
        "k3": paper_bits,
        "nos": numbers,
        "vals": values,
        "e": election_id,
        "k": bits,
        "k2": scene_bits,
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
    scene_key: int | None = None,
    scene_bits: int = KEY_BITS,
    paper_key: int | None = None,
    paper_bits: int = PAPER_KEY_BITS,
    pose: Sequence[float] | None = None,
) -> Match | None:
    """The first candidate within `bits` bits, and within `scene_bits` on the
    second key and `paper_bits` on the paper key where both photos have one, other
    than `exclude`, that `confirm` accepts: without `confirm`, the closest on the
    first key (the oldest on a tie); with it, in confirmation_order (`pose`: the
    new photo's page pose), the stored readings read a few at a time as the
    confirmation goes."""
    params = lookup_params(
        election_id, fingerprint, exclude, bits, scene_key, scene_bits, paper_key, paper_bits
    )
    rows = repository.near_duplicate_candidate_keys(conn, params)
    if confirm is None:
        return Match(rows[0].submission_id, rows[0].distance) if rows else None
    ordered = confirmation_order(rows, bits, scene_bits, pose)
    start, size = 0, FIRST_BATCH
    while start < len(ordered):
        batch = ordered[start : start + size]
        readings = repository.stored_readings(conn, [row.submission_id for row in batch])
        for row in batch:
            candidate = Candidate(row.submission_id, row.distance, readings.get(row.submission_id))
            if confirm(candidate):
                return Match(candidate.submission_id, candidate.distance)
        start, size = start + size, size * 2
    return None


FIRST_BATCH = 2  # readings fetched for the first candidates; each next batch twice as many


def confirmation_order(
    rows: list[repository.CandidateKeys],
    bits: int,
    scene_bits: int,
    pose: Sequence[float] | None = None,
) -> list[repository.CandidateKeys]:
    """The candidates in the order they are confirmed: those whose page lies in
    the frame as in the new photo (`pose`, within NEAR_DUPLICATE_POSE_DEG) first,
    then the closest on both stroke keys together (each key's distance over its
    limit; a row without a second key counts it at the limit), the oldest first on
    a tie (the rows come oldest first within a distance).

    A re-saved, rescaled, cropped or brightened copy keeps its original's pose to a
    tenth of a degree, while two honest photos lie that close in about 1 pair in
    2,000 (ocr.ink.page_pose); a copy keeps both stroke keys closer to its original
    than most honest look-alikes, though a brightened one's second key drifts as
    far as a sixth of them. So the original is confirmed first even where no paper
    key prunes the look-alikes (a photo whose paper clipped to white). Only the
    order changes: every candidate is still confirmed until one is accepted. Pure."""

    def closeness(row: repository.CandidateKeys) -> tuple[bool, float]:
        second = scene_bits if row.scene_distance is None else row.scene_distance
        posed = (
            pose is not None
            and row.pose is not None
            and poses_within(row.pose, pose, NEAR_DUPLICATE_POSE_DEG)
        )
        return not posed, row.distance / max(1, bits) + second / max(1, scene_bits)

    return sorted(rows, key=closeness)


def record_fingerprint(
    conn: psycopg.Connection,
    election_id: str,
    submission_id: uuid.UUID,
    fingerprint: int,
    match: Match | None = None,
    *,
    bits: int = NEAR_DUPLICATE_BITS,
    scene_key: int | None = None,
    paper_key: int | None = None,
    pose: Sequence[float] | None = None,
) -> None:
    """Store a submission's fingerprint, second key, paper key and page pose (None:
    none) and its bands (replacing any earlier reading's)."""
    old = repository.delete_fingerprint(conn, submission_id)
    if old is not None:
        numbers, values = band_rows(to_unsigned(old.fingerprint), bits)
        repository.delete_bands(conn, old.election_id, bits, submission_id, numbers, values)
    signed = to_signed(fingerprint)
    key = key_text(scene_key)
    repository.insert_fingerprint(
        conn,
        submission_id,
        election_id,
        signed,
        match.submission_id if match else None,
        match.distance if match else None,
        key,
        key_text(paper_key, PAPER_LENGTH),
        pose,
    )
    numbers, values = band_rows(fingerprint, bits)
    repository.insert_bands(conn, election_id, bits, submission_id, signed, numbers, values, key)


def recut_bands(conn: psycopg.Connection, election_id: str, bits: int) -> int:
    """Re-cut an election's bands for `bits` if any were cut for another value (the
    constant changed since they were written); returns how many photos were re-cut.
    Call under repository.lock_fingerprints."""
    cut = repository.band_bits_range(conn, election_id)
    if cut is None or cut == (bits, bits):
        return 0
    prints = repository.election_fingerprints(conn, election_id)
    repository.replace_election_bands(
        conn,
        election_id,
        bits,
        (
            (number, to_signed(value), submission_id, signed, key)
            for submission_id, signed, key in prints
            for number, value in enumerate(bands(to_unsigned(signed), bits))
        ),
    )
    return len(prints)


def check_and_record(
    conn: psycopg.Connection,
    election_id: str,
    submission_id: uuid.UUID,
    fingerprint: str,
    *,
    bits: int = NEAR_DUPLICATE_BITS,
    confirm: Confirm | None = None,
    scene: str | None = None,
    pose: Sequence[float] | None = None,
) -> Match | None:
    """Inside the caller's transaction: the earlier submission this photo nearly
    duplicates (within `bits`, its second key from the reading's `scene`
    descriptor within KEY_BITS, and accepted by `confirm`, those in the reading's
    `pose` first), if any; either way the photo's keys and pose are recorded (with
    the match, for the reviewer). Holds the election's lock until the transaction
    ends."""
    value = parse_fingerprint(fingerprint)
    key = scene_key_value(scene)
    paper = paper_key_value(scene)
    repository.lock_fingerprints(conn, election_id)
    recut_bands(conn, election_id, bits)
    match = find_near_duplicate(
        conn,
        election_id,
        value,
        exclude=submission_id,
        bits=bits,
        confirm=confirm,
        scene_key=key,
        paper_key=paper,
        pose=pose,
    )
    record_fingerprint(
        conn,
        election_id,
        submission_id,
        value,
        match,
        bits=bits,
        scene_key=key,
        paper_key=paper,
        pose=pose,
    )
    return match
