"""A tight shot: the cells beside the photo's edge are read when their boxes are
wholly in the photo, and never when the edge cuts a box (a digit may be lost)."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
from PIL import Image

from ocr.protocol import ProtocolReading, read_protocol
from ocr.protocol_template import ProtocolTemplate
from seeds.handwriting import NAMED_WRITERS
from seeds.protocol_photos import consistent_figures, protocol_photo
from tests.ocr.conftest import CLEAR_PROTOCOL

# Nearly square-on, so that a crop's column is where the cells end.
CLEAR = replace(
    CLEAR_PROTOCOL, rotation_deg=1.0, perspective=0.01, jpeg_quality=92, ballot_fraction=0.85
)


def _cropped(photo: bytes, right: int) -> bytes:
    """The photo with everything right of column ``right`` cut away."""
    image = Image.open(io.BytesIO(photo))
    buffer = io.BytesIO()
    image.crop((0, 0, right, image.height)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _right_edge(reading: ProtocolReading, fields: list[str]) -> float:
    """The rightmost x of these fields' boxes in the photo."""
    return max(x for f in fields for x, _ in (reading.fields[f].quad or ()))


def test_cells_beside_the_photos_edge_are_read_and_cut_cells_are_not(
    ru_protocol: ProtocolTemplate,
) -> None:
    rng = np.random.default_rng(31)
    figures = consistent_figures("ru-2018", rng)
    photo, labels = protocol_photo(
        "ru-2018", figures, "1412", rng, CLEAR, writer=NAMED_WRITERS[2],
        stamp_over_fields=0.0, signature_over_fields=0.0, dash_for_zero=0.0,
    )  # fmt: skip
    full = read_protocol(ru_protocol, photo)
    given = {f: r.value for f, r in full.fields.items() if r.value is not None}
    assert len(given) >= 10
    assert all(labels.figures[f] == v for f, v in given.items())
    # Every field's row of squares ends at the same column: cut just past it, the
    # rows' surroundings (the rules the cells are located by) are gone, not a box.
    edge = _right_edge(full, list(given))
    tight = read_protocol(ru_protocol, _cropped(photo, round(edge) + 6))
    kept = {f: r.value for f, r in tight.fields.items() if r.value is not None}
    assert all(labels.figures[f] == v for f, v in kept.items())
    assert len(kept) >= 0.8 * len(given), (kept, given)
    # Cut through the last square: no value from a box the edge cuts.
    cut = read_protocol(ru_protocol, _cropped(photo, round(edge) - 12))
    assert all(r.value is None for r in cut.fields.values())
    assert "cut_off" in cut.reasons
