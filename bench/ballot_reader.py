"""Benchmark: the ballot reader on the labelled evaluation set (seeds/evalset.py).

Prints accuracy on decided photos, abstention, not-a-ballot photos accepted,
wrong marks on valid ballots, photos per second with every core on 2000-px
photos (median of several runs), time per stage and peak memory per worker,
and the near-duplicate fingerprint's measurements.

    .venv/bin/python bench/ballot_reader.py [--per-design 150] [--evalset DIR]
        [--speed-photos 160] [--runs 3] [--processes N] [--fingerprint-papers 30]

Without --evalset the set is generated into a temporary folder (with it, an
existing folder is read, or generated there if it has no labels.csv).
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # before Tesseract is ever started

import numpy as np
from PIL import Image, ImageOps

from ocr.ink import hamming, pose_distance
from ocr.reader import NEAR_DUPLICATE_BITS, NEAR_DUPLICATE_POSE_DEG, read_ballot
from ocr.template import LoadedTemplate, load_template
from seeds.evalset import DESIGNS, Label, generate, read_labels
from seeds.photos import MarkStyle, mark_ballot, phone_photo, random_conditions

STAGES = ("decode", "align", "header_ocr", "marks", "fingerprint")
_templates: dict[str, LoadedTemplate] = {}

Result = tuple[
    str, list[str], str | None, dict[str, float], float, int, list[str], list[float] | None
]


def _template(folder: str) -> LoadedTemplate:
    if folder not in _templates:
        _templates[folder] = load_template(folder)
    return _templates[folder]


def _read(job: tuple[str, bytes]) -> Result:
    """(verdict, marks, fingerprint, stage seconds, total seconds, worker peak KiB,
    reasons, page pose)."""
    folder, data = job
    template = _template(folder)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    reading = read_ballot(template, data, timings=timings)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (
        reading.verdict,
        reading.marks,
        reading.fingerprint,
        timings,
        elapsed,
        peak,
        reading.reasons,
        reading.pose,
    )


def _warm(folders: list[str]) -> int:
    for f in folders:
        _template(f)
    return os.getpid()


def read_all(jobs: list[tuple[str, bytes]], processes: int) -> tuple[list[Result], float]:
    folders = sorted({f for f, _ in jobs})
    with ProcessPoolExecutor(max_workers=processes) as pool:
        # Load every template in every worker before the clock starts.
        list(pool.map(_warm, [folders] * processes * 2))
        started = time.perf_counter()
        results = list(pool.map(_read, jobs, chunksize=4))
        elapsed = time.perf_counter() - started
    return results, elapsed


def accuracy(labels: list[Label], results: list[Result]) -> dict[str, float]:
    out: Counter[str] = Counter()
    for label, (verdict, marks, *_rest) in zip(labels, results, strict=True):
        right = verdict == label.expected and sorted(marks) == sorted(label.marks)
        out["photos"] += 1
        out[f"expected_{label.expected}"] += 1
        if verdict == "unreadable":
            out["abstained"] += 1
        elif right:
            out["right"] += 1
        else:
            out["wrong"] += 1
        if label.expected == "not_a_ballot" and verdict in ("valid", "blank", "overmarked"):
            out["not_a_ballot_accepted"] += 1
        if label.expected == "valid" and verdict != "unreadable" and not right:
            out["wrong_on_valid"] += 1
    decided = out["right"] + out["wrong"]
    return {
        "photos": out["photos"],
        "accuracy_on_decided": out["right"] / decided if decided else 0.0,
        "abstention": out["abstained"] / out["photos"],
        "not_a_ballot_accepted": out["not_a_ballot_accepted"],
        "not_a_ballot_photos": out["expected_not_a_ballot"],
        "wrong_marks_on_valid": out["wrong_on_valid"] / max(1, out["expected_valid"]),
        "valid_ballots": out["expected_valid"],
        "wrong": out["wrong"],
    }


def _errors(labels: list[Label], results: list[Result]) -> list[str]:
    lines = []
    for label, (verdict, marks, *_rest) in zip(labels, results, strict=True):
        if verdict != label.expected or sorted(marks) != sorted(label.marks):
            lines.append(
                f"    {label.photo.name}: expected {label.expected} {list(label.marks)} "
                f"({label.kind}, {label.style or '-'}), got {verdict} {marks}"
            )
    return lines


def _evalset(
    folder: Path, per_design: int, seed: int, workers: int, long_side: int | None
) -> list[Label]:
    if not (folder / "labels.csv").is_file():
        generate(folder, per_design, seed, workers, long_side)
    return list(read_labels(folder))


def _jobs(labels: list[Label]) -> list[tuple[str, bytes]]:
    return [(str(lb.template), lb.photo.read_bytes()) for lb in labels]


# ------------------------------------------------------------------ fingerprints


def _variants(data: bytes, rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """The same photo re-saved, rescaled, cropped and brightness-shifted."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    img = img.convert("RGB")
    out = []

    def save(name: str, im: Image.Image, quality: int) -> None:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        out.append((name, buf.getvalue()))

    save("jpeg", img, int(rng.integers(50, 96)))
    f = float(rng.uniform(0.5, 1.5))
    save("rescale", img.resize((round(img.width * f), round(img.height * f))), 90)
    c = rng.uniform(0.0, 0.1, 4)
    w, h = img.size
    save(
        "crop",
        img.crop((int(c[0] * w), int(c[1] * h), int(w * (1 - c[2])), int(h * (1 - c[3])))),
        90,
    )
    shift = int(rng.choice([-1, 1]) * rng.integers(10, 31))
    arr = np.clip(np.asarray(img, np.int16) + shift, 0, 255).astype(np.uint8)
    save("brightness", Image.fromarray(arr), 90)
    return out


def _paper(key: str, marks: list[str], seed: int, hard: bool) -> tuple[Image.Image, str]:
    from seeds.evalset import _reference

    image, template = _reference(key)
    rng = np.random.default_rng([seed, 99])
    style: MarkStyle | None = "cross" if hard else None
    return mark_ballot(image, template, marks, rng, style, False if hard else None), key


def fingerprint_study(
    folders: dict[str, str], papers_per_option: int, processes: int, seed: int = 7
) -> None:
    """Same paper (variants, re-photographs) vs different papers with the same mark."""
    key = "by2020"
    template = _template(folders[key])
    options = [o.id for o in template.template.options]
    same_jobs: list[tuple[str, bytes]] = []
    same_groups: list[tuple[int, list[str]]] = []
    diff_jobs: list[tuple[str, bytes]] = []
    diff_meta: list[tuple[str, bool]] = []
    for k, option in enumerate(options):
        for j in range(papers_per_option):
            hard = j % 3 == 0  # a cross, no stamp, no signature: the hardest case
            paper, _ = _paper(key, [option], seed * 100_000 + k * 1000 + j, hard)
            rng = np.random.default_rng([seed, k, j, 5])
            photo = phone_photo(paper, rng, random_conditions(rng))
            diff_jobs.append((folders[key], photo))
            diff_meta.append((option, hard))
            if j < max(2, papers_per_option // 4):  # variants for a share of the papers
                first = len(same_jobs)
                names = ["original"]
                same_jobs.append((folders[key], photo))
                for name, data in _variants(photo, rng):
                    names.append(name)
                    same_jobs.append((folders[key], data))
                for r in range(2):
                    names.append(f"rephoto{r}")
                    same_jobs.append(
                        (folders[key], phone_photo(paper, rng, random_conditions(rng)))
                    )
                same_groups.append((first, names))
    same_res, _ = read_all(same_jobs, processes)
    diff_res, _ = read_all(diff_jobs, processes)
    per_kind: dict[str, list[tuple[int, float]]] = {}
    missing = 0
    for first, names in same_groups:
        base = same_res[first]
        for n, name in enumerate(names[1:], start=1):
            other = same_res[first + n]
            if base[2] is None or other[2] is None or base[7] is None or other[7] is None:
                missing += 1
                continue
            per_kind.setdefault(name.rstrip("01"), []).append(
                (hamming(base[2], other[2]), pose_distance(base[7], other[7]))
            )
    pairs: list[tuple[int, float, bool]] = []  # (bits, degrees, both a plain cross)
    for a, b in itertools.combinations(range(len(diff_res)), 2):
        if diff_meta[a][0] != diff_meta[b][0]:
            continue
        ra, rb = diff_res[a], diff_res[b]
        if ra[2] is None or rb[2] is None or ra[7] is None or rb[7] is None:
            continue
        pairs.append(
            (
                hamming(ra[2], rb[2]),
                pose_distance(ra[7], rb[7]),
                diff_meta[a][1] and diff_meta[b][1],
            )
        )

    def near(bits: int, degrees: float) -> bool:
        return bits <= NEAR_DUPLICATE_BITS and degrees <= NEAR_DUPLICATE_POSE_DEG

    print(
        f"near duplicates (ink <= {NEAR_DUPLICATE_BITS} bits and page pose <= "
        f"{NEAR_DUPLICATE_POSE_DEG} deg); {missing} pairs without a fingerprint:"
    )
    reused = [d for k, v in per_kind.items() if k != "rephoto" for d in v]
    found = sum(near(*d) for d in reused)
    print(
        f"  re-used photo (re-saved, rescaled, cropped, brightened): {len(reused)} pairs, "
        f"detected {found / len(reused):.4f}"
    )
    for name, values in per_kind.items():
        bits = [d[0] for d in values]
        degrees = [d[1] for d in values]
        print(
            f"    {name:<11} pairs {len(values):>4}  detected {sum(near(*d) for d in values):>4}"
            f"  ink bits max {max(bits):>2} mean {statistics.mean(bits):.2f}"
            f"  pose deg max {max(degrees):.2f}"
        )
    ink_only = sum(d[0] <= NEAR_DUPLICATE_BITS for d in pairs)
    false = sum(near(d[0], d[1]) for d in pairs)
    closest = min(d[1] for d in pairs)
    print(
        f"  different papers, same marked option: {len(pairs)} pairs, false duplicates "
        f"{false} ({false / len(pairs):.5f}); ink alone would pair {ink_only} "
        f"({ink_only / len(pairs):.5f}); closest pose {closest:.2f} deg"
    )
    hard = [d for d in pairs if d[2]]
    print(
        f"    of which both a plain cross without stamp or signature: {len(hard)} pairs, "
        f"ink alone {sum(d[0] <= NEAR_DUPLICATE_BITS for d in hard)}, "
        f"false duplicates {sum(near(d[0], d[1]) for d in hard)}"
    )


# ------------------------------------------------------------------ main


def _summary(name: str, values: list[float]) -> str:
    runs = [round(v, 4) for v in values]
    return f"  {name:<34} median {statistics.median(values):.4g}   runs {runs}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-design", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evalset", type=Path, default=None)
    parser.add_argument("--speed-photos", type=int, default=160)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--fingerprint-papers",
        type=int,
        default=30,
        help="papers per option for the fingerprint study (0 skips it)",
    )
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="golos-evalset-")
    root = args.evalset or Path(tmp.name)
    started = time.perf_counter()
    labels = _evalset(root, args.per_design, args.seed, args.processes, None)
    speed_labels = _evalset(
        root / "speed-2000px",
        max(1, args.speed_photos // len(DESIGNS)),
        args.seed + 1,
        args.processes,
        2000,
    )
    print(
        f"evaluation set: {len(labels)} photos of {len(DESIGNS)} designs "
        f"({time.perf_counter() - started:.0f} s to prepare), {args.processes} processes"
    )

    results, _ = read_all(_jobs(labels), args.processes)
    acc = accuracy(labels, results)
    print("accuracy (whole evaluation set, deterministic):")
    for k, v in acc.items():
        print(f"  {k:<34} {v:.4g}" if isinstance(v, float) else f"  {k:<34} {v}")
    verdicts = Counter(r[0] for r in results)
    print(f"  verdicts                           {dict(verdicts)}")
    reasons = Counter(
        f"{lb.expected}->{r[0]}"
        for lb, r in zip(labels, results, strict=True)
        if r[0] != lb.expected
    )
    if reasons:
        print(f"  misses                             {dict(reasons)}")
    unreadable = Counter(",".join(r[6]) for r in results if r[0] == "unreadable")
    print(f"  unreadable reasons                 {dict(unreadable)}")
    if args.show_errors:
        print("\n".join(_errors(labels, results)))

    jobs = _jobs(speed_labels)
    per_second, stage_runs, peaks, one_core = [], [], [], []
    for _ in range(args.runs):
        res, elapsed = read_all(jobs, args.processes)
        per_second.append(len(jobs) / elapsed)
        stage_runs.append({s: statistics.mean(r[3].get(s, 0.0) for r in res) for s in STAGES})
        peaks.append(max(r[5] for r in res) / 1024)
        one_core.append(statistics.median(r[4] for r in res))
    print(f"speed: {len(jobs)} photos of 2000 px, {args.runs} runs")
    print(_summary("photos_per_second_all_cores", per_second))
    print(_summary("median_seconds_per_photo_one_core", one_core))
    for s in STAGES:
        print(_summary(f"ms_per_photo_{s}", [1000 * r[s] for r in stage_runs]))
    print(_summary("peak_rss_mb_per_worker", peaks))

    if args.fingerprint_papers:
        folders = {k: str(root / "templates" / k) for k in DESIGNS}
        fingerprint_study(folders, args.fingerprint_papers, args.processes)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
