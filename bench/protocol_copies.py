"""Benchmark: copied protocol photos (``ocr.photo_copy``) against second photos of one
posted protocol.

For each of the three protocol forms of ``seeds.protocol`` and --sheets filled-in
sheets each: one phone photo of the sheet (the original), its re-used copies
(``seeds.reuse``: re-saved, rescaled, cropped, brightened, screenshotted, and shown
on a screen and photographed again), a second photo of the same sheet as another
observer takes it (ordinary conditions, ``seeds.photos.random_conditions``), and a
*gentle* pair: two photos both nearly square on (tilt up to 1.5%, turned up to 3°,
similar framing), the hardest honest case for the geometry. Prints per kind how
many are judged copies, the evidence's spread (the similarity's 90th-percentile
residual in px, the grey levels' correlation), and the time per comparison.
Targets: every copy of the first five kinds found, no second photo judged a copy.

    .venv/bin/python bench/protocol_copies.py [--sheets 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ocr.images import decode_gray
from ocr.photo_copy import GEOMETRY_PX, MIN_CORRELATION, CopyCheck, copy_check
from seeds.photos import PhotoConditions, phone_photo, random_conditions
from seeds.protocol import DESIGNS
from seeds.protocol_photos import consistent_figures, protocol_page
from seeds.reuse import TRANSFORMS, reuse

SECOND = ("second_photo", "gentle_pair")


def gentle(rng: np.random.Generator) -> PhotoConditions:
    """A photo taken nearly square on: little tilt and turn, the sheet filling the frame."""
    return PhotoConditions(
        rotation_deg=float(rng.uniform(-3, 3)),
        perspective=float(rng.uniform(0.0, 0.015)),
        blur_sigma=float(rng.uniform(0.0, 1.0)),
        light_gradient=float(rng.uniform(0.0, 0.3)),
        shadow=False,
        jpeg_quality=int(rng.integers(80, 93)),
        long_side=int(rng.integers(1600, 2001)),
        ballot_fraction=float(rng.uniform(0.85, 0.95)),
    )


def gray(data: bytes) -> np.ndarray:
    return decode_gray(data, max_side=2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sheets", type=int, default=20, help="sheets per form")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    found: dict[str, list[CopyCheck]] = defaultdict(list)
    seconds: list[float] = []
    for d, design in enumerate(DESIGNS):
        for i in range(args.sheets):
            rng = np.random.default_rng([args.seed, d, i])
            figures = consistent_figures(design, rng)
            page, _ = protocol_page(design, figures, str(int(rng.integers(1, 3000))), rng)
            original = phone_photo(page, rng, random_conditions(rng))
            others = {name: reuse(original, name, rng) for name in TRANSFORMS}
            others["second_photo"] = phone_photo(page, rng, random_conditions(rng))
            a = gray(original)
            for name, data in others.items():
                started = time.perf_counter()
                found[name].append(copy_check(a, gray(data)))
                seconds.append(time.perf_counter() - started)
            first = phone_photo(page, rng, gentle(rng))
            found["gentle_pair"].append(
                copy_check(gray(first), gray(phone_photo(page, rng, gentle(rng))))
            )

    print(
        f"protocol copies: {args.sheets} sheets x {len(DESIGNS)} forms, seed {args.seed};"
        f" a copy when the similarity leaves <= {GEOMETRY_PX} px (90th percentile)"
        f" and the grey levels correlate >= {MIN_CORRELATION}"
    )
    print(
        f"{'kind':>16} {'copies':>9}   {'geometry px (min / median / max)':>34}"
        "   correlation (min / max)"
    )
    for name in (*TRANSFORMS, *SECOND):
        checks = found[name]
        geo = [c.geometry_px for c in checks if c.geometry_px is not None]
        cor = [c.correlation for c in checks if c.correlation is not None]
        geo_text = (
            f"{min(geo):6.2f} / {statistics.median(geo):6.2f} / {max(geo):6.2f}" if geo else "-"
        )
        cor_text = f"{min(cor):.3f} / {max(cor):.3f}" if cor else "-"
        unmatched = sum(1 for c in checks if c.geometry_px is None)
        print(
            f"{name:>16} {sum(c.copy for c in checks):>4} / {len(checks):<3}"
            f"   {geo_text:>34}   {cor_text}   (no match: {unmatched})"
        )
    median_ms = 1000 * statistics.median(seconds)
    print(f"time per comparison (both photos decoded): median {median_ms:.0f} ms")


if __name__ == "__main__":
    main()
