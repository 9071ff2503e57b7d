"""Benchmark: near-duplicate ballot photos in an election of a million (issue 11, item 2).

    .venv/bin/python bench/near_duplicates.py [--quick] [--honest 240] [--worst 120]
        [--originals 40] [--photos 1000000] [--lookups 200] [--runs 3] [--seed 1]

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
2. Re-used copies: a copy is caught when the index surfaces its original (keys
   within NEAR_DUPLICATE_BITS) and ocr.reader.same_photo confirms it. Per
   transform: the share caught and its 95% Wilson lower bound.
3. Honest photos: every honest pair of a set is put through the index test and
   the confirmation. At a million photos what matters is the chance q that an
   honest pair is both surfaced and confirmed: a photo is compared with every
   earlier one, so the share sent to review is 1 - (1 - exp(-N q)) / (N q) on
   average over the arrival order. q is estimated as
   P(surfaced) x P(confirmed | look-alike): P(surfaced) is the share of the
   sample's pairs within k bits (the SimHash model's P(Bin(64, d/64) <= k),
   averaged over the pairs, is printed beside it: it counts the projections'
   noise twice, so it is pessimistic), P(confirmed | look-alike) the
   confirmation's rate on the pairs closest in the index (within
   LOOKALIKE_BITS), as same_photo decides it without its index test; the upper
   bound multiplies the two 95% Wilson upper ends. Assumptions: the sample's
   pairs stand for the election's (one design, the proportions above), and
   surfacing and confirmation are independent among look-alike pairs.
4. Lookup at scale: PostgreSQL (an embedded throwaway cluster unless
   GOLOS_DATABASE_URL is set) is loaded with N fingerprints of verified
   submissions. Each timed lookup is a sample photo's: as many earlier honest
   photos are planted within k bits of its key as the model expects at N
   (the last photo's, the worst: N x P(surfaced), Poisson), each with a real
   honest reading from the sample, and for a copy its original; the other rows
   are random keys. At most --max-planted candidates are planted per lookup
   (each carries a ~3 KB reading to load); when the model expects more, the
   time per candidate (honest lookups minus 'random' lookups, which have none,
   over the planted mean) extrapolates to the expected count. The time is
   find_near_duplicate with the pipeline's confirmation (same_photo on the
   stored readings): lookup + confirmation. Median and p99 per run, and the
   median over runs. The planted honest candidates are random honest readings
   (any box), so "honest matches found" there is a weak check only.

--quick: small sample and 100,000 photos, for development.
"""

from __future__ import annotations

import argparse
import io
import itertools
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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
from ocr.scene import same_scenes  # noqa: E402
from ocr.template import LoadedTemplate, load_template  # noqa: E402
from seeds.photos import (  # noqa: E402
    MARK_STYLES,
    PhotoConditions,
    hard_conditions,
    mark_ballot,
    phone_photo,
    random_conditions,
)

TEMPLATE = ROOT / "seeds" / "by-2020" / "ballot"
ELECTION = "bench-near-duplicates"
LOOKALIKE_BITS = 12  # index distance under which two honest photos count as look-alikes
LEADING_SHARE = 0.7
TRANSFORMS = ("resave", "rescale", "crop", "brightness", "screenshot", "rephoto_screen")
CHUNK = 50_000


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


# ------------------------------------------------------------------ re-use


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _screenshot(img: Image.Image, rng: np.random.Generator) -> bytes:
    w, h = img.size
    sw, sh = (1080, 2340) if h >= w else (2340, 1080)
    s = min(sw / w, (sh - 300) / h) * float(rng.uniform(0.6, 1.0))
    shot = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    dark = rng.random() < 0.5
    canvas = Image.new(
        "RGB", (max(shot.width, 400), shot.height + 260), (0, 0, 0) if dark else (245, 245, 245)
    )
    canvas.paste(shot, ((canvas.width - shot.width) // 2, 130))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, canvas.width, 60), fill=(30, 30, 30))
    draw.text((20, 20), "12:41   4G  87%", fill=(255, 255, 255))
    draw.rectangle((0, canvas.height - 80, canvas.width, canvas.height), fill=(20, 20, 20))
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return buf.getvalue()


def _rephoto_screen(img: Image.Image, rng: np.random.Generator) -> bytes:
    """The photo shown on a screen (pixel grid, gamma, dimmer) and photographed."""
    w, h = img.size
    shown = np.asarray(img.resize((round(w * 0.8), round(h * 0.8))), np.float32) / 255.0
    shown = shown ** float(rng.uniform(0.75, 1.3))
    shown[::3] *= 0.88  # the pixel grid: moiré once resampled
    shown[:, ::3] *= 0.92
    screen = np.clip(shown * 255.0 * float(rng.uniform(0.8, 1.0)), 0, 255).astype(np.uint8)
    cond = PhotoConditions(
        rotation_deg=float(rng.uniform(-6, 6)),
        perspective=float(rng.uniform(0.0, 0.04)),
        blur_sigma=float(rng.uniform(0.4, 1.3)),
        light_gradient=float(rng.uniform(0.0, 0.3)),
        shadow=False,
        jpeg_quality=int(rng.integers(70, 93)),
        long_side=int(rng.integers(1400, 2001)),
        ballot_fraction=float(rng.uniform(0.85, 0.97)),
    )
    return phone_photo(Image.fromarray(screen), rng, cond)


def reuse(data: bytes, name: str, rng: np.random.Generator) -> bytes:
    """A re-used copy of a photo. Pure given `rng`."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    w, h = img.size
    if name == "resave":
        return _jpeg(img, int(rng.integers(50, 96)))
    if name == "rescale":
        f = float(rng.uniform(0.5, 1.5))
        return _jpeg(img.resize((round(w * f), round(h * f)), Image.Resampling.BILINEAR), 90)
    if name == "crop":
        c = rng.uniform(0.0, 0.1, 4)
        box = (int(c[0] * w), int(c[1] * h), int(w * (1 - c[2])), int(h * (1 - c[3])))
        return _jpeg(img.crop(box), 90)
    if name == "brightness":
        gain, offset = float(rng.uniform(0.7, 1.3)), float(rng.uniform(-30, 30))
        arr = np.clip(np.asarray(img, np.float32) * gain + offset, 0, 255).astype(np.uint8)
        return _jpeg(Image.fromarray(arr), 90)
    if name == "screenshot":
        return _screenshot(img, rng)
    if name == "rephoto_screen":
        return _rephoto_screen(img, rng)
    raise ValueError(name)


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


def wilson_low(hits: int, n: int, z: float = 1.96) -> float:
    """Lower end of the 95% Wilson interval of a proportion. Pure."""
    if n == 0:
        return 0.0
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


def wilson_high(hits: int, n: int, z: float = 1.96) -> float:
    """Upper end of the 95% Wilson interval of a proportion. Pure."""
    if n == 0:
        return 1.0
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(Bin(n, p) <= k). Pure."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def review_share(n: int, q: float) -> float:
    """Share of n photos that match an earlier one when each pair does with chance
    q, averaged over the arrival order. Pure."""
    x = n * q
    if x < 1e-9:
        return x / 2
    return 1.0 - (1.0 - math.exp(-x)) / x


@dataclass
class PairStats:
    pairs: int = 0
    surfaced: int = 0  # within k bits
    confirmed_all: int = 0  # the confirmation alone, whatever the index says
    both: int = 0  # surfaced and confirmed: sent to review
    lookalike: int = 0  # within LOOKALIKE_BITS
    lookalike_confirmed: int = 0
    p_surface: float = 0.0  # model: mean P(Bin(64, d/64) <= k)

    def surface(self) -> tuple[float, float, float]:
        """P(surfaced): observed, its 95% upper bound, and the SimHash model's."""
        n = max(1, self.pairs)
        return self.surfaced / n, wilson_high(self.surfaced, n), self.p_surface / n

    def q(self) -> tuple[float, float]:
        """(estimate, 95% upper bound) of the chance an honest pair goes to review:
        P(surfaced) x P(confirmed | look-alike)."""
        observed, high, _ = self.surface()
        n = self.lookalike
        confirm = self.lookalike_confirmed / n if n else 0.0
        return observed * confirm, high * wilson_high(self.lookalike_confirmed, n)


def pair_stats(photos: list[Photo], same_group: Callable[[Photo, Photo], bool]) -> PairStats:
    stats = PairStats()
    k = NEAR_DUPLICATE_BITS
    for a, b in itertools.combinations(photos, 2):
        ra, rb = a.reading, b.reading
        if ra is None or rb is None or ra.fingerprint is None or rb.fingerprint is None:
            continue
        if not same_group(a, b):
            continue
        stats.pairs += 1
        d = hamming(ra.fingerprint, rb.fingerprint)
        stats.p_surface += binom_cdf(k, 64, d / 64)
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
        )  # same_photo without its index test
        stats.surfaced += d <= k
        stats.confirmed_all += confirmed
        stats.both += d <= k and confirmed
        if d <= LOOKALIKE_BITS:
            stats.lookalike += 1
            stats.lookalike_confirmed += confirmed
    return stats


# ------------------------------------------------------------------ the database


def _copy_rows(conn: object, table: str, columns: str, lines: list[str]) -> None:
    import psycopg

    assert isinstance(conn, psycopg.Connection)
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for start in range(0, len(lines), CHUNK):
            copy.write("".join(lines[start : start + CHUNK]))


def load_election(
    conn: object,
    keys: list[int],
    readings: list[str | None],
) -> list[uuid.UUID]:
    """Verified submissions with these unsigned keys (and stored readings), their
    fingerprints and bands; returns their ids (in order: earlier first)."""
    import psycopg

    from api.submissions.duplicates import bands, to_signed

    assert isinstance(conn, psycopg.Connection)
    k = NEAR_DUPLICATE_BITS
    conn.execute("DELETE FROM elections WHERE id = %s", (ELECTION,))
    conn.execute(
        "INSERT INTO elections (id, name, definition) VALUES (%s, 'Benchmark', '{}')", (ELECTION,)
    )
    conn.execute(
        "INSERT INTO precincts (election_id, id, region, district) VALUES (%s, 'p1', 'r', 'd')",
        (ELECTION,),
    )
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
    prints = [f"{sid}\t{ELECTION}\t{to_signed(v)}\n" for sid, v in zip(ids, keys, strict=True)]
    _copy_rows(conn, "photo_fingerprints", "submission_id, election_id, fingerprint", prints)
    del prints
    rows = []
    for sid, v in zip(ids, keys, strict=True):
        signed = to_signed(v)
        for no, band in enumerate(bands(v, k)):
            rows.append(f"{ELECTION}\t{k}\t{no}\t{to_signed(band)}\t{sid}\t{signed}\n")
    _copy_rows(
        conn,
        "photo_fingerprint_bands",
        "election_id, band_bits, band_no, band_value, submission_id, fingerprint",
        rows,
    )
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE submissions, photo_fingerprints, photo_fingerprint_bands")
    conn.autocommit = False
    return ids


def _flip(rng: np.random.Generator, value: int, count: int) -> int:
    for bit in rng.choice(64, size=count, replace=False):
        value ^= 1 << int(bit)
    return value


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (
        statistics.median(samples) * 1000,
        ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
    )


def time_lookups(
    photos: int,
    queries: list[tuple[str, BallotReading, BallotReading | None]],
    honest_pool: list[BallotReading],
    candidates: float,
    runs: int,
    seed: int,
) -> dict[str, object]:
    """Loads the election and times each query's lookup + confirmation."""
    scratch = None
    if "GOLOS_DATABASE_URL" not in os.environ:
        scratch = Path(tempfile.mkdtemp(prefix="golos-bench-"))
        scratch.chmod(0o711)
        os.environ["GOLOS_DATA_DIR"] = str(scratch / "data")
    from api.cli import ensure_database
    from api.submissions.duplicates import Candidate, find_near_duplicate, parse_fingerprint
    from infra import db
    from infra.pg import EmbeddedPostgres
    from infra.settings import get_settings

    rng = np.random.default_rng([seed, 4])
    k = NEAR_DUPLICATE_BITS
    keys: list[int] = []
    texts: list[str | None] = []
    planted = 0
    for kind, query, original in queries:
        assert query.fingerprint is not None
        value = parse_fingerprint(query.fingerprint)
        count = 0 if kind == "random" else int(rng.poisson(candidates))
        for _ in range(count):
            other = honest_pool[int(rng.integers(len(honest_pool)))]
            if other is query:
                continue
            keys.append(_flip(rng, value, int(rng.integers(0, k + 1))))
            texts.append(other.model_dump_json())
            planted += 1
        if original is not None and original.fingerprint is not None:
            keys.append(parse_fingerprint(original.fingerprint))
            texts.append(original.model_dump_json())
    filler = photos - len(keys)
    random_keys = rng.integers(0, 2**64, size=max(0, filler), dtype=np.uint64).tolist()
    keys = [int(v) for v in random_keys] + keys
    none: list[str | None] = [None] * len(random_keys)
    texts = none + texts
    ensure_database()
    out: dict[str, object] = {"planted": planted, "rows": len(keys)}
    try:
        with db.connection() as conn:
            started = time.perf_counter()
            load_election(conn, keys, texts)
            out["load_s"] = time.perf_counter() - started
            per_run: dict[str, list[tuple[float, float]]] = defaultdict(list)
            found: dict[str, int] = defaultdict(int)
            total: dict[str, int] = defaultdict(int)
            for _ in range(runs):
                samples: dict[str, list[float]] = defaultdict(list)
                for kind, query, _original in queries:
                    assert query.fingerprint is not None

                    def same(candidate: Candidate, query: BallotReading = query) -> bool:
                        if candidate.reading is None:
                            return False
                        return same_photo(query, BallotReading.model_validate(candidate.reading))

                    t0 = time.perf_counter()
                    match = find_near_duplicate(
                        conn, ELECTION, parse_fingerprint(query.fingerprint), confirm=same
                    )
                    elapsed = time.perf_counter() - t0
                    conn.rollback()
                    group = kind if kind in ("honest", "random") else "copy"
                    samples[group].append(elapsed)
                    samples["all"].append(elapsed)
                    found[group] += match is not None
                    total[group] += 1
                for group, values in samples.items():
                    per_run[group].append(_ms(values))
            out["runs"] = dict(per_run)
            out["found"] = dict(found)
            out["total"] = dict(total)
            conn.execute("DELETE FROM photo_fingerprint_bands WHERE election_id = %s", (ELECTION,))
            conn.execute("DELETE FROM photo_fingerprints WHERE election_id = %s", (ELECTION,))
            conn.execute("DELETE FROM submissions WHERE election_id = %s", (ELECTION,))
            conn.execute("DELETE FROM precincts WHERE election_id = %s", (ELECTION,))
            conn.execute("DELETE FROM elections WHERE id = %s", (ELECTION,))
            conn.commit()
    finally:
        db.close_pool()
        if scratch is not None:
            EmbeddedPostgres(get_settings().pg_dir).stop()
            shutil.rmtree(scratch, ignore_errors=True)
    return out


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sample, 100,000 photos")
    parser.add_argument("--honest", type=int, default=240, help="realistic honest photos")
    parser.add_argument("--worst", type=int, default=120, help="worst-case look-alike photos")
    parser.add_argument("--originals", type=int, default=40, help="photos re-used 6 ways each")
    parser.add_argument("--photos", type=int, default=1_000_000, help="election size")
    parser.add_argument("--lookups", type=int, default=100, help="timed lookups of each kind")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--max-planted",
        type=int,
        default=200,
        help="honest candidates planted per lookup at most (the rest is extrapolated)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.quick:
        args.honest, args.worst, args.originals = 60, 40, 12
        args.photos, args.lookups, args.runs = 100_000, 40, 2
    k = NEAR_DUPLICATE_BITS
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

    print(f"\nre-used copies caught (index within {k} bits and same_photo):")
    caught_all = total_all = 0
    for name in TRANSFORMS:
        batch = [c for c in copies if c.label == name]
        caught = 0
        for c in batch:
            original = everyone[c.original].reading if c.original is not None else None
            if c.reading is not None and original is not None:
                caught += same_photo(c.reading, original)
        caught_all += caught
        total_all += len(batch)
        print(
            f"  {name:<15} {caught:>4} / {len(batch):<4} {caught / max(1, len(batch)):7.1%}"
            f"   (95% lower bound {wilson_low(caught, len(batch)):.1%})"
        )
    print(
        f"  {'all':<15} {caught_all:>4} / {total_all:<4} {caught_all / max(1, total_all):7.1%}"
        f"   (95% lower bound {wilson_low(caught_all, total_all):.1%})"
    )

    print(f"\nhonest pairs (index within {k} bits; confirmation; both = sent to review):")
    groups: list[tuple[str, list[Photo], Callable[[Photo, Photo], bool]]] = [
        ("realistic, all pairs", realistic, lambda a, b: True),
        ("realistic, same box", realistic, lambda a, b: a.box == b.box),
        ("worst case, same style", worst, lambda a, b: a.style == b.style),
    ]
    estimates: dict[str, PairStats] = {}
    for name, photos, same_group in groups:
        st = pair_stats(photos, same_group)
        estimates[name] = st
        q, q_up = st.q()
        seen, seen_up, model = st.surface()
        print(
            f"  {name:<24} pairs {st.pairs:>6}  surfaced {st.surfaced:>4}  confirmed "
            f"{st.confirmed_all:>4}  both {st.both:>3}  look-alikes (<= {LOOKALIKE_BITS} bits) "
            f"{st.lookalike:>4} of which confirmed {st.lookalike_confirmed}"
        )
        print(
            f"  {'':<24} P(surfaced) {seen:.2e} (95% upper {seen_up:.2e}; SimHash model "
            f"{model:.2e}), q {q:.2e} (upper {q_up:.2e})"
        )
        print(
            f"  {'':<24} at {args.photos:,} photos: honest sent to review "
            f"{review_share(args.photos, q):.4%} (upper {review_share(args.photos, q_up):.3%}); "
            f"honest candidates per lookup {args.photos * seen:.0f} (upper "
            f"{args.photos * seen_up:.0f})"
        )
    real = estimates["realistic, all pairs"]
    candidates = args.photos * real.surface()[0]
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
    for c in copies[: args.lookups]:
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
        f"{len(queries)} lookups per run; the realistic model expects {candidates:.1f} honest "
        f"candidates per lookup at this size, {planted_mean:.1f} are planted on average "
        f"(--max-planted); 'random' lookups have none",
        flush=True,
    )
    timing = time_lookups(args.photos, queries, pool, planted_mean, args.runs, args.seed)
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
    found, total = timing["found"], timing["total"]
    assert isinstance(found, dict) and isinstance(total, dict)
    print(
        f"  matches found: copies {found.get('copy', 0)} of {total.get('copy', 0)}, honest "
        f"{found.get('honest', 0)} of {total.get('honest', 0)} (all runs)"
    )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
