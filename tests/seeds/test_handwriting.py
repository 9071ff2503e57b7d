"""The handwriting generator: real images, deterministic, and varied across writers."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from seeds.handwriting import (
    NAMED_WRITERS,
    VARIANTS,
    Writer,
    number_cell,
    with_variants,
    write_number,
    write_number_owned,
    writers,
)


def _ink(text: str, writer: Writer, seed: int = 0, height: int = 40) -> np.ndarray:
    image = write_number(text, writer, np.random.default_rng(seed), height)
    return np.asarray(image.getchannel("A"), dtype=np.float32) / 255


def test_the_same_generator_state_writes_the_same_image() -> None:
    a = write_number("1905", NAMED_WRITERS[2], np.random.default_rng(42), 36)
    b = write_number("1905", NAMED_WRITERS[2], np.random.default_rng(42), 36)
    c = write_number("1905", NAMED_WRITERS[2], np.random.default_rng(43), 36)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert a.size != c.size or not np.array_equal(np.asarray(a), np.asarray(c))


def test_writers_are_deterministic_from_their_seed() -> None:
    assert writers(5, 4) == writers(5, 4)
    assert writers(5, 4) != writers(6, 4)
    assert len({w.name for w in writers(5, 50)}) == 50


def test_a_number_is_ink_with_alpha_on_a_transparent_background() -> None:
    ink = (10, 40, 160)
    image = write_number("273", NAMED_WRITERS[0], np.random.default_rng(1), 40, ink)
    assert image.mode == "RGBA"
    rgba = np.asarray(image)
    alpha = rgba[..., 3]
    assert alpha[0, 0] == alpha[-1, -1] == 0
    assert alpha.max() > 200  # solid strokes
    assert ((alpha > 0) & (alpha < 200)).any()  # anti-aliased edges
    assert (rgba[alpha > 0][:, :3] == ink).all()
    rows = np.nonzero(alpha.max(axis=1) > 64)[0]
    assert 0.8 * 40 <= rows[-1] - rows[0] + 1 <= 1.5 * 40  # digits about height_px tall
    assert image.width > 2 * 40 * 0.5  # three digits side by side


def test_there_are_at_least_twelve_named_styles_well_apart() -> None:
    assert len(NAMED_WRITERS) >= 12
    assert len({w.name for w in NAMED_WRITERS}) == len(NAMED_WRITERS)
    for a, b in itertools.combinations(NAMED_WRITERS, 2):
        differs = sum(
            [
                abs(a.slant - b.slant) > 0.05,
                abs(a.width - b.width) > 0.05,
                abs(a.roundness - b.roundness) > 0.05,
                abs(a.stroke - b.stroke) > 0.01,
                abs(a.spacing - b.spacing) > 0.05,
                abs(a.tremor - b.tremor) > 0.002,
                a.variants != b.variants,
            ]
        )
        assert differs >= 3, (a.name, b.name)


def test_the_rendered_glyphs_differ_across_writers() -> None:
    def normalised(writer: Writer) -> np.ndarray:
        return np.asarray(
            cv2.resize(_ink("0123456789", writer), (300, 40), interpolation=cv2.INTER_AREA)
        )

    images = [normalised(w) for w in NAMED_WRITERS]
    for a, b in itertools.combinations(range(len(images)), 2):
        assert float(np.abs(images[a] - images[b]).mean()) > 0.04, (a, b)


def test_glyph_variants_are_different_shapes() -> None:
    base = NAMED_WRITERS[0]
    for digit, count in VARIANTS.items():
        if digit == "-":
            continue
        shapes = []
        for v in range(count):
            variants = list(base.variants)
            variants[int(digit)] = v
            w = with_variants(base, tuple(variants))
            ink = _ink(digit, w, seed=3)
            shapes.append(cv2.resize(ink, (24, 40), interpolation=cv2.INTER_AREA))
        for a, b in itertools.combinations(shapes, 2):
            assert float(np.abs(a - b).mean()) > 0.02, digit


def test_a_crossed_out_figure_comes_before_the_correction() -> None:
    image, owner = write_number_owned(
        "57", NAMED_WRITERS[1], np.random.default_rng(0), 40, crossed_out="75"
    )
    crossed = np.nonzero((owner == -1).any(axis=0))[0]
    right = np.nonzero((owner >= 0).any(axis=0))[0]
    assert crossed.size and right.size
    assert np.median(crossed) < np.median(right)
    plain = write_number("57", NAMED_WRITERS[1], np.random.default_rng(0), 40)
    assert image.width > plain.width * 1.6


def test_touching_digits_are_closer_than_the_writers_usual() -> None:
    w = NAMED_WRITERS[12]  # "spacious"
    spaced = write_number("3333", w, np.random.default_rng(0), 40)
    touching = write_number("3333", w, np.random.default_rng(0), 40, touching=True)
    assert touching.width < spaced.width * 0.85


def test_a_number_in_a_cell_sits_inside_its_printed_border() -> None:
    cell = number_cell("1480", NAMED_WRITERS[4], np.random.default_rng(2), cell_height=50)
    assert cell.gray.shape == (50, 180) and cell.gray.dtype == np.uint8
    assert cell.gray[0].mean() < 120 and cell.gray[:, -1].mean() < 120  # the border
    assert set(np.unique(cell.owner)) == {-2, 0, 1, 2, 3}


@settings(max_examples=40, deadline=None)
@given(
    text=st.text(alphabet="0123456789", min_size=1, max_size=6),
    writer=st.sampled_from(NAMED_WRITERS + tuple(writers(11, 5))),
    height=st.integers(14, 90),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_number_renders_about_its_height(
    text: str, writer: Writer, height: int, seed: int
) -> None:
    alpha = _ink(text, writer, seed, height)
    rows = np.nonzero(alpha.max(axis=1) > 0.25)[0]
    assert rows.size
    assert 0.55 * height <= rows[-1] - rows[0] + 1 <= 1.9 * height + 4
