"""Measurement: how much a check that holds vouches for its fields (``ocr.protocol``'s
``EQUALITY_ODDS`` and ``TIE_ODDS``).

On labelled clear protocol photos (``seeds.protocol_photos.labelled_photos``, as
``bench/protocol_reader.py`` makes them) of the given seeds and the three designs,
every photo is read and the fields' alternatives as the joint step receives them
are kept (the step itself is wrapped, nothing else changes). For each photo whose
best readings make an equality of the form hold, its fields; and for each
inequality that holds as a tie between different numbers, its fields not already
in a holding equality (``ocr.protocol.vouching``, as the joint step has them): how
many were misread, and how many their own confidences expected (the sum of 1 - p).
With k misread where E were expected, the odds of being right grow at least E / U
times, U the 95% Poisson upper bound for k (3.0 for none). Tuning seeds only: the
benchmark's (11, 13) stay unseen.

    .venv/bin/python bench/joint_odds.py --seeds 5 7 23 37 41 43 47 [--n 40] [--out f.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy.stats import chi2

import ocr.protocol as protocol
from infra.threads import one_thread_per_process
from ocr.protocol_template import load_protocol_template
from seeds.protocol import DESIGNS, write_election_folder
from seeds.protocol_photos import labelled_photos


@dataclass
class Vouched:
    fields: int = 0
    expected: float = 0.0
    misread: int = 0

    def bound(self) -> float:
        """The odds factor's 95% lower bound. Pure."""
        upper = float(chi2.ppf(0.95, 2 * (self.misread + 1))) / 2
        return self.expected / upper


@contextmanager
def captured() -> Iterator[list[dict[str, list[tuple[int, float]]]]]:
    """The alternatives each protocol reading passes to the joint step, in order."""
    seen: list[dict[str, list[tuple[int, float]]]] = []
    original = protocol.joint_reading

    def spy(alternatives: Mapping[str, Sequence[tuple[int, float]]], *a: Any, **k: Any) -> Any:
        seen.append({f: list(v) for f, v in alternatives.items()})
        return original(alternatives, *a, **k)

    protocol.joint_reading = spy
    try:
        yield seen
    finally:
        protocol.joint_reading = original


def tally(
    template: protocol.ProtocolTemplate,
    alternatives: Mapping[str, Sequence[tuple[int, float]]],
    truth: Mapping[str, int],
    equality: Vouched,
    tie: Vouched,
) -> None:
    """Add one photo's vouched fields to the two tallies. Pure but for them."""
    best = {f: (a[0][0] if a else None) for f, a in alternatives.items()}
    own = {f: (a[0][1] if a else 0.0) for f, a in alternatives.items()}
    expanded = [protocol._expand(c, template.option_ids) for c in template.checks]
    in_equality, in_tie = protocol.vouching(expanded, best)
    for fields, into in ((in_equality, equality), (in_tie - in_equality, tie)):
        for f in fields:
            if best.get(f) is None or f not in truth:
                continue
            into.fields += 1
            into.expected += 1.0 - own[f]
            into.misread += best[f] != truth[f]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 7, 23])
    parser.add_argument("--n", type=int, default=40, help="clear photos per design and seed")
    parser.add_argument("--out", type=Path, help="also write the photos' alternatives here")
    args = parser.parse_args()
    one_thread_per_process()
    equality, tie = Vouched(), Vouched()
    dump: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, captured() as seen:
        for design in sorted(DESIGNS):
            template = load_protocol_template(write_election_folder(design, Path(tmp) / design))
            for seed in args.seeds:
                photos = labelled_photos(
                    design, args.n, seed, hard=False, failing=0.1, not_protocols=0.0
                )
                for sample in photos:
                    seen.clear()
                    protocol.read_protocol(template, sample.photo)
                    if not seen:  # not aligned: no joint step
                        continue
                    truth = dict(sample.labels.figures)
                    tally(template, seen[0], truth, equality, tie)
                    dump.append({"photo": sample.name, "alternatives": seen[0], "truth": truth})
    for name, v in (("equality that holds", equality), ("tie between numbers", tie)):
        print(f"{name:<22} fields {v.fields:5d}  misreadings expected {v.expected:6.1f}  "
              f"seen {v.misread}  odds factor >= {v.bound():.1f}")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(dump))


if __name__ == "__main__":
    main()
