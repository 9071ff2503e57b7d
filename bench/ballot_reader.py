"""Benchmark: the ballot reader on the labelled evaluation set (seeds/evalset.py).

Prints, for the designs the reader was tuned on (seeds.evalset.TUNED), for the
designs held out of tuning (seeds.evalset.HELD_OUT: the issue-12 targets are
measured on these) and for each design: accuracy on decided photos, abstention,
not-a-ballot photos accepted, wrong marks on valid ballots; then photos per
second with every core on 2000-px photos (median of several runs), time per
stage and peak memory per worker.

    .venv/bin/python bench/ballot_reader.py [--per-design 150] [--evalset DIR]
        [--designs tuned|held_out|KEY ...] [--speed-photos 160] [--runs 3]
        [--processes N] [--show-errors]

Without --evalset the set is generated into a temporary folder (with it, an
existing folder is read, or generated there if it has no labels.csv).

Near-duplicates are not measured here: the platform decides them with the index
keys, ocr.scene's descriptors and ocr.reader.same_photo, which
bench/near_duplicates.py measures (the ink-and-pose rule this file used to
measure is no longer the platform's).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from infra.threads import one_thread_per_process
from ocr.header import TEXT_HEIGHT, run_tesseract
from ocr.reader import read_ballot
from ocr.template import LoadedTemplate, load_template
from seeds.evalset import (
    DESIGNS,
    HELD_OUT,
    TUNED,
    Label,
    expand_designs,
    generate,
    group_of,
    read_labels,
)

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
        template = _template(f)
        # Tesseract's models load on a process's first header check: before the clock.
        run_tesseract(
            np.full((TEXT_HEIGHT, 4 * TEXT_HEIGHT), 255, np.uint8), template.template.ocr_languages
        )
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
    folder: Path,
    per_design: int,
    seed: int,
    workers: int,
    long_side: int | None,
    designs: list[str] | None,
) -> list[Label]:
    if not (folder / "labels.csv").is_file():
        generate(folder, per_design, seed, workers, long_side, designs)
    labels = list(read_labels(folder))
    return [lb for lb in labels if designs is None or lb.template.name in designs]


def _print_accuracy(title: str, labels: list[Label], results: list[Result]) -> None:
    acc = accuracy(labels, results)
    print(f"{title}:")
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


def _per_design(labels: list[Label], results: list[Result]) -> None:
    print(
        f"  {'design':<14} {'group':<9} {'photos':>6} {'acc_decided':>11} {'abstain':>8} "
        f"{'nab_acc':>7} {'wrong_valid':>11}"
    )
    for key in DESIGNS:
        pairs = [(lb, r) for lb, r in zip(labels, results, strict=True) if lb.template.name == key]
        if not pairs:
            continue
        acc = accuracy([p[0] for p in pairs], [p[1] for p in pairs])
        print(
            f"  {key:<14} {group_of(key):<9} {acc['photos']:>6} "
            f"{acc['accuracy_on_decided']:>11.4f} {acc['abstention']:>8.4f} "
            f"{acc['not_a_ballot_accepted']:>7} {acc['wrong_marks_on_valid']:>11.4f}"
        )


def _jobs(labels: list[Label]) -> list[tuple[str, bytes]]:
    return [(str(lb.template), lb.photo.read_bytes()) for lb in labels]


# ------------------------------------------------------------------ main


def _summary(name: str, values: list[float]) -> str:
    runs = [round(v, 4) for v in values]
    return f"  {name:<34} median {statistics.median(values):.4g}   runs {runs}"


def main(argv: list[str] | None = None) -> None:
    one_thread_per_process()  # as the workers (infra.threads); forked readers inherit it
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-design", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evalset", type=Path, default=None)
    parser.add_argument(
        "--designs", nargs="*", default=None, help="keys of DESIGNS, or 'tuned' / 'held_out'"
    )
    parser.add_argument("--speed-photos", type=int, default=160)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args(argv)
    designs = expand_designs(args.designs)
    chosen = designs or list(DESIGNS)
    tmp = tempfile.TemporaryDirectory(prefix="golos-evalset-")
    root = args.evalset or Path(tmp.name)
    started = time.perf_counter()
    labels = _evalset(root, args.per_design, args.seed, args.processes, None, designs)
    speed_labels = _evalset(
        root / "speed-2000px",
        max(1, args.speed_photos // len(chosen)),
        args.seed + 1,
        args.processes,
        2000,
        designs,
    )
    print(
        f"evaluation set: {len(labels)} photos of {len(chosen)} designs "
        f"({time.perf_counter() - started:.0f} s to prepare), {args.processes} processes"
    )
    print(f"  tuned on:      {', '.join(k for k in TUNED if k in chosen) or '-'}")
    print(f"  held out:      {', '.join(k for k in HELD_OUT if k in chosen) or '-'}")

    results, _ = read_all(_jobs(labels), args.processes)
    for group, keys in (("held_out", HELD_OUT), ("tuned", TUNED)):
        pairs = [(lb, r) for lb, r in zip(labels, results, strict=True) if lb.template.name in keys]
        if pairs:
            _print_accuracy(
                f"accuracy, designs {group.upper()} ({', '.join(k for k in keys if k in chosen)})",
                [p[0] for p in pairs],
                [p[1] for p in pairs],
            )
    _print_accuracy("accuracy, whole evaluation set (deterministic)", labels, results)
    print("per design:")
    _per_design(labels, results)
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
    print(f"speed: {len(jobs)} photos of 2000 px ({', '.join(chosen)}), {args.runs} runs")
    print(_summary("photos_per_second_all_cores", per_second))
    print(_summary("median_seconds_per_photo_one_core", one_core))
    for s in STAGES:
        print(_summary(f"ms_per_photo_{s}", [1000 * r[s] for r in stage_runs]))
    print(_summary("peak_rss_mb_per_worker", peaks))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
