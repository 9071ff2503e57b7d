"""Klimek et al. (PNAS 2012): the turnout × leader-share histogram and the fraud-model fit.

Pure functions on numpy arrays. Never proof: the fit is indicative (published f_i for Russia
2011 range from 0.12 to 0.64 depending on choices); the 2-D histogram itself (the election's
"fingerprint", as Klimek et al. and the report call it) is the evidence.

Model (as parameterised here). Per station, honest turnout t ~ N(mu_t, s_t) and honest leader
share v ~ N(mu_v, s_v), independent, truncated to [0, 1]. Per unit of electorate the leader
has t*v votes, the opponents t*(1 - v), non-voters 1 - t. With probability f_i the station
has incremental fraud of intensity x ~ |N(0, theta)|; with probability f_e extreme fraud,
x ~ 1 - |N(0, 0.075)|; otherwise x = 0 (x truncated to [0, 1]). Fraud stuffs a fraction x of
the non-voters' ballots for the leader and moves a fraction x**alpha of the opponents' votes
to the leader (alpha sets stolen vs stuffed: alpha = 1 equal fractions, large alpha mostly
stuffing). Reported turnout = t + x(1 - t), share = (t v + x(1 - t) + x**alpha t(1 - v)) /
reported turnout.

Fit. mu and s of the honest turnout come from the data's main peak: the mode of the smoothed
1-D histogram and the root-mean-square deviation of the stations below the mode (fraud only
moves stations upwards, so the lower half of the peak is taken as clean). The honest share's
mu and s are the median and 1.4826 x MAD of the shares of stations at or below the turnout
peak (fraud raises turnout, so these are the cleanest). For each (theta,
alpha) on a small grid, the three regimes (clean, incremental, extreme) are simulated once
(common random numbers) into binned densities on the 2-D histogram; the mixture weights
(1 - f_i - f_e, f_i, f_e) maximise the multinomial likelihood of the observed 2-D histogram
(EM, concave problem). The reported fit is the grid point with the highest likelihood.
Uncertainty: a bootstrap over stations (``bootstrap.resample_counts``: the stations drawn
with replacement, then binned), each replicate refitted over the whole grid, 2.5-97.5
percentiles; plus the range of fitted values across all grid models, which shows model
sensitivity. Neither covers the model being wrong (real honest blobs are not Gaussian).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tally.forensics.bootstrap import percentile_interval, resample_counts

__all__ = ["KlimekFit", "fit_klimek", "honest_peak", "klimek_histogram"]

HIST_BINS = 100
FIT_BINS = 50
EXTREME_SD = 0.075
THETAS = (0.1, 0.15, 0.2, 0.3)
ALPHAS = (0.5, 1.0, 2.0, 4.0)
MODEL = (
    "honest turnout t ~ N(mu_t, s_t) and leader share v ~ N(mu_v, s_v), independent, "
    "truncated to [0,1]; with probability f_i incremental fraud x ~ |N(0, theta)|, with "
    "probability f_e extreme fraud x ~ 1 - |N(0, 0.075)|; a fraction x of non-voters' ballots "
    "is stuffed for the leader and a fraction x**alpha of opponents' votes moved to the leader "
    "(Klimek, Yegorov, Hanel & Thurner, PNAS 2012)"
)
FIT_METHOD = (
    "honest turnout mu, s from the main peak (mode; RMS of stations below it); honest share "
    "mu, s = median and 1.4826 MAD of the shares of stations at or below the turnout peak; "
    "mixture weights "
    "by maximum multinomial likelihood of the 50x50 turnout x share histogram for each (theta, "
    "alpha) on a grid (EM), best grid point reported; interval: bootstrap over stations "
    "(stations drawn with replacement and binned, whole grid refitted per replicate), 2.5-97.5 "
    "percentiles"
)
INCLUSION_RULE = (
    "registered >= 100, ballots_cast > 0, ballots_issued <= registered, leader votes <= "
    "ballots_cast, figures known; turnout = ballots_issued/registered, leader share = leader "
    "votes/ballots_cast"
)


@dataclass(frozen=True)
class KlimekFit:
    f_incremental: float
    f_extreme: float
    f_incremental_ci: tuple[float, float]
    f_extreme_ci: tuple[float, float]
    f_incremental_models: tuple[float, float]
    f_extreme_models: tuple[float, float]
    theta: float
    alpha: float
    honest: dict[str, float]
    stations: int
    bootstrap: int
    log_likelihood: float

    def as_dict(self) -> dict[str, object]:
        return {
            "f_incremental": self.f_incremental,
            "f_extreme": self.f_extreme,
            "f_incremental_ci95": list(self.f_incremental_ci),
            "f_extreme_ci95": list(self.f_extreme_ci),
            "f_incremental_range_across_models": list(self.f_incremental_models),
            "f_extreme_range_across_models": list(self.f_extreme_models),
            "theta": self.theta,
            "alpha": self.alpha,
            "honest": self.honest,
            "stations_included": self.stations,
            "bootstrap": self.bootstrap,
            "log_likelihood": self.log_likelihood,
            "model": MODEL,
            "fit_method": FIT_METHOD,
            "uncertainty": (
                "ci95: bootstrap percentile interval over stations; range_across_models: "
                "fits over all (theta, alpha) grid points; neither covers model misspecification"
            ),
        }


def klimek_histogram(
    turnout: np.ndarray, share: np.ndarray, bins: int = HIST_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D histogram of stations: rows = turnout bins, columns = share bins, on [0, 1].

    NaN entries are skipped; values of exactly 1 go into the last bin.
    Returns (hist int64 (bins, bins), turnout edges, share edges).
    """
    t = np.asarray(turnout, dtype=np.float64)
    s = np.asarray(share, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(s) & (t >= 0) & (t <= 1) & (s >= 0) & (s <= 1)
    idx = _bin_index(t[ok], bins) * bins + _bin_index(s[ok], bins)
    hist = np.bincount(idx, minlength=bins * bins).reshape(bins, bins).astype(np.int64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return hist, edges, edges.copy()


def _bin_index(x: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((x * bins).astype(np.int64), bins - 1)


def honest_peak(x: np.ndarray, bins: int = 100) -> tuple[float, float]:
    """Mode of the smoothed histogram of ``x`` on [0, 1] and the RMS deviation below it."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.5, 0.1
    hist = np.bincount(_bin_index(np.clip(x, 0, 1), bins), minlength=bins).astype(np.float64)
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    smooth = np.convolve(hist, kernel / kernel.sum(), mode="same")
    mode = float((np.argmax(smooth) + 0.5) / bins)
    sd = _left_rms(x, mode)
    # Refine the centre below the bin width: mean shift with a flat window of +-0.5 s.d.
    for _ in range(30):
        near = x[np.abs(x - mode) <= 0.5 * sd]
        if near.size >= 5:
            mode = float(near.mean())
        sd = _left_rms(x, mode)
    return float(mode), max(sd, 0.5 / bins)


def _left_rms(x: np.ndarray, centre: float) -> float:
    below = x[x <= centre]
    return float(np.sqrt(np.mean((below - centre) ** 2))) if below.size >= 5 else float(np.std(x))


def _truncnorm(rng: np.random.Generator, mu: float, sd: float, size: int) -> np.ndarray:
    out = rng.normal(mu, sd, size)
    bad = (out < 0) | (out > 1)
    for _ in range(50):
        if not bad.any():
            break
        out[bad] = rng.normal(mu, sd, int(bad.sum()))
        bad = (out < 0) | (out > 1)
    return np.clip(out, 0.0, 1.0)


def _apply_fraud(
    t: np.ndarray, v: np.ndarray, x: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    stuffed = x * (1.0 - t)
    stolen = np.power(x, alpha) * t * (1.0 - v)
    new_t = t + stuffed
    with np.errstate(divide="ignore", invalid="ignore"):
        new_v = np.where(new_t > 0, (t * v + stuffed + stolen) / new_t, v)
    return new_t, np.clip(new_v, 0.0, 1.0)


def _density(t: np.ndarray, v: np.ndarray, bins: int) -> np.ndarray:
    idx = _bin_index(np.clip(t, 0, 1), bins) * bins + _bin_index(np.clip(v, 0, 1), bins)
    d = np.bincount(idx, minlength=bins * bins).astype(np.float64) + 0.01
    return d / d.sum()


def _em(
    counts: np.ndarray, comps: np.ndarray, iters: int = 400, tol: float = 1e-7
) -> tuple[np.ndarray, np.ndarray]:
    """Mixture weights maximising sum_b c_b log(sum_k w_k P_kb), per row of ``counts``.

    counts (B, nb), comps (K, nb) -> weights (B, K), log-likelihood (B,).
    """
    n = counts.sum(axis=1, keepdims=True)
    n = np.where(n > 0, n, 1.0)
    k = comps.shape[0]
    w = np.full((counts.shape[0], k), 1.0 / k)
    for _ in range(iters):
        mix = w @ comps
        ratio = counts / mix
        new = w * (ratio @ comps.T) / n
        done = np.max(np.abs(new - w)) < tol
        w = new
        if done:
            break
    ll = np.sum(counts * np.log(w @ comps), axis=1)
    return w, ll


def fit_klimek(
    turnout: np.ndarray,
    share: np.ndarray,
    *,
    bootstrap: int = 100,
    seed: int = 0,
    simulated: int = 200_000,
) -> KlimekFit | None:
    """Fit f_incremental / f_extreme of the module's model to stations' (turnout, share).

    Inputs are already filtered by the caller's inclusion rule; NaNs are dropped. Returns None
    when fewer than 50 stations remain (too few for a 2-D fit).
    """
    t = np.asarray(turnout, dtype=np.float64)
    s = np.asarray(share, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(s)
    t, s = np.clip(t[ok], 0, 1), np.clip(s[ok], 0, 1)
    if t.size < 50:
        return None
    mu_t, sd_t = honest_peak(t)
    # Fraud raises turnout, so stations at or below the turnout peak are the cleanest sample
    # of honest shares (the model has share independent of turnout in honest stations).
    low = s[t <= mu_t]
    if low.size >= 25:
        mu_s = float(np.median(low))
        sd_s = max(float(1.4826 * np.median(np.abs(low - mu_s))), 0.005)
    else:
        mu_s, sd_s = honest_peak(s)
    rng = np.random.default_rng(seed)
    ht = _truncnorm(rng, mu_t, sd_t, simulated)
    hv = _truncnorm(rng, mu_s, sd_s, simulated)
    z_inc = np.abs(rng.normal(0.0, 1.0, simulated))
    x_ext = np.clip(1.0 - np.abs(rng.normal(0.0, EXTREME_SD, simulated)), 0.0, 1.0)
    clean = _density(ht, hv, FIT_BINS)
    obs = _density_counts(t, s, FIT_BINS)
    keep_bins = obs > 0  # empty bins add nothing to the likelihood
    models: list[tuple[float, float, np.ndarray]] = []
    for alpha in ALPHAS:
        extreme = _density(*_apply_fraud(ht, hv, x_ext, alpha), bins=FIT_BINS)
        for theta in THETAS:
            x_inc = np.clip(theta * z_inc, 0.0, 1.0)
            inc = _density(*_apply_fraud(ht, hv, x_inc, alpha), bins=FIT_BINS)
            models.append((theta, alpha, np.stack([clean, inc, extreme])[:, keep_bins]))
    counts = obs[keep_bins][None, :]
    fits = [_em(counts, comps, iters=3000) for _, _, comps in models]
    lls = np.array([ll[0] for _, ll in fits])
    best = int(np.argmax(lls))
    w_best = fits[best][0][0]
    all_w = np.array([w[0] for w, _ in fits])
    ci_i: tuple[float, float] = (float(w_best[1]), float(w_best[1]))
    ci_e: tuple[float, float] = (float(w_best[2]), float(w_best[2]))
    if bootstrap > 0:
        boot = _resampled_histograms(rng, t, s, bootstrap)
        boot_w = np.empty((len(models), bootstrap, 3))
        boot_ll = np.empty((len(models), bootstrap))
        for j, (_, _, comps) in enumerate(models):
            boot_w[j], boot_ll[j] = _em(boot[:, keep_bins], comps, iters=300, tol=1e-6)
        pick = np.argmax(boot_ll, axis=0)
        chosen = boot_w[pick, np.arange(bootstrap)]
        ci_i = _interval(chosen[:, 1], ci_i)
        ci_e = _interval(chosen[:, 2], ci_e)
    return KlimekFit(
        f_incremental=float(w_best[1]),
        f_extreme=float(w_best[2]),
        f_incremental_ci=ci_i,
        f_extreme_ci=ci_e,
        f_incremental_models=(float(all_w[:, 1].min()), float(all_w[:, 1].max())),
        f_extreme_models=(float(all_w[:, 2].min()), float(all_w[:, 2].max())),
        theta=models[best][0],
        alpha=models[best][1],
        honest={"turnout_mean": mu_t, "turnout_sd": sd_t, "share_mean": mu_s, "share_sd": sd_s},
        stations=int(t.size),
        bootstrap=int(bootstrap),
        log_likelihood=float(lls[best]),
    )


def _density_counts(t: np.ndarray, v: np.ndarray, bins: int) -> np.ndarray:
    idx = _bin_index(t, bins) * bins + _bin_index(v, bins)
    return np.bincount(idx, minlength=bins * bins).astype(np.float64)


def _resampled_histograms(
    rng: np.random.Generator, t: np.ndarray, v: np.ndarray, draws: int
) -> np.ndarray:
    """(draws, FIT_BINS**2) fit histograms of the stations resampled with replacement."""
    nb = FIT_BINS * FIT_BINS
    idx = _bin_index(t, FIT_BINS) * FIT_BINS + _bin_index(v, FIT_BINS)
    out = np.empty((draws, nb))
    row = 0
    for counts in resample_counts(rng, t.size, draws):
        for weights in counts:
            out[row] = np.bincount(idx, weights=weights, minlength=nb)
            row += 1
    return out


def _interval(x: np.ndarray, fallback: tuple[float, float]) -> tuple[float, float]:
    interval = percentile_interval(x)
    return fallback if interval is None else (interval[0], interval[1])
