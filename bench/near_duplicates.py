"""Benchmark: near-duplicate ballot photos in an election of a million (issue 11, item 2).

    .venv/bin/python bench/near_duplicates.py [--quick] [--honest 480] [--worst 120]
        [--originals 200] [--photos 1000000] [--lookups 100] [--runs 3] [--seed 2]

Method (printed again with the figures):

1. Sample. Renders honest phone photos of the demo's ballot (seeds/by-2020/ballot)
   with seeds.photos: a *realistic* set (one box, 70% the leading option and the
   rest shared, every mark style, stamps and signatures by chance, ordinary and
   hard photo conditions) and a *worst-case* set (all the same box, no stamp, no
   signature, the mark styles in turn: every pair of one style is two voters'
   look-alike ballots). A share of the photos is re-used: re-saved as JPEG,
   rescaled, cropped, brightened with a contrast change, screenshotted (scaled
   into a phone screen with status and navigation bars, PNG) and photographed
   again from a screen (pixel grid, gamma, new perspective, blur, light).
   Every photo is read as the worker does up to the fingerprint (alignment,
   boxes, the index key and ocr.scene's descriptor; the header OCR, which
   plays no part in them, is skipped).
2. Re-used copies: a copy is caught when the index surfaces its original (first
   keys within k = NEAR_DUPLICATE_BITS, second keys, ocr.scene.scene_key, within
   k2 = ocr.scene.KEY_BITS, paper keys, ocr.scene.paper_key, within
   ocr.scene.PAPER_KEY_BITS) and ocr.reader.same_photo confirms it. Per
   transform: the share caught, its 95% Wilson lower bound, and the paper
   sketches' correlation between copy and original.
3. Honest photos: every honest pair of a set goes through the pipeline's test
   (the three keys and same_photo: 'sent to review'). At a million photos what
   matters is the chance q that an honest pair is sent to review: a photo is
   compared with every earlier one, so the share sent is
   1 - (1 - exp(-N q)) / (N q) on average over the arrival order. Two honest
   photos are two sheets, and a sheet's texture does not depend on the strokes
   drawn on it, so
       q = P(surfaced on the stroke keys) x [P(both show paper) x P(r >= PAPER_SAME)
           + P(either does not) x P(the rest of the scene passes)].
   - P(surfaced on the stroke keys), two ways: observed (the share of the
     sample's pairs within k and k2, with its 95% Wilson upper end) and the
     SimHash model (each key's bits are signs of projections on independent
     Gaussian directions, so a pair whose key vectors, ocr.scene.key_parts, are
     at angles t1 and t2 is surfaced with chance P(Bin(64, t1/pi) <= k) x
     P(Bin(256, t2/pi) <= k2); averaged over the pairs, its 95% upper end from a
     bootstrap over the photos).
   - P(r >= PAPER_SAME): the sketches of two sheets are PAPER_LENGTH pairs of
     independent values, so r^2 ~ Beta(1/2, (PAPER_LENGTH - 2)/2) exactly. The
     honest pairs' r is printed against that null (mean, spread, maximum, and
     counts above 0.1 ... PAPER_SAME against the null's expectation); the upper
     bound takes the null at the sample's 95% upper spread (chi-square).
   - Photos without a sketch (their paper clipped to white): their pairs are
     decided without the paper; the rest of the scene (table, stamps and
     signatures, pose; strokes taken as alike) is measured on every pair. The
     share of such photos enters at its Wilson upper end in the bound. (Since
     same_scene no longer decides on the strokes and the pose alone, this term
     is what the sample's size bounds: 480 realistic photos give ~115,000 pairs.)
   Also printed: the bound the sample alone gives without the null model (the
   Wilson upper end of its own count above PAPER_SAME): a few hundred photos
   cannot bound q near 1e-9 without a model, whatever the evidence.
   The stroke keys' band, length and limit k2 were chosen on seed 1 (the band
   and length on 100 realistic, 60 worst-case, 20 originals; the limit on the
   sizes 240, 120, 40), PAPER_* on seed 1's sizes 240, 120, 40; the figures are reported
   on another seed (--seed, default 2), not the one they were fitted on.
   --mottle sets the rendered paper's mottle (seeds.photos.PAPER_MOTTLE).
4. Lookup at scale: PostgreSQL (an embedded throwaway cluster unless
   GOLOS_DATABASE_URL is set) is loaded with N fingerprints, second keys and
   paper keys of verified submissions. Each timed lookup is a sample photo's:
   as many earlier honest photos are planted within k bits of its first key and
   k2 of its second as expected at N (the last photo's, the worst: N x
   P(surfaced on the stroke keys), the larger of the observed and the model's,
   Poisson), each with a real honest reading from the sample (and that photo's
   page pose) and a paper key of another sheet (random bits), at the key
   distances of the sample's surfaced honest pairs (drawn with replacement;
   --planting uniform draws them uniformly up to each key's limit instead,
   which puts most of them far closer than honest pairs sit: keys d bits apart
   are C(64, d) many, so surfaced pairs crowd near the limits), and for a copy
   its original; the other rows are random keys (one copy of each original is
   timed, the transforms in turn, each original planted once). At most
   --max-planted candidates are planted per lookup (each carries a ~3 KB
   reading); when more are expected, the time per candidate (honest lookups
   minus 'random' lookups, which have none, over the planted mean) extrapolates
   to the expected count. The time is find_near_duplicate with the pipeline's
   confirmation (same_photo on the stored readings) of the candidates the paper
   key lets through. Median and p99 per run, and the median over runs.

--quick: small sample and 100,000 photos, for development.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from duplicate_index import bench_connection, drop_election, flip, new_election  # noqa: E402

from infra.threads import one_thread_per_process  # noqa: E402
from ocr import reader  # noqa: E402
from ocr.images import decode_gray  # noqa: E402
from ocr.ink import (  # noqa: E402
    hamming,
    ink_fingerprint,
    page_pose,
    pose_distance,
    scene_fingerprint,
)
from ocr.marks import score_box  # noqa: E402
from ocr.reader import (  # noqa: E402
    NEAR_DUPLICATE_BITS,
    NEAR_DUPLICATE_POSE_DEG,
    BallotReading,
    Verdict,
    same_photo,
)
from ocr.scene import (  # noqa: E402
    KEY_BITS,
    KEY_LENGTH,
    PAPER_KEY_BITS,
    PAPER_LENGTH,
    PAPER_SAME,
    compare,
    decode,
    key_parts,
    paper_correlation,
    paper_key_of,
    same_scene,
    same_scenes,
    scene_key_of,
)
from ocr.template import LoadedTemplate, load_template  # noqa: E402
from seeds.photos import (  # noqa: E402
    MARK_STYLES,
    hard_conditions,
    mark_ballot,
    phone_photo,
    random_conditions,
)
from seeds.reuse import TRANSFORMS, reuse  # noqa: E402

TEMPLATE = ROOT / "seeds" / "by-2020" / "ballot"
ELECTION = "bench-near-duplicates"
LOOKALIKE_BITS = 12  # index distance under which two honest photos count as look-alikes
LEADING_SHARE = 0.7
CHUNK = 50_000
BOOTSTRAP = 400  # resamples of the photos for the model's upper bound


@dataclass(frozen=True)
class Photo:
    label: str  # "honest" / "worst" / a transform's name
    style: str
    box: str
    reading: BallotReading | None
    original: int | None = None  # for a copy: the index of its original in the sample


# ------------------------------------------------------------------ reading


def read(template: LoadedTemplate, data: bytes) -> BallotReading | None:
    """The reading's fingerprint, pose and scene as ocr.reader computes them
    (header OCR skipped); None when the page is not found and refined."""
    gray = decode_gray(data, max_pixels=reader.MAX_PIXELS, max_side=reader.WORK_SIDE)
    photo, _ = reader.resize_long_side(gray, reader.WORK_SIDE)
    alignment, problem = reader._locate(template, photo)
    if alignment is None or problem is not None or template.ink is None:
        return None
    homography = alignment.homography
    scores = [score_box(b, photo, homography) for b in template.boxes]
    shifts = [
        (s.shift[0] / b.scale, s.shift[1] / b.scale)
        for b, s in zip(template.boxes, scores, strict=False)
    ]
    values = [s.score for s in scores]
    return BallotReading(
        verdict=Verdict.VALID,
        confidence=1.0,
        fingerprint=ink_fingerprint(template.ink, photo, homography, values, shifts),
        pose=page_pose(homography, template.size),
        scene=scene_fingerprint(template.ink, photo, homography, values, shifts),
    )


# ------------------------------------------------------------------ the sample


def render_sample(
    template: LoadedTemplate, honest: int, worst: int, originals: int, seed: int
) -> tuple[list[Photo], list[Photo], list[Photo]]:
    from seeds.demo import _ballot

    image, tpl = _ballot(str(TEMPLATE))
    options = [o.id for o in tpl.options]
    realistic: list[Photo] = []
    worst_case: list[Photo] = []
    copies: list[Photo] = []
    sources: list[bytes] = []
    for j in range(honest):
        rng = np.random.default_rng([seed, 1, j])
        box = (
            options[0]
            if rng.random() < LEADING_SHARE
            else options[int(rng.integers(1, len(options)))]
        )
        style = MARK_STYLES[int(rng.integers(len(MARK_STYLES)))]
        paper = mark_ballot(image, tpl, [box], rng, style)
        cond = hard_conditions(rng) if rng.random() < 0.2 else random_conditions(rng)
        data = phone_photo(paper, rng, cond)
        realistic.append(Photo("honest", style, box, read(template, data)))
        sources.append(data)
    for j in range(worst):
        rng = np.random.default_rng([seed, 2, j])
        style = MARK_STYLES[j % len(MARK_STYLES)]
        paper = mark_ballot(image, tpl, [options[0]], rng, style, False)
        data = phone_photo(paper, rng, random_conditions(rng))
        worst_case.append(Photo("worst", style, options[0], read(template, data)))
        sources.append(data)
    everyone = realistic + worst_case
    chosen = [i for i in range(len(everyone)) if everyone[i].reading is not None][:originals]
    for i in chosen:
        rng = np.random.default_rng([seed, 3, i])
        for name in TRANSFORMS:
            copy = read(template, reuse(sources[i], name, rng))
            copies.append(Photo(name, everyone[i].style, everyone[i].box, copy, original=i))
    return realistic, worst_case, copies


# ------------------------------------------------------------------ statistics


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval (low, high) of a proportion. Pure."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n)), min(
        1.0, (centre + spread) / (1 + z * z / n)
    )


def binom_cdf(k: int, n: int, p: np.ndarray) -> np.ndarray:
    """P(Bin(n, p) <= k), elementwise. Pure."""
    p = np.clip(p, 0.0, 1.0)
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def review_share(n: int, q: float) -> float:
    """Share of n photos that match an earlier one when each pair does with chance
    q, averaged over the arrival order. Pure."""
    x = n * q
    if x < 1e-9:
        return x / 2
    return 1.0 - (1.0 - math.exp(-x)) / x


def paper_tail(r: float, length: int = PAPER_LENGTH) -> float:
    """P(correlation >= r) of two independent sketches: `length` pairs of
    independent normal values, mean removed (the exact null: r^2 ~ Beta(1/2,
    (length - 2) / 2)). Pure."""
    from scipy.special import betainc

    if r <= 0:
        return 1.0 - 0.5 * float(betainc((length - 2) / 2, 0.5, 1.0 - r * r))
    return 0.5 * float(betainc((length - 2) / 2, 0.5, 1.0 - r * r))


def paper_key_null() -> float:
    """P(two independent sheets' paper keys within PAPER_KEY_BITS): each bit a fair
    coin, the buckets' pixels disjoint. Pure."""
    return float(binom_cdf(PAPER_KEY_BITS, PAPER_LENGTH, np.array(0.5)))


def paper_q(st: PairStats, surface: float, surface_up: float) -> tuple[float, float, float]:
    """(estimate, 95% upper bound, sample-only bound) of the chance an honest pair
    is sent to review. Two sheets' paper is independent of the strokes on them, so
    q = P(surfaced on the stroke keys) x [P(both have a sketch) x P(r >= PAPER_SAME
    | two sheets) + P(either has none) x P(the evidence beside strokes and paper
    passes)], the last measured on every pair (the table, stamps, light and pose
    of two photos do not depend on the strokes).
    The null tail is exact for independent sketches; the upper bound takes it at
    the sample's 95% upper spread of r (chi-square), the share of photos without
    a sketch at its Wilson upper end; the sample-only bound replaces the tail by the Wilson upper
    end of the sample's own count above PAPER_SAME. Pure."""
    from scipy.stats import chi2

    n = len(st.paper)
    # A pair lacks paper evidence when either photo does: 1 - (1 - f)^2 of the pairs
    # for a share f of photos without a sketch (its Wilson upper end for the bound).
    f = st.photos_without_paper / max(1, st.photos)
    f_up = wilson(st.photos_without_paper, max(1, st.photos))[1]
    missing, missing_up = 1 - (1 - f) ** 2, 1 - (1 - f_up) ** 2
    no_paper = st.scene_only / max(1, st.pairs)
    no_paper_up = wilson(st.scene_only, max(1, st.pairs))[1]
    tail = paper_tail(PAPER_SAME)
    if n > 2:
        values = np.asarray(st.paper)
        sd_up = float(np.sqrt(np.sum(values**2) / chi2.ppf(0.05, n)))
        tail_up = paper_tail(PAPER_SAME, max(3, round(1.0 / sd_up**2)))
        above = int((values >= PAPER_SAME).sum())
        tail_sample = wilson(above, n)[1]
    else:
        tail_up = tail_sample = 1.0
    q = surface * ((1 - missing) * tail + missing * no_paper)
    q_up = surface_up * (tail_up + missing_up * no_paper_up)
    q_sample = surface_up * (tail_sample + missing_up * no_paper_up)
    return q, q_up, q_sample


def print_paper(st: PairStats) -> None:
    """The honest pairs' paper correlations against the null model."""
    if not st.paper:
        print(f"  {'':<24} paper: no pair with two sketches ({st.paper_missing} without)")
        return
    values = np.asarray(st.paper)
    sd0 = 1.0 / math.sqrt(PAPER_LENGTH - 1)
    print(
        f"  {'':<24} paper sketches: {len(values)} pairs ({st.paper_missing} without; "
        f"photos without a sketch {st.photos_without_paper} of {st.photos}), "
        f"r mean {values.mean():+.4f}, sd {values.std():.4f} (null {sd0:.4f}), max "
        f"{values.max():.3f} ({values.max() / sd0:.1f} null sd); above r: "
        + ", ".join(
            f"{t}: {int((values >= t).sum())} (null expects {len(values) * paper_tail(t):.1f})"
            for t in (0.1, 0.15, 0.2, PAPER_SAME)
        )
        + f"; keys within {PAPER_KEY_BITS} bits {st.paper_key_near} (null expects "
        f"{len(values) * paper_key_null():.1f}); null P(r >= {PAPER_SAME}) "
        f"{paper_tail(PAPER_SAME):.2e}"
    )


def key_angles(photos: list[Photo]) -> tuple[np.ndarray, np.ndarray]:
    """The angles / pi between every two photos' first-key and second-key vectors
    (ocr.scene.key_parts; each marked box on its own directions, so the vectors
    of two photos meet only on the boxes both marked). Pure."""
    n = len(photos)
    grams = [np.zeros((n, n)), np.zeros((n, n))]
    rows: list[list[dict[str, np.ndarray]]] = [[], []]
    for p in photos:
        scene = p.reading.scene if p.reading is not None else None
        parts = key_parts(decode(scene)) if scene is not None else ({}, {})
        rows[0].append(parts[0])
        rows[1].append(parts[1])
    out = []
    for which in (0, 1):
        vectors = rows[which]
        for box in sorted({b for v in vectors for b in v}):
            size = max(v[box].size for v in vectors if box in v)
            matrix = np.zeros((n, size), np.float32)
            for i, v in enumerate(vectors):
                if box in v and v[box].size == size:
                    matrix[i] = v[box]
            grams[which] += matrix.astype(np.float64) @ matrix.T.astype(np.float64)
        norm = np.sqrt(np.maximum(np.diag(grams[which]), 1e-30))
        cos = np.clip(grams[which] / np.outer(norm, norm), -1.0, 1.0)
        out.append(np.arccos(cos) / np.pi)
    return out[0], out[1]


@dataclass
class PairStats:
    pairs: int = 0
    surfaced: int = 0  # both keys near: first within k bits, second within k2
    first_only: int = 0  # first key within k bits (what one key alone surfaced)
    confirmed_all: int = 0  # the confirmation alone, whatever the index says
    both: int = 0  # surfaced and confirmed: sent to review
    lookalike: int = 0  # first key within LOOKALIKE_BITS
    lookalike_confirmed: int = 0
    model: float = 0.0  # SimHash model: mean over the pairs of P(surfaced | angles)
    model_high: float = 1.0  # ... its 95% upper end (bootstrap over the photos)
    paper: list[float] = field(default_factory=list)  # sketch correlations (both have one)
    paper_missing: int = 0  # pairs where either photo has no paper sketch
    photos: int = 0  # photos with a reading
    photos_without_paper: int = 0  # ... of which without a paper sketch
    paper_key_near: int = 0  # pairs whose paper keys are within PAPER_KEY_BITS
    sent: int = 0  # pairs the pipeline would send to review: all keys and same_photo
    scene_only: int = 0  # pairs whose evidence beside the strokes and paper passes
    # The surfaced pairs' key distances: (first, second; None where either photo has
    # no second key), where the lookups' planted candidates are put (--planting).
    distances: list[tuple[int, int | None]] = field(default_factory=list)

    def surface(self) -> tuple[float, float]:
        """P(surfaced) observed, and its 95% upper bound."""
        n = max(1, self.pairs)
        return self.surfaced / n, wilson(self.surfaced, n)[1]

    def confirm(self) -> tuple[float, float]:
        """P(confirmed | look-alike), and its 95% upper bound."""
        n = self.lookalike
        return (self.lookalike_confirmed / n if n else 0.0), wilson(self.lookalike_confirmed, n)[1]


@lru_cache(maxsize=4096)
def _beside_strokes(text: str) -> dict[str, np.ndarray]:
    """A descriptor's arrays without the marked boxes' strokes or the paper. Pure."""
    return {k: v for k, v in decode(text).items() if k == "page" or k == "ring" or k == "light"}


_SCENE_ONLY: dict[tuple[str, str, bool], bool] = {}


def scene_only(a: str, b: str, same_pose: bool) -> bool:
    """Whether the evidence beside the strokes and the paper (stamps and
    signatures, table, light, pose) lets a pair through, the strokes taken as
    alike and the paper as missing: same_scene on compare without the strokes
    (the costly part, which the rule then ignores). Memoised: the same-box set
    is a subset of all pairs."""
    key = (a, b, same_pose)
    hit = _SCENE_ONLY.get(key)
    if hit is None:
        match = compare(_beside_strokes(a), _beside_strokes(b))
        hit = _SCENE_ONLY[key] = same_scene(match._replace(marks=1.0, paper=None), same_pose)
    return hit


def pair_stats(
    photos: list[Photo],
    same_group: Callable[[Photo, Photo], bool],
    angles: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> PairStats:
    """The pairs of `photos` (their angles from key_angles) that `same_group`
    keeps, through the index and the confirmation."""
    stats = PairStats()
    k, k2 = NEAR_DUPLICATE_BITS, KEY_BITS
    n = len(photos)
    keep = np.zeros((n, n), bool)
    for p in photos:
        if p.reading is not None and p.reading.fingerprint is not None:
            stats.photos += 1
            scene = p.reading.scene
            stats.photos_without_paper += scene is None or "paper" not in decode(scene)
    for (i, a), (j, b) in itertools.combinations(enumerate(photos), 2):
        ra, rb = a.reading, b.reading
        if ra is None or rb is None or ra.fingerprint is None or rb.fingerprint is None:
            continue
        if not same_group(a, b):
            continue
        keep[i, j] = True
        stats.pairs += 1
        d = hamming(ra.fingerprint, rb.fingerprint)
        key_a, key_b = scene_key_of(ra.scene), scene_key_of(rb.scene)
        near = key_a is None or key_b is None or hamming(key_a, key_b) <= k2
        same_pose = (
            ra.pose is not None
            and rb.pose is not None
            and pose_distance(ra.pose, rb.pose) <= NEAR_DUPLICATE_POSE_DEG
        )
        confirmed = (
            a.box == b.box
            and ra.scene is not None
            and rb.scene is not None
            and same_scenes(ra.scene, rb.scene, same_pose)
        )  # same_photo without its index tests
        stats.first_only += d <= k
        stats.surfaced += d <= k and near
        if d <= k and near:
            apart = None if key_a is None or key_b is None else hamming(key_a, key_b)
            stats.distances.append((d, apart))
        stats.confirmed_all += confirmed
        stats.both += d <= k and near and confirmed
        stats.sent += same_photo(ra, rb)
        sa, sb = (decode(r.scene).get("paper") if r.scene else None for r in (ra, rb))
        if sa is None or sb is None:
            stats.paper_missing += 1
        else:
            stats.paper.append(paper_correlation(sa, sb))
            stats.paper_key_near += (
                hamming(paper_key_of(ra.scene) or "0", paper_key_of(rb.scene) or "0")
                <= PAPER_KEY_BITS
            )
        if ra.scene is not None and rb.scene is not None:
            # The rule without the paper, the strokes taken as alike: what the table,
            # stamps, signatures, light and pose alone let through (independent of
            # the strokes on two sheets, so measured on every pair).
            stats.scene_only += scene_only(ra.scene, rb.scene, same_pose)
        if d <= LOOKALIKE_BITS:
            stats.lookalike += 1
            stats.lookalike_confirmed += confirmed
    first, second = angles
    chance = binom_cdf(k, 64, first) * binom_cdf(k2, KEY_LENGTH, second)
    if stats.pairs:
        stats.model = float(chance[keep].mean())
        rng = np.random.default_rng([seed, 6])
        keep |= keep.T
        means = []
        for _ in range(BOOTSTRAP):
            pick = rng.integers(0, n, n)
            sub = keep[np.ix_(pick, pick)] & (pick[:, None] != pick[None, :])
            if sub.any():
                means.append(float(chance[np.ix_(pick, pick)][sub].mean()))
        stats.model_high = float(np.quantile(means, 0.95)) if means else 1.0
    return stats


def confirmation_ms(photos: list[Photo], most: int = 200) -> tuple[float, float]:
    """Median and p90 milliseconds that confirming one surfaced candidate costs:
    its stored reading parsed from JSON, both second keys and same_scenes, caches
    cleared, on the sample's look-alike pairs (same box, first keys within
    LOOKALIKE_BITS), whatever the key tests would say. The planted candidates of
    the lookups below are random honest readings that same_photo turns away at
    its first test, so their time per candidate leaves this out."""
    times: list[float] = []
    for a, b in itertools.combinations(photos, 2):
        ra, rb = a.reading, b.reading
        if ra is None or rb is None or not ra.fingerprint or not rb.fingerprint:
            continue
        if a.box != b.box or hamming(ra.fingerprint, rb.fingerprint) > LOOKALIKE_BITS:
            continue
        text = rb.model_dump_json()
        decode.cache_clear()
        scene_key_of.cache_clear()
        t0 = time.perf_counter()
        stored = BallotReading.model_validate_json(text)
        scene_key_of(ra.scene), scene_key_of(stored.scene)
        if ra.scene is not None and stored.scene is not None:
            same_scenes(ra.scene, stored.scene)
        times.append(time.perf_counter() - t0)
        if len(times) >= most:
            break
    if not times:
        return 0.0, 0.0
    ordered = sorted(times)
    return statistics.median(times) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


# ------------------------------------------------------------------ the database


def _copy_rows(conn: object, table: str, columns: str, lines: list[str]) -> None:
    import psycopg

    assert isinstance(conn, psycopg.Connection)
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for start in range(0, len(lines), CHUNK):
            copy.write("".join(lines[start : start + CHUNK]))


def load_election(
    conn: object,
    keys: list[tuple[int, int, int | None]],
    readings: list[str | None],
    poses: list[list[float] | None] | None = None,
) -> list[uuid.UUID]:
    """Verified submissions with these unsigned (first, second, paper) keys (and
    stored readings and page poses), their fingerprints and bands; returns their
    ids (in order: earlier first)."""
    import psycopg

    from api.submissions.duplicates import bands, key_text, to_signed

    assert isinstance(conn, psycopg.Connection)
    k = NEAR_DUPLICATE_BITS
    new_election(conn, ELECTION)
    ids = [uuid.uuid4() for _ in keys]
    subs = []
    for sid, text in zip(ids, readings, strict=True):
        value = r"\N" if text is None else text.replace("\\", "\\\\")
        subs.append(f"{sid}\t{ELECTION}\tp1\t{{a}}\tbench\t{sid.hex}\tverified\t{value}\n")
    _copy_rows(
        conn,
        "submissions",
        "id, election_id, precinct_id, declared_choice, request_digest, photo_sha256, status,"
        " reading",
        subs,
    )
    del subs
    null = chr(92) + "N"
    prints = [
        f"{sid}\t{ELECTION}\t{to_signed(v)}\t{key_text(w)}\t"
        f"{key_text(x, PAPER_LENGTH) if x is not None else null}\t"
        f"{null if pose is None else '{' + ','.join(map(str, pose)) + '}'}\n"
        for sid, (v, w, x), pose in zip(ids, keys, poses or [None] * len(ids), strict=True)
    ]
    _copy_rows(
        conn,
        "photo_fingerprints",
        "submission_id, election_id, fingerprint, scene_key, paper_key, pose",
        prints,
    )
    del prints
    rows = []
    for sid, (v, w, _x) in zip(ids, keys, strict=True):
        signed, key = to_signed(v), key_text(w)
        for no, band in enumerate(bands(v, k)):
            rows.append(f"{ELECTION}\t{k}\t{no}\t{to_signed(band)}\t{sid}\t{signed}\t{key}\n")
    _copy_rows(
        conn,
        "photo_fingerprint_bands",
        "election_id, band_bits, band_no, band_value, submission_id, fingerprint, scene_key",
        rows,
    )
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE submissions, photo_fingerprints, photo_fingerprint_bands")
    conn.autocommit = False
    return ids


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (
        statistics.median(samples) * 1000,
        ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
    )


@dataclass
class LookupCounts:
    """One lookup's work, counted by wrapping the repository's two queries: the
    candidates LOOKUP_KEYS returned, the batches of stored readings read, the
    readings read, the candidates confirmed."""

    rows: int = 0
    batches: int = 0
    readings: int = 0
    confirmed: int = 0

    def reset(self) -> None:
        self.rows = self.batches = self.readings = self.confirmed = 0

    def row(self) -> tuple[int, int, int, int]:
        return self.rows, self.batches, self.readings, self.confirmed

    def wrap_keys(self, keys_of: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        def counted(*args: Any) -> list[Any]:
            rows = keys_of(*args)
            self.rows += len(rows)
            return rows

        return counted

    def wrap_readings(self, readings_of: Callable[..., dict[Any, Any]]) -> Callable[..., Any]:
        def counted(*args: Any) -> dict[Any, Any]:
            readings = readings_of(*args)
            self.batches += 1
            self.readings += len(readings)
            return readings

        return counted


def time_lookups(
    photos: int,
    queries: list[tuple[str, BallotReading, BallotReading | None]],
    honest_pool: list[BallotReading],
    candidates: float,
    runs: int,
    seed: int,
    distances: list[tuple[int, int | None]] | None = None,
) -> dict[str, object]:
    """Loads the election and times each query's lookup + confirmation; with each
    copy lookup's counts (see LookupCounts) for the slowest. The planted
    candidates sit at key distances drawn from ``distances`` (a surfaced pair's
    missing second distance taken at the limit), or, without, at distances drawn
    uniformly up to each key's limit."""
    from api.submissions import repository
    from api.submissions.duplicates import Candidate, find_near_duplicate, parse_fingerprint

    rng = np.random.default_rng([seed, 4])
    k, k2 = NEAR_DUPLICATE_BITS, KEY_BITS

    def random_key() -> int:
        return int.from_bytes(rng.bytes(KEY_LENGTH // 8), "big")

    def random_paper() -> int:  # another sheet's paper key: independent fair bits
        return int.from_bytes(rng.bytes(PAPER_LENGTH // 8), "big")

    def second(reading: BallotReading) -> int:
        key = scene_key_of(reading.scene)
        return random_key() if key is None else int(key, 16)

    def paper(reading: BallotReading) -> int | None:
        key = paper_key_of(reading.scene)
        return None if key is None else int(key, 16)

    keys: list[tuple[int, int, int | None]] = []
    texts: list[str | None] = []
    poses: list[list[float] | None] = []
    asked: list[tuple[int, int | None]] = []  # each query's second and paper keys
    planted = 0
    once: set[int] = set()
    for kind, query, original in queries:
        assert query.fingerprint is not None
        value = parse_fingerprint(query.fingerprint)
        if kind == "random":
            asked.append((random_key(), random_paper()))
        else:
            asked.append((second(query), paper(query)))
        count = 0 if kind == "random" else int(rng.poisson(candidates))
        for _ in range(count):
            other = honest_pool[int(rng.integers(len(honest_pool)))]
            if other is query:
                continue
            if distances:
                d1, d2 = distances[int(rng.integers(len(distances)))]
                d2 = k2 if d2 is None else d2
            else:
                d1, d2 = int(rng.integers(0, k + 1)), int(rng.integers(0, k2 + 1))
            keys.append(
                (
                    flip(rng, value, d1),
                    flip(rng, asked[-1][0], d2, KEY_LENGTH),
                    random_paper(),  # near on both stroke keys, on another sheet
                )
            )
            texts.append(other.model_dump_json())
            poses.append(other.pose)  # another photo's: honest look-alikes lie as they fall
            planted += 1
        if original is not None and original.fingerprint is not None and id(original) not in once:
            once.add(id(original))  # one election holds the original once, whatever its copies
            keys.append(
                (parse_fingerprint(original.fingerprint), second(original), paper(original))
            )
            texts.append(original.model_dump_json())
            poses.append(original.pose)
    filler = max(0, photos - len(keys))
    random_keys = rng.integers(0, 2**64, size=filler, dtype=np.uint64).tolist()
    keys = [(int(v), random_key(), random_paper()) for v in random_keys] + keys
    none: list[str | None] = [None] * len(random_keys)
    texts = none + texts
    no_pose: list[list[float] | None] = [None] * len(random_keys)
    poses = no_pose + poses
    out: dict[str, object] = {"planted": planted, "rows": len(keys)}
    with bench_connection() as conn:
        started = time.perf_counter()
        load_election(conn, keys, texts, poses)
        out["load_s"] = time.perf_counter() - started
        per_run: dict[str, list[tuple[float, float]]] = defaultdict(list)
        found: dict[str, int] = defaultdict(int)
        total: dict[str, int] = defaultdict(int)
        counts = LookupCounts()
        keys_of, readings_of = repository.near_duplicate_candidate_keys, repository.stored_readings
        repository.near_duplicate_candidate_keys = counts.wrap_keys(keys_of)
        repository.stored_readings = counts.wrap_readings(readings_of)
        copy_lookups: list[tuple[float, str, tuple[int, int, int, int]]] = []
        for _ in range(runs):
            samples: dict[str, list[float]] = defaultdict(list)
            for (kind, query, _original), (key, paper_key) in zip(queries, asked, strict=True):
                assert query.fingerprint is not None

                def same(candidate: Candidate, query: BallotReading = query) -> bool:
                    counts.confirmed += 1
                    if candidate.reading is None:
                        return False
                    return same_photo(query, BallotReading.model_validate(candidate.reading))

                counts.reset()
                t0 = time.perf_counter()
                match = find_near_duplicate(
                    conn,
                    ELECTION,
                    parse_fingerprint(query.fingerprint),
                    confirm=same,
                    scene_key=key,
                    paper_key=paper_key,
                    pose=query.pose,
                )
                elapsed = time.perf_counter() - t0
                conn.rollback()
                group = kind if kind in ("honest", "random") else "copy"
                if group == "copy":
                    copy_lookups.append((elapsed, kind, counts.row()))
                samples[group].append(elapsed)
                samples["all"].append(elapsed)
                found[group] += match is not None
                total[group] += 1
            for group, values in samples.items():
                per_run[group].append(_ms(values))
        repository.near_duplicate_candidate_keys = keys_of
        repository.stored_readings = readings_of
        out["runs"] = dict(per_run)
        out["slowest_copies"] = sorted(copy_lookups, reverse=True)[:5]
        out["found"] = dict(found)
        out["total"] = dict(total)
        drop_election(conn, ELECTION)
    return out


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    one_thread_per_process()  # as the workers that run the lookups (infra.threads)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sample, 100,000 photos")
    parser.add_argument("--honest", type=int, default=480, help="realistic honest photos")
    parser.add_argument("--worst", type=int, default=120, help="worst-case look-alike photos")
    parser.add_argument("--originals", type=int, default=200, help="photos re-used 6 ways each")
    parser.add_argument("--photos", type=int, default=1_000_000, help="election size")
    parser.add_argument("--lookups", type=int, default=100, help="timed lookups of each kind")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--planting",
        choices=("sample", "uniform"),
        default="sample",
        help="the planted candidates' key distances: those of the sample's surfaced honest"
        " pairs, or uniform up to each key's limit (far more of them close to the query)",
    )
    parser.add_argument(
        "--max-planted",
        type=int,
        default=200,
        help="honest candidates planted per lookup at most (the rest is extrapolated)",
    )
    parser.add_argument(
        "--seed", type=int, default=2, help="the sample's seed (ocr.scene.KEY_* fitted on 1)"
    )
    parser.add_argument(
        "--mottle",
        type=float,
        default=None,
        help="the paper's mottle in the rendered photos (seeds.photos.PAPER_MOTTLE)",
    )
    args = parser.parse_args(argv)
    if args.mottle is not None:
        import seeds.photos

        seeds.photos.PAPER_MOTTLE = args.mottle
    if args.quick:
        args.honest, args.worst, args.originals = 60, 40, 12
        args.photos, args.lookups, args.runs = 100_000, 40, 2
    k, k2 = NEAR_DUPLICATE_BITS, KEY_BITS
    print(__doc__.split("\n\n", 2)[2].split("--quick")[0].rstrip() if __doc__ else "")
    print()
    started = time.perf_counter()
    template = load_template(TEMPLATE)
    realistic, worst, copies = render_sample(
        template, args.honest, args.worst, args.originals, args.seed
    )
    everyone = realistic + worst
    print(
        f"sample: {len(realistic)} realistic and {len(worst)} worst-case honest photos, "
        f"{len(copies)} re-used copies of {len(copies) // len(TRANSFORMS)} of them, "
        f"rendered and read in {time.perf_counter() - started:.0f} s; not found/refined: "
        f"{sum(p.reading is None for p in everyone + copies)}"
    )

    print(
        f"\nre-used copies caught (index: first key within {k} bits, second within {k2}, paper "
        f"within {PAPER_KEY_BITS}; and same_photo):"
    )
    caught_all = total_all = 0
    for name in TRANSFORMS:
        batch = [c for c in copies if c.label == name]
        caught = 0
        papers: list[float] = []
        for c in batch:
            original = everyone[c.original].reading if c.original is not None else None
            if c.reading is not None and original is not None:
                caught += same_photo(c.reading, original)
                sa = decode(c.reading.scene).get("paper") if c.reading.scene else None
                sb = decode(original.scene).get("paper") if original.scene else None
                if sa is not None and sb is not None:
                    papers.append(paper_correlation(sa, sb))
        caught_all += caught
        total_all += len(batch)
        spread = (
            f"paper r min {min(papers):.2f}, median {statistics.median(papers):.2f}"
            f" ({len(batch) - len(papers)} without)"
            if papers
            else "no paper sketches"
        )
        print(
            f"  {name:<15} {caught:>4} / {len(batch):<4} {caught / max(1, len(batch)):7.1%}"
            f"   (95% lower bound {wilson(caught, len(batch))[0]:.1%}); {spread}"
        )
    print(
        f"  {'all':<15} {caught_all:>4} / {total_all:<4} {caught_all / max(1, total_all):7.1%}"
        f"   (95% lower bound {wilson(caught_all, total_all)[0]:.1%})"
    )

    print(
        f"\nhonest pairs (index: first key within {k} bits, second within {k2}; confirmation; "
        f"both = sent to review):"
    )
    groups: list[tuple[str, list[Photo], Callable[[Photo, Photo], bool]]] = [
        ("realistic, all pairs", realistic, lambda a, b: True),
        ("realistic, same box", realistic, lambda a, b: a.box == b.box),
        ("worst case, same style", worst, lambda a, b: a.style == b.style),
    ]
    estimates: dict[str, PairStats] = {}
    for name, photos, same_group in groups:
        st = pair_stats(photos, same_group, key_angles(photos), args.seed)
        estimates[name] = st
        seen, seen_up = st.surface()
        confirm, confirm_up = st.confirm()
        print(
            f"  {name:<24} pairs {st.pairs:>6}  first key alone {st.first_only:>4}  surfaced "
            f"{st.surfaced:>4}  confirmed {st.confirmed_all:>4}  both {st.both:>3}  look-alikes "
            f"(<= {LOOKALIKE_BITS} bits) {st.lookalike:>4} of which confirmed "
            f"{st.lookalike_confirmed} (P {confirm:.2e}, upper {confirm_up:.2e}); the rest of "
            f"the scene alone passes on {st.scene_only} pairs; "
            f"sent to review by the pipeline's test (all keys and same_photo): {st.sent}"
        )
        print_paper(st)
        for label, surface, surface_up in (
            ("observed", seen, seen_up),
            ("SimHash model", st.model, st.model_high),
        ):
            q, q_up, q_sample = paper_q(st, surface, surface_up)
            print(
                f"  {'':<24} {label + ':':<15} P(surfaced on the stroke keys) {surface:.2e} "
                f"(95% upper {surface_up:.2e}); q {q:.2e} (upper {q_up:.2e}); at "
                f"{args.photos:,} photos honest sent to review {review_share(args.photos, q):.5%}"
                f" (upper {review_share(args.photos, q_up):.5%}; the sample alone, without the "
                f"null model, bounds it by {review_share(args.photos, q_sample):.2%}); honest "
                f"candidates per lookup on the stroke keys {args.photos * surface:.1f}, after "
                f"the paper key {args.photos * surface * paper_key_null():.2f}"
            )
    real = estimates["realistic, all pairs"]
    candidates = args.photos * max(real.surface()[0], real.model)
    planted_mean = min(candidates, float(args.max_planted))

    queries: list[tuple[str, BallotReading, BallotReading | None]] = []
    originals = {c.original for c in copies}
    fresh = [p for i, p in enumerate(realistic) if i not in originals]  # not planted as originals
    for p in fresh[: args.lookups]:
        if p.reading is not None and p.reading.fingerprint is not None:
            queries.append(("honest", p.reading, None))
    # The planted candidates: honest readings that are not queried themselves (a
    # query would find its own reading planted for a look-alike query).
    asked = {id(q) for _, q, _ in queries}
    pool = [
        p.reading
        for p in realistic
        if p.reading is not None and p.reading.fingerprint and id(p.reading) not in asked
    ]
    # One copy of each original, the transforms in turn: each original is in the
    # election once, and the honest candidates planted around one copy's keys
    # would be candidates of its sibling copies too (six times the density of a
    # real election around them).
    n = len(TRANSFORMS)
    one_each = [copies[j * n + j % n] for j in range(len(copies) // n)]
    for c in one_each[: args.lookups]:
        original = everyone[c.original].reading if c.original is not None else None
        if c.reading is not None and c.reading.fingerprint is not None:
            queries.append((c.label, c.reading, original))
    draw = np.random.default_rng([args.seed, 5])
    for p in realistic[: args.lookups]:
        if p.reading is not None and p.reading.fingerprint is not None:
            key = f"{int(draw.integers(0, 2**64, dtype=np.uint64)):016x}"
            queries.append(("random", p.reading.model_copy(update={"fingerprint": key}), None))
    print(
        f"\nlookup + confirmation in PostgreSQL at {args.photos:,} photos: "
        f"{len(queries)} lookups per run; the realistic set expects {candidates:.1f} honest "
        f"candidates per lookup at this size, {planted_mean:.1f} are planted on average "
        f"(--max-planted); 'random' lookups have none",
        flush=True,
    )
    if args.planting == "sample" and not real.distances:
        print("  the sample surfaced no honest pair: planting uniform instead", flush=True)
    if args.planting == "sample" and real.distances:
        where = real.distances
        firsts = [d for d, _ in where]
        seconds = [KEY_BITS if d is None else d for _, d in where]
        print(
            f"  planted at the key distances of the sample's {len(where)} surfaced honest "
            f"pairs, drawn with replacement (first key: median {statistics.median(firsts):.0f}"
            f" of {NEAR_DUPLICATE_BITS} bits, second: median {statistics.median(seconds):.0f} of"
            f" {KEY_BITS}; uniform draws up to the limits would have medians"
            f" {NEAR_DUPLICATE_BITS / 2:.1f} and {KEY_BITS / 2:.0f})",
            flush=True,
        )
    else:
        where = []
        print("  planted at distances drawn uniformly up to each key's limit", flush=True)
    timing = time_lookups(
        args.photos, queries, pool, planted_mean, args.runs, args.seed, where or None
    )
    print(
        f"  loaded {timing['rows']:,} rows ({timing['planted']:,} planted candidates) in "
        f"{timing['load_s']:.0f} s"
    )
    runs = timing["runs"]
    assert isinstance(runs, dict)
    for group in ("random", "honest", "copy", "all"):
        timed = runs.get(group, [])
        if not timed:
            continue
        medians = [round(m, 3) for m, _ in timed]
        p99s = [round(p, 3) for _, p in timed]
        print(
            f"  {group:<7} median {statistics.median(medians):.3f} ms, p99 "
            f"{statistics.median(p99s):.3f} ms (median of {len(timed)} runs; medians {medians},"
            f" p99s {p99s})"
        )
    med = {g: statistics.median([m for m, _ in v]) for g, v in runs.items()}
    if "random" in med and "honest" in med and planted_mean > 0:
        slope = max(0.0, (med["honest"] - med["random"]) / planted_mean)
        print(
            f"  per honest candidate {slope:.3f} ms (honest minus random, over the planted "
            f"mean); extrapolated honest lookup at {candidates:.0f} candidates: "
            f"{med['random'] + slope * candidates:.1f} ms"
        )
        confirm, confirm_p90 = confirmation_ms(realistic)
        reach = candidates * paper_key_null()
        print(
            f"  confirming a candidate that passes every key: median {confirm:.3f} ms (p90 "
            f"{confirm_p90:.3f} ms; confirmation_ms); of {candidates:.0f} honest candidates on "
            f"the stroke keys the paper key lets {reach:.2f} through to it: honest lookup "
            f"{med['random'] + slope * candidates + confirm * reach:.1f} ms (median cost; "
            f"{med['random'] + slope * candidates + confirm_p90 * reach:.1f} ms at the p90)"
        )
    slowest = timing["slowest_copies"]
    assert isinstance(slowest, list)
    print(
        "  slowest copy lookups (all runs): "
        + "; ".join(
            f"{ms * 1000:.1f} ms {kind} ({rows} candidates, {readings} readings read in "
            f"{batches} batches, {confirmed} confirmed)"
            for ms, kind, (rows, batches, readings, confirmed) in slowest
        )
    )
    found, total = timing["found"], timing["total"]
    assert isinstance(found, dict) and isinstance(total, dict)
    print(
        f"  matches found: copies {found.get('copy', 0)} of {total.get('copy', 0)}, honest "
        f"{found.get('honest', 0)} of {total.get('honest', 0)} (all runs)"
    )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
