"""Bootstrap weights over stations: the classic and the Poisson scheme, and the interval."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.forensics import bootstrap
from tally.forensics.bootstrap import percentile_interval, poisson_weights, resample_counts

Scheme = Callable[[np.random.Generator, int, int], Iterator[np.ndarray]]


def _all(batches: Iterable[np.ndarray]) -> np.ndarray:
    return np.concatenate(list(batches))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_resample_counts_draw_every_station_n_times(n: int, draws: int, seed: int) -> None:
    counts = _all(resample_counts(np.random.default_rng(seed), n, draws))
    assert counts.shape == (draws, n)
    assert (counts >= 0).all() and (counts == np.round(counts)).all()
    assert (counts.sum(axis=1) == n).all()


def test_resample_counts_are_the_classic_bootstrap_draws() -> None:
    """Row r counts the stations of rng.integers(0, n, n) drawn for replicate r."""
    n, draws = 37, 5
    got = _all(resample_counts(np.random.default_rng(4), n, draws))
    rng = np.random.default_rng(4)
    for row in got:
        assert row.tolist() == np.bincount(rng.integers(0, n, n), minlength=n).tolist()


@pytest.mark.parametrize("scheme", [resample_counts, poisson_weights])
def test_same_seed_same_weights_whatever_the_batch_size(
    scheme: Scheme, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _all(scheme(np.random.default_rng(9), 101, 23))
    monkeypatch.setattr(bootstrap, "BATCH_ELEMENTS", 101 * 4)  # 4 replicates a batch
    batches = list(scheme(np.random.default_rng(9), 101, 23))
    assert [b.shape[0] for b in batches] == [4, 4, 4, 4, 4, 3]
    assert np.array_equal(np.concatenate(batches), whole)


def test_no_draws_no_batches() -> None:
    assert list(resample_counts(np.random.default_rng(0), 10, 0)) == []
    assert list(poisson_weights(np.random.default_rng(0), 10, 0)) == []


def test_poisson_weights_have_mean_and_variance_one() -> None:
    w = _all(poisson_weights(np.random.default_rng(1), 2000, 100))
    assert w.shape == (100, 2000)
    assert abs(w.mean() - 1.0) < 0.01 and abs(w.var() - 1.0) < 0.02


def test_percentile_interval_known_answer_and_degenerate_cases() -> None:
    reps = np.arange(1001, dtype=np.float64)
    assert percentile_interval(reps) == [25.0, 975.0]
    assert percentile_interval(reps, level=0.9) == [50.0, 950.0]
    with_nan = np.r_[reps, np.nan, np.inf]
    assert percentile_interval(with_nan) == [25.0, 975.0]  # non-finite replicates left out
    assert percentile_interval(np.array([3.0, np.nan])) is None
    assert percentile_interval(np.array([])) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=200))
def test_percentile_interval_lies_within_the_replicates(values: list[float]) -> None:
    interval = percentile_interval(np.array(values))
    assert interval is not None
    lo, hi = interval
    assert min(values) <= lo <= hi <= max(values)
