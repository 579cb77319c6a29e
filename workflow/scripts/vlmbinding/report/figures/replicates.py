"""Replicates of a model: each replicate's r(S, D) and r(S, M) and their random-effects pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from vlmbinding.report.figures.style import METRIC_NAMES, _num, _styled


def _interval(row: pd.Series, metric: str) -> tuple[float, float, bool]:
    """(low, high, dependence-aware?) of a summary row: the feature bootstrap when given."""
    low, high = row.get(f"r_{metric}_feature_low"), row.get(f"r_{metric}_feature_high")
    if low is not None and np.isfinite(low) and np.isfinite(high):
        return float(low), float(high), True
    return (
        float(row.get(f"r_{metric}_low", np.nan)),
        float(row.get(f"r_{metric}_high", np.nan)),
        False,
    )


def _overlap_diamond(ax, overlap: pd.DataFrame, base: str, metric: str, yi: float) -> None:
    """The overlap z's pooled r over seeds as a small purple diamond (nothing without one)."""
    hit = overlap[(overlap["base"] == base) & (overlap["metric"] == metric)]
    if hit.empty or not np.isfinite(hit["r_pooled"].iloc[0]):
        return
    p = hit.iloc[0]
    diamond = [(p["ci_low"], yi), (p["r_pooled"], yi + 0.15), (p["ci_high"], yi),
               (p["r_pooled"], yi - 0.15)]  # fmt: skip
    ax.add_patch(Polygon(diamond, closed=True, color="tab:purple", alpha=0.7, zorder=3))
    ax.annotate(f"overlap z: {_num(p['r_pooled'])} [{_num(p['ci_low'])}, {_num(p['ci_high'])}]",
                (p["ci_high"], yi), xytext=(5, 0), textcoords="offset points", va="center",
                fontsize=7.5, color="tab:purple")  # fmt: skip


def neuron_pool_overlap(pooled: pd.DataFrame) -> pd.DataFrame:
    """The pooled rows of the overlap z in the neuron basis over the neuron pool: measure
    'overlap', basis 'neurons' (never the autoencoder's per-layer rows) and, should that
    basis have several block sets, the widest (the analysed pool, every block's units side
    by side), per base. Empty without a measure column or such rows."""
    if "measure" not in pooled:
        return pooled.iloc[:0]
    rows = pooled[pooled["measure"].eq("overlap")]
    if "basis" in rows:
        rows = rows[rows["basis"].eq("neurons")]
    if "layers" not in rows or rows.empty:
        return rows

    def width(layers) -> int:
        return len([b for b in str(layers).split(",") if b.strip()])

    keep = []
    for _, group in rows.groupby("base", sort=False):
        widths = group["layers"].map(width)
        keep.append(group[group["layers"].eq(group.loc[widths.idxmax(), "layers"])])
    return pd.concat(keep)


@_styled
def replicate_forest(
    summary: pd.DataFrame, pooled: pd.DataFrame, title: str | None = None
) -> Figure:
    """Forest plot per base model: every trained replicate's r with its interval, then the pool.

    `summary` has one row per model (model, base, role, r_D, r_M and their intervals as
    `compare.model_summary` gives them); `pooled` is `pooling.pool_replicate_pairs` (features
    and seeds resampled together) or `cross_model.pool_replicates` (DerSimonian-Laird).
    Circles: replicates (feature-bootstrap 95% interval, or the pair bootstrap where that
    is all there is, drawn dashed); diamonds: the pooled r and its 95%
    interval, labelled with the number of replicates (and I² for the DerSimonian-Laird
    pool; only for bases with more than one trained model). When `pooled` has a `measure`
    column (S, and overlap with the sharing stage on) the diamonds are S's; the overlap z's
    pool (`neuron_pool_overlap`: the neuron basis over the neuron pool) is a purple diamond
    just below, with the summary's r_overlap_* per replicate as squares.
    """
    overlap = neuron_pool_overlap(pooled)
    if "measure" in pooled:
        pooled = pooled[pooled["measure"].eq("S")]
    trained = summary[summary["role"] == "trained"]
    if trained.empty:
        raise ValueError("no trained models to show")
    bases = list(pd.unique(trained["base"]))
    labels, kinds = [], []  # kinds: ("replicate", row) | ("pool", base)
    for base in bases:
        for _, row in trained[trained["base"] == base].iterrows():
            labels.append(str(row["model"]))
            kinds.append(("replicate", row))
        k = int(pooled.loc[pooled["base"] == base, "k"].max()) if len(pooled) else 0
        if (trained["base"] == base).sum() > 1:  # a single model has nothing to pool
            labels.append(f"{base}: pooled (k = {k})")
            kinds.append(("pool", base))
    n = len(labels)
    fig = Figure(figsize=(11.5, 0.42 * n + 2.2))
    fig.set_layout_engine("constrained", wspace=0.06)
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(n)[::-1]
    for ax, metric, color in zip(axes, ("D", "M"), ("tab:blue", "tab:orange")):
        ax.axvline(0, color="0.4", lw=1, zorder=1)
        for yi, (kind, item) in zip(y, kinds):
            if kind == "replicate":
                r = float(item[f"r_{metric}"])
                low, high, aware = _interval(item, metric)
                if np.isfinite(low) and np.isfinite(high):
                    ax.plot([low, high], [yi, yi], color=color, lw=1.6, ls="-" if aware else "--")
                ax.plot(r, yi, "o", color=color, markersize=6, zorder=3)
                ro = float(item.get(f"r_overlap_{metric}", np.nan))
                if np.isfinite(ro):
                    ax.plot(ro, yi - 0.3, "s", color="tab:purple", markersize=4, zorder=3)
                continue
            _overlap_diamond(ax, overlap, item, metric, yi - 0.32)
            hit = pooled[(pooled["base"] == item) & (pooled["metric"] == metric)]
            if hit.empty or not np.isfinite(hit["r_pooled"].iloc[0]):
                ax.text(0, yi, "not available", ha="center", va="center", fontsize=8.5)
                continue
            p = hit.iloc[0]
            diamond = [(p["ci_low"], yi), (p["r_pooled"], yi + 0.3), (p["ci_high"], yi),
                       (p["r_pooled"], yi - 0.3)]  # fmt: skip
            ax.add_patch(Polygon(diamond, closed=True, color="0.15", zorder=3))
            i2 = p.get("I2", np.nan)
            i2 = f", I² = {100 * i2:.0f}%" if np.isfinite(i2) else ""
            ax.annotate(
                f"{_num(p['r_pooled'])} [{_num(p['ci_low'])}, {_num(p['ci_high'])}]{i2}",
                (p["ci_high"], yi),
                xytext=(5, 0),
                textcoords="offset points",
                va="center",
                fontsize=8.5,
            )
        ax.set_xlim(-1, 1.45)
        ax.set_xticks([-1, -0.5, 0, 0.5, 1])
        ax.set_xlabel(f"Pearson r of S with {metric} (95% interval)")
        ax.set_title(f"S vs {METRIC_NAMES[metric]}")
        ax.grid(axis="x", alpha=0.25, lw=0.6)
    axes[0].set_yticks(y, labels)
    axes[0].set_ylim(-0.7, n - 0.3)
    fig.supxlabel(
        "Solid: 95% feature-bootstrap interval (features resampled); dashed: pair bootstrap "
        "(conditional: pairs treated as independent). Diamonds: pooled over seeds.\n"
        "Purple squares and diamonds (sharing stage on): the overlap z's r, per seed and pooled.",
        fontsize=8,
        color="0.3",
    )
    fig.suptitle(
        title or "Replicates: each seed's correlation and their pool over seeds (Fisher z)"
    )
    return fig
