"""Bootstrap over stations: the one resampling every interval of the forensics uses.

A replicate gives each station a weight, the number of times it is drawn, and the
statistic is recomputed from the weighted stations (a station's figures always
move together). Two schemes:

* ``resample_counts``: the classic bootstrap (Efron 1979): n stations drawn with
  replacement from the n, so the weights are Multinomial(n; 1/n, ..., 1/n) and
  sum to n. Used where the statistic is over one pool of stations (Shpilkin, digit
  tests, the Klimek fit).
* ``poisson_weights``: independent Poisson(1) weights (the Poisson bootstrap,
  Hanley & MacGibbon 2006). Every station is resampled independently of the
  others, so the resampling is automatically within every region at once
  (the post-stratified estimates) and needs no per-region bookkeeping.

Both only advance the ``numpy.random.Generator`` they are given: the same seed
gives the same replicates, whatever the batch size (rows are drawn in order, and
a batch of rows draws what as many single rows would).
Replicates come in batches of rows, so that 1,000 replicates of 100,000 stations
never sit in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["BATCH_ELEMENTS", "percentile_interval", "poisson_weights", "resample_counts"]

# Weights held at once: 4 million float64 (32 MB), plus as much again for the
# drawn indices. At 97,699 stations (Russia 2018) that is 40 replicates a batch.
BATCH_ELEMENTS = 4_000_000


def _batch_sizes(n_stations: int, draws: int) -> Iterator[int]:
    rows = max(1, BATCH_ELEMENTS // max(n_stations, 1))
    for start in range(0, draws, rows):
        yield min(rows, draws - start)


def resample_counts(rng: np.random.Generator, n_stations: int, draws: int) -> Iterator[np.ndarray]:
    """Classic bootstrap weights: batches (rows, n_stations) float64, one row per
    replicate, each row how many times each station was drawn in n_stations draws
    with replacement (row sums = n_stations). ``draws`` rows in all.
    """
    for size in _batch_sizes(n_stations, draws):
        drawn = rng.integers(0, n_stations, size=(size, n_stations))
        drawn += np.arange(size)[:, None] * n_stations  # row r's stations in block r
        counts = np.bincount(drawn.ravel(), minlength=size * n_stations)
        yield counts.reshape(size, n_stations).astype(np.float64)


def poisson_weights(rng: np.random.Generator, n_stations: int, draws: int) -> Iterator[np.ndarray]:
    """Poisson bootstrap weights: batches (rows, n_stations) float64 of independent
    Poisson(1) draws, one row per replicate, ``draws`` rows in all.
    """
    for size in _batch_sizes(n_stations, draws):
        yield rng.poisson(1.0, size=(size, n_stations)).astype(np.float64)


def percentile_interval(reps: np.ndarray, level: float = 0.95) -> list[float] | None:
    """Percentile interval of bootstrap replicates: the (1 - level)/2 and
    (1 + level)/2 quantiles of the finite ones (2.5-97.5 at 0.95). None with fewer
    than two finite replicates (no spread to speak of). Pure.
    """
    finite = np.asarray(reps, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return None
    tail = round((1.0 - level) / 2.0, 12)  # 0.025 exactly, not 0.025000000000000022
    lo, hi = np.quantile(finite, [tail, 1.0 - tail])
    return [float(lo), float(hi)]
