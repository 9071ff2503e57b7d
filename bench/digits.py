"""Benchmark: the handwritten-number reader (``ocr.digits``) on writers it never saw.

Writers: the named styles of ``seeds.handwriting`` (``NAMED_WRITERS``) and
``writers(EVALUATION_SEED, 30)``; training used ``writers(TRAIN_SEED, 300)`` and
calibration ``writers(CALIBRATION_SEED, 60)`` (``seeds/train_digits.py``).
Three conditions: clean scanned cells, and the same kind of cells degraded as a
phone photo shows them (``seeds.handwriting.degrade_cell``: low contrast, uneven
light, blur, lower resolution, noise, JPEG, a stamp's ink), at half and at full
strength (full: contrast down by up to 60%, resolution by up to 45%, blur up to
1.3 px, JPEG quality 35-85, a stamp over a third of the cells). The cells
include touching digits (12%), numbers over the cell's edge (4%) and crossed-out
figures with their correction (3%), as in training.

Prints per condition: digit accuracy (positions of same-length readings),
whole-number accuracy, the truth among the alternatives (and, of the numbers
misread with confidence, how many have it outside them), for confidence
thresholds the share of numbers given a value and the error rate among them,
the reliability table (mean confidence against accuracy per bin), empty cells
read as empty, the hardest named writers, and the median time per number.
Target for the protocol reader: values given right >= 99.9% while >= 85% of
fields get one.

    .venv/bin/python bench/digits.py [--cells 600] [--seed 7] [--model ocr/digits_model.npz]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ocr.digits import MODEL_PATH, load_model, read_number
from seeds.handwriting import NAMED_WRITERS, Cell, Writer, degrade_cell, writers
from seeds.train_digits import EVALUATION_SEED, random_cell

THRESHOLDS = (0.5, 0.9, 0.99, 0.999)
BINS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0001)


@dataclass(frozen=True)
class Outcome:
    writer: str
    truth: str
    value: int | None
    confidence: float
    in_alternatives: bool
    digits_right: int
    empty: bool
    ms: float


def evaluate(cells: list[tuple[Writer, Cell]], model_path: Path) -> list[Outcome]:
    model = load_model(model_path)
    out = []
    for writer, cell in cells:
        t0 = time.perf_counter()
        r = read_number(cell.gray, model=model)
        ms = (time.perf_counter() - t0) * 1000
        right = 0
        if r.value is not None and cell.text:
            got = str(r.value)
            if len(got) == len(cell.text):
                right = sum(a == b for a, b in zip(got, cell.text, strict=True))
        alts = {v for v, _ in r.alternatives}
        inside = bool(cell.text) and int(cell.text) in alts
        out.append(
            Outcome(writer.name, cell.text, r.value, r.confidence, inside, right, r.empty, ms)
        )
    return out


def report(name: str, outcomes: list[Outcome]) -> None:
    numbers = [o for o in outcomes if o.truth]
    empties = [o for o in outcomes if not o.truth]
    n = len(numbers)
    right = [o.value is not None and o.value == int(o.truth) for o in numbers]
    digits = sum(len(o.truth) for o in numbers)
    print(f"\n== {name}: {n} numbers ({digits} digits), {len(empties)} empty cells")
    print(f"  digit accuracy            {sum(o.digits_right for o in numbers) / digits:.4f}")
    print(f"  whole-number accuracy     {sum(right) / n:.4f}")
    print(f"  truth among alternatives  {sum(o.in_alternatives for o in numbers) / n:.4f}")
    # ocr.protocol.UNLISTED_MISREADS: a misreading explains a failing check from
    # outside its listed readings this often
    for t in (0.5, 0.9):
        sure = [o for o, ok in zip(numbers, right, strict=True) if o.confidence >= t and not ok]
        unlisted = sum(not o.in_alternatives for o in sure)
        share = f" ({unlisted / len(sure):.2f})" if sure else ""
        print(f"  misread at >= {t}: truth outside the alternatives {unlisted}/{len(sure)}{share}")
    if empties:
        print(f"  empty cells read empty    {sum(o.empty for o in empties) / len(empties):.3f}")
        valued = sum(o.value is not None and o.confidence >= 0.9 for o in empties)
        print(f"  empty cells given a value (confidence >= 0.9): {valued}/{len(empties)}")
    print("  threshold  given   errors among given")
    for t in THRESHOLDS:
        given = [
            (o, ok)
            for o, ok in zip(numbers, right, strict=True)
            if o.value is not None and o.confidence >= t
        ]
        wrong = sum(1 for _, ok in given if not ok)
        err = wrong / len(given) if given else 0.0
        print(f"  {t:<9}  {len(given) / n:6.3f}  {err:.4f} ({wrong}/{len(given)})")
    print("  reliability: bin  count  mean confidence  accuracy")
    for lo, hi in itertools.pairwise(BINS):
        inbin = [
            (o.confidence, ok)
            for o, ok in zip(numbers, right, strict=True)
            if lo <= o.confidence < hi
        ]
        if inbin:
            conf = statistics.fmean(c for c, _ in inbin)
            acc = statistics.fmean(float(ok) for _, ok in inbin)
            print(f"  [{lo:.3f}, {min(hi, 1.0):.3f})  {len(inbin):5d}  {conf:.4f}  {acc:.4f}")
    per: dict[str, list[bool]] = defaultdict(list)
    for o, ok in zip(numbers, right, strict=True):
        per[o.writer].append(ok)
    named = {w.name for w in NAMED_WRITERS}
    worst = sorted((statistics.fmean(v), k) for k, v in per.items() if k in named)[:4]
    print("  hardest named writers     " + ", ".join(f"{k} {a:.3f}" for a, k in worst))
    print(f"  median ms per number      {statistics.median(o.ms for o in outcomes):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=600, help="cells per condition")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", type=Path, default=MODEL_PATH)
    args = parser.parse_args()
    hands = list(NAMED_WRITERS) + writers(EVALUATION_SEED, 30)
    print(f"held-out writers: {len(NAMED_WRITERS)} named styles + writers({EVALUATION_SEED}, 30)")
    conditions = (
        ("clean cells", 0.0),
        ("phone-photo cells, moderate (degradation strength 0.5)", 0.5),
        ("phone-photo cells, harsh (degradation strength 1.0)", 1.0),
    )
    for k, (name, strength) in enumerate(conditions):
        rng = np.random.default_rng([args.seed, k])
        cells = []
        for i in range(args.cells):
            w = hands[i % len(hands)]
            cell = random_cell(w, rng, 0.0)
            if strength:
                cell = Cell(degrade_cell(cell.gray, rng, strength), cell.text, cell.owner)
            cells.append((w, cell))
        report(name, evaluate(cells, args.model))


if __name__ == "__main__":
    main()
