"""The plots of ``report.html``: arrays in, PNG bytes out.

Rendered with matplotlib's Agg canvas directly (no pyplot: no global figure
registry, safe in a background worker). Each function is deterministic: the same
arrays give the same bytes with the same matplotlib (the matplotlib style is reset
to its defaults for the plot and the PNG carries no version or date).

Turnout and shares are fractions in [0, 1] (as in :mod:`tally.forensics`) and are
shown in percent. Statistical plots carry the note "statistical signal, not proof";
the crowd-versus-official plot shows proof: a verified crowd count above the
official count for the same option and station.
"""

from __future__ import annotations

import io
import math
from contextlib import AbstractContextManager
from typing import Any

import matplotlib.style as mplstyle
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

NOT_PROOF = "Statistical signal, not proof"
_DPI = 100
_RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # has Cyrillic
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.labelsize": 11,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}
_PROOF_RED = "#c0392b"
_DECLARED = "#e67e22"
_NEUTRAL = "#5d6d7e"


def _style() -> AbstractContextManager[None]:
    """matplotlib's default style plus ours, whatever the process's rcParams say."""
    return mplstyle.context(["default", _RC])


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _not_proof_note(fig: Figure) -> None:
    fig.text(
        0.99,
        0.01,
        NOT_PROOF,
        ha="right",
        va="bottom",
        fontsize=10,
        fontweight="bold",
        color="#7d3c98",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "#f5eef8", "edgecolor": "#7d3c98"},
    )


def _no_data(ax: Axes, message: str = "no data") -> None:
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=14,
        color="#888888",
        transform=ax.transAxes,
    )


def _as_percent(edges: np.ndarray) -> np.ndarray:
    """Edges given as fractions (the usual case) are shown in percent."""
    edges = np.asarray(edges, dtype=float)
    finite = edges[np.isfinite(edges)]
    if finite.size and np.nanmax(np.abs(finite)) <= 1.0 + 1e-9:
        return edges * 100.0
    return edges


def _count_axis(axis: Axis) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def _percent_axis(axis: Axis) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}%"))


def fingerprint_png(
    hist: np.ndarray, x_edges: np.ndarray, y_edges: np.ndarray, leader_label: str
) -> bytes:
    """Turnout (x) against the leader's share (y): stations per cell, log colour scale.

    ``hist[i, j]`` counts stations in turnout bin ``i`` and share bin ``j`` (the
    ``numpy.histogram2d`` convention); edges in fractions (0-1) or percent (0-100).
    """
    hist = np.asarray(hist, dtype=float)
    x = _as_percent(x_edges)
    y = _as_percent(y_edges)
    if hist.shape != (x.size - 1, y.size - 1):
        raise ValueError(f"hist has shape {hist.shape}, edges need ({x.size - 1}, {y.size - 1})")
    with _style():
        fig = _new_figure(8.0, 7.0)
        ax = fig.add_axes((0.11, 0.12, 0.72, 0.78))
        cax = fig.add_axes((0.86, 0.12, 0.03, 0.78))
        ax.set_facecolor("#f4f6f7")
        positive = hist[np.isfinite(hist) & (hist > 0)]
        if positive.size:
            masked = np.ma.masked_where(~np.isfinite(hist) | (hist <= 0), hist)
            vmin = float(positive.min())
            vmax = max(float(positive.max()), vmin * 10.0)
            mesh = ax.pcolormesh(
                x,
                y,
                masked.T,
                norm=LogNorm(vmin=vmin, vmax=vmax),
                cmap="viridis",
                rasterized=True,
            )
            bar = fig.colorbar(mesh, cax=cax)
            bar.set_label("stations per cell (log scale)")
        else:
            cax.set_axis_off()
            _no_data(ax)
        ax.set_xlim(float(x[0]), float(x[-1]))
        ax.set_ylim(float(y[0]), float(y[-1]))
        ax.set_xlabel("Turnout")
        ax.set_ylabel(f"Share of {leader_label}")
        _percent_axis(ax.xaxis)
        _percent_axis(ax.yaxis)
        ax.set_title(f"Election fingerprint: turnout × share of {leader_label}", loc="left")
        ax.grid(True, color="white", linewidth=0.6, alpha=0.6)
        fig.text(
            0.01,
            0.01,
            "Fair counts form one compact cloud; a smear towards 100% / 100% is the\n"
            "pattern of ballot stuffing (Klimek et al. 2012) but also of genuine "
            "homogeneous places.",
            ha="left",
            va="bottom",
            fontsize=8.5,
            color="#555555",
        )
        _not_proof_note(fig)
        return _png(fig)


def histogram_png(
    values: np.ndarray,
    weights: np.ndarray | None,
    title: str,
    xlabel: str,
    integer_marks: bool,
    *,
    ylabel: str | None = None,
) -> bytes:
    """Histogram of turnout or a share (fractions 0-1, shown in percent) in 0.1 pp bins.

    Bins are centred on multiples of 0.1 %, so a bin holds exactly the stations
    that the integer-percentage test counts at ±0.05 pp. With ``integer_marks``
    the bins centred on whole percentages are drawn in red and each integer is
    ticked, which makes the peaks of rounded-to-target results visible. ``weights``
    (e.g. voters per station) weight each value; ``None`` counts stations.
    """
    values = np.asarray(values, dtype=float).ravel()
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()
    if w is not None and w.shape != values.shape:
        raise ValueError(f"weights have shape {w.shape}, values {values.shape}")
    keep = np.isfinite(values) if w is None else np.isfinite(values) & np.isfinite(w)
    pct = values[keep] * 100.0
    w = None if w is None else w[keep]
    with _style():
        fig = _new_figure(13.0, 5.5)
        ax = fig.add_axes((0.07, 0.16, 0.91, 0.74))
        ax.set_title(title, loc="left")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(
            ylabel
            if ylabel is not None
            else ("stations per 0.1 pp bin" if w is None else "weight per 0.1 pp bin")
        )
        _percent_axis(ax.xaxis)
        if pct.size:
            lo = math.floor(min(0.0, float(pct.min())))
            hi = math.ceil(max(100.0, float(pct.max())))
            # Bin edges at k/10 - 0.05 percent: each bin centred on a 0.1 pp value.
            tenths = np.arange(lo * 10, hi * 10 + 2)
            edges = tenths / 10.0 - 0.05
            counts, _ = np.histogram(pct, bins=edges, weights=w)
            ax.stairs(counts, edges, fill=True, color="#34495e", linewidth=0)
            if integer_marks:
                centres = tenths[:-1]
                on_integer = centres % 10 == 0
                ax.bar(
                    centres[on_integer] / 10.0,
                    counts[on_integer],
                    width=0.1,
                    color=_PROOF_RED,
                    linewidth=0,
                    label="bins centred on an integer percentage (±0.05 pp)",
                )
                integers = np.arange(lo, hi + 1)
                ax.vlines(
                    integers,
                    0.0,
                    0.025,
                    transform=ax.get_xaxis_transform(),
                    color=_PROOF_RED,
                    linewidth=0.6,
                )
                ax.xaxis.set_minor_locator(MultipleLocator(1))
                ax.legend(loc="upper left", frameon=False, fontsize=9)
            shown = pct if w is None else pct[w > 0]
            if shown.size:
                left = max(float(lo), math.floor(float(np.quantile(shown, 0.0005))) - 1.0)
                ax.set_xlim(left, float(hi) + 0.5)
            ax.xaxis.set_major_locator(MultipleLocator(5 if hi - lo <= 110 else 10))
            ax.set_ylim(bottom=0)
            _count_axis(ax.yaxis)
            ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
            ax.set_axisbelow(True)
            fig.text(
                0.01,
                0.01,
                f"{pct.size:,} stations, 0.1 pp bins",
                ha="left",
                va="bottom",
                fontsize=9,
                color="#555555",
            )
        else:
            ax.set_xlim(0, 100)
            _no_data(ax)
        _not_proof_note(fig)
        return _png(fig)


def crowd_vs_official_png(
    crowd: np.ndarray, official: np.ndarray, proof: np.ndarray, option_label: str
) -> bytes:
    """One point per station (and option): official votes (x) against crowd votes (y).

    Points above the line y = x have more crowd votes than the protocol: with
    verified crowd evidence the protocol is false (``proof`` true, red). Points
    above the line without proof (e.g. declared, unverified crowd counts) are
    orange; the rest grey. Axes switch to a symmetric log scale above 100 votes.
    """
    c = np.asarray(crowd, dtype=float).ravel()
    o = np.asarray(official, dtype=float).ravel()
    p = np.asarray(proof, dtype=bool).ravel()
    if not c.shape == o.shape == p.shape:
        raise ValueError(f"shapes differ: crowd {c.shape}, official {o.shape}, proof {p.shape}")
    keep = np.isfinite(c) & np.isfinite(o)
    c, o, p = c[keep], o[keep], p[keep]
    above = (c > o) & ~p
    rest = ~p & ~above
    with _style():
        fig = _new_figure(8.0, 7.5)
        ax = fig.add_axes((0.11, 0.1, 0.85, 0.8))
        ax.set_title(f"Crowd vs official votes per station: {option_label}", loc="left")
        ax.set_xlabel("Official votes (protocol)")
        ax.set_ylabel("Crowd votes (photos / imported tallies)")
        top = float(max(c.max(initial=0.0), o.max(initial=0.0), 1.0)) * 1.08
        if top > 100:
            ax.set_xscale("symlog", linthresh=10)
            ax.set_yscale("symlog", linthresh=10)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        _count_axis(ax.xaxis)
        _count_axis(ax.yaxis)
        line = np.geomspace(1e-3, top, 400) if top > 100 else np.linspace(0, top, 2)
        line = np.concatenate(([0.0], line))
        ax.fill_between(line, line, top, color=_PROOF_RED, alpha=0.06, linewidth=0)
        ax.plot(line, line, color="#333333", linewidth=1.0, linestyle="--", label="y = x")
        size = 10 if c.size < 5000 else 4
        ax.scatter(
            o[rest],
            c[rest],
            s=size,
            color=_NEUTRAL,
            alpha=0.5,
            linewidths=0,
            label=f"crowd ≤ official ({int(rest.sum()):,})",
            rasterized=True,
        )
        ax.scatter(
            o[above],
            c[above],
            s=size * 1.6,
            color=_DECLARED,
            alpha=0.8,
            linewidths=0,
            label=f"crowd > official, not proof (unverified) ({int(above.sum()):,})",
            rasterized=True,
        )
        ax.scatter(
            o[p],
            c[p],
            s=size * 2,
            color=_PROOF_RED,
            alpha=0.9,
            linewidths=0,
            label=f"proof: verified crowd > official ({int(p.sum()):,})",
            rasterized=True,
        )
        ax.text(
            0.03,
            0.97,
            "crowd above the line = protocol false",
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=12,
            fontweight="bold",
            color=_PROOF_RED,
        )
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], loc="lower right", fontsize=9, framealpha=0.9)
        ax.grid(True, color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
        if not c.size:
            _no_data(ax)
        fig.text(
            0.01,
            0.01,
            "A one-sided lower bound: crowd voters are a self-selected minority, so a point"
            " below the line proves nothing.",
            ha="left",
            va="bottom",
            fontsize=8.5,
            color="#555555",
        )
        return _png(fig)
