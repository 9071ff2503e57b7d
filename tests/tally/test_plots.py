"""The report's plots: valid, deterministic PNGs, with or without data."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tally.plots import crowd_vs_official_png, fingerprint_png, histogram_png


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def _election(n: int = 3000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    turnout = np.clip(rng.normal(0.62, 0.08, n), 0, 1)
    share = np.clip(rng.normal(0.7, 0.07, n), 0, 1)
    turnout[:100] = 0.9  # a pile at an integer percentage
    return turnout, share


def test_plots_are_valid_deterministic_pngs() -> None:
    turnout, share = _election()
    hist, xe, ye = np.histogram2d(turnout, share, bins=50, range=[[0, 1], [0, 1]])
    fingerprint = fingerprint_png(hist, xe, ye, "Путин Владимир Владимирович")
    width, height = _png_size(fingerprint)
    assert 600 <= width <= 2000 and 500 <= height <= 2000
    assert fingerprint == fingerprint_png(hist, xe, ye, "Путин Владимир Владимирович")

    histogram = histogram_png(turnout, None, "Turnout", "Turnout", True)
    width, height = _png_size(histogram)
    assert 1000 <= width <= 2500 and 400 <= height <= 1200
    weighted = histogram_png(share, np.full(share.size, 1000.0), "Share", "Share", False)
    assert _png_size(weighted)[0] >= 1000 and weighted != histogram

    rng = np.random.default_rng(2)
    official = rng.integers(0, 900, 500)
    crowd = (official * rng.uniform(0, 1.3, 500)).astype(int)
    proof = crowd > official
    scatter = crowd_vs_official_png(crowd, official, proof, "Тихановская")
    width, height = _png_size(scatter)
    assert 600 <= width <= 2000 and 600 <= height <= 2000
    assert scatter == crowd_vs_official_png(crowd, official, proof, "Тихановская")


def test_plots_without_data() -> None:
    empty = np.array([], dtype=float)
    assert _png_size(histogram_png(empty, None, "Turnout", "Turnout", True))[0] > 0
    assert _png_size(crowd_vs_official_png(empty, empty, empty.astype(bool), "x"))[0] > 0
    edges = np.linspace(0, 1, 11)
    assert _png_size(fingerprint_png(np.zeros((10, 10)), edges, edges, "x"))[0] > 0
    with pytest.raises(ValueError):
        fingerprint_png(np.zeros((10, 9)), edges, edges, "x")
