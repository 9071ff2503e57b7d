"""Benchmark: the ballot reader on the seeded generator's photos.

What the end-to-end pipeline relies on: every photo of the seeded ballot read
right (or honestly left to a person), fast enough that the demo's 1,200 photos
are read within minutes on two cores. Prints the median of several runs.

    .venv/bin/python bench/seeded_reader.py [--photos 200] [--runs 3] [--processes 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from infra.threads import one_thread_per_process
from ocr.reader import read_ballot
from ocr.template import LoadedTemplate, load_template
from seeds.generate import SEED_DIR
from seeds.photos import mark_ballot, not_a_ballot_photo, phone_photo

TEMPLATE_DIR = SEED_DIR / "ballot"
_template: LoadedTemplate | None = None


def _case(i: int, option_ids: list[str]) -> tuple[str, list[str]]:
    """Mostly single marks; every 20th blank, every 20th overmarked, every 25th not a ballot."""
    if i % 25 == 24:
        return "not_a_ballot", []
    if i % 20 == 19:
        return "blank", []
    if i % 20 == 18:
        return "overmarked", [
            option_ids[i % len(option_ids)],
            option_ids[(i + 1) % len(option_ids)],
        ]
    return "valid", [option_ids[i % len(option_ids)]]


def make_photos(n: int, seed: int) -> list[tuple[str, list[str], bytes]]:
    loaded = load_template(TEMPLATE_DIR)
    reference = Image.open(TEMPLATE_DIR / loaded.template.reference_image).convert("RGB")
    option_ids = [o.id for o in loaded.template.options]
    photos = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        verdict, marks = _case(i, option_ids)
        if verdict == "not_a_ballot":
            data = not_a_ballot_photo(rng)
        else:
            data = phone_photo(mark_ballot(reference, loaded.template, marks, rng), rng)
        photos.append((verdict, marks, data))
    return photos


def _read(data: bytes) -> tuple[str, list[str], float]:
    global _template
    if _template is None:
        _template = load_template(TEMPLATE_DIR)
    started = time.perf_counter()
    reading = read_ballot(_template, data)
    return reading.verdict, reading.marks, time.perf_counter() - started


def run(photos: list[tuple[str, list[str], bytes]], processes: int) -> dict[str, float]:
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=processes) as pool:
        pool.submit(_read, photos[0][2]).result()  # warm up: template features, Tesseract
        started = time.perf_counter()
        results = list(pool.map(_read, [p[2] for p in photos], chunksize=4))
    elapsed = time.perf_counter() - started
    outcome: Counter[str] = Counter()
    for (verdict, marks, _), (got, got_marks, _) in zip(photos, results, strict=True):
        if got == "unreadable":
            outcome["abstained"] += 1
        elif got == verdict and sorted(got_marks) == sorted(marks):
            outcome["right"] += 1
        else:
            outcome["wrong"] += 1
            if verdict == "not_a_ballot":
                outcome["not_a_ballot_accepted"] += 1
    decided = outcome["right"] + outcome["wrong"]
    return {
        "accuracy_on_decided": outcome["right"] / decided if decided else 0.0,
        "abstention": outcome["abstained"] / len(photos),
        "wrong": outcome["wrong"],
        "not_a_ballot_accepted": outcome["not_a_ballot_accepted"],
        "photos_per_second": len(photos) / elapsed,
        "median_seconds_per_photo_one_core": statistics.median(r[2] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    one_thread_per_process()
    runs = [run(make_photos(args.photos, seed), args.processes) for seed in range(args.runs)]
    print(f"seeded reader: {args.photos} photos x {args.runs} runs, {args.processes} processes")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"  {key:<36} median {statistics.median(values):.4g}   runs {values}")


if __name__ == "__main__":
    main()
