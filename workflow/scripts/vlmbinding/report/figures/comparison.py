"""The cross-model view: one row of statistics per model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vlmbinding.report.figures.style import (
    METRIC_NAMES,
    _num,
    _styled,
)


def _overlap(ax, summary: pd.DataFrame, metric: str, y: np.ndarray) -> bool:
    """The overlap z's r with `metric` per model, as squares just below S's circles; whether
    any model has one."""
    col = f"r_overlap_{metric}"
    if col not in summary or not np.isfinite(summary[col].astype(float)).any():
        return False
    r = summary[col].to_numpy(float)
    low, high = (summary[f"{col}_{e}"].to_numpy(float) for e in ("low", "high"))
    err = np.array([np.nan_to_num(r - low), np.nan_to_num(high - r)]).clip(min=0)
    ax.errorbar(r, y - 0.28, xerr=err, fmt="s", color="tab:purple", capsize=3, markersize=5)
    for yi, ri in zip(y, r):
        if np.isfinite(ri):
            ax.annotate(_num(ri), (ri, yi - 0.28), xytext=(0, -9), textcoords="offset points",
                        ha="center", va="top", fontsize=7.5, color="tab:purple")  # fmt: skip
    return True


@_styled
def model_comparison(summary: pd.DataFrame, title: str | None = None) -> Figure:
    """Per model: correlation of S with D and with M (with intervals), binding accuracy.

    `summary` has one row per model: model, r_D, r_D_low, r_D_high, r_M, r_M_low, r_M_high,
    binding_accuracy (NaN where not run), median_entropy. The binding panel is left out
    when no model has a binding accuracy. With the sharing stage's columns (r_overlap_D,
    r_overlap_D_low, ... from `cross_model.sharing_summary`) the overlap z's r is drawn
    beside S's (squares, just below each model's circle).
    """
    if summary.empty:
        raise ValueError("no models to compare")
    n = len(summary)
    binding = (
        summary["binding_accuracy"].astype(float)
        if "binding_accuracy" in summary
        else pd.Series(np.nan, index=summary.index)
    )
    with_binding = bool(np.isfinite(binding).any())
    n_panels = 3 if with_binding else 2
    fig = Figure(figsize=(3.3 * n_panels + 1.6, 0.55 * n + 2.4))
    # Extra room between panels: the 1.0 of one x axis and the -1.0 of the next meet.
    fig.set_layout_engine("constrained", wspace=0.06)
    axes = fig.subplots(1, n_panels, sharey=True)
    y = np.arange(n)[::-1]
    labels = []
    for _, row in summary.iterrows():
        med = row.get("median_entropy", np.nan)
        sub = f"\nmedian H = {_num(med)} bits" if pd.notna(med) else ""
        labels.append(f"{row['model']}{sub}")
    for ax, metric, color in zip(axes, ("D", "M"), ("tab:blue", "tab:orange")):
        r = summary[f"r_{metric}"].to_numpy(float)
        low = summary.get(f"r_{metric}_low", pd.Series(np.nan, index=summary.index))
        high = summary.get(f"r_{metric}_high", pd.Series(np.nan, index=summary.index))
        low, high = low.to_numpy(float), high.to_numpy(float)
        err = np.array([np.nan_to_num(r - low), np.nan_to_num(high - r)]).clip(min=0)
        ax.axvline(0, color="0.4", lw=1, zorder=1)
        ax.errorbar(r, y, xerr=err, fmt="o", color=color, capsize=4, markersize=7, zorder=3)
        for yi, ri in zip(y, r):
            if not np.isfinite(ri):
                # On a white box, so that the zero line does not run through the words.
                ax.text(
                    0,
                    yi,
                    "not available",
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    color="0.3",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.7"},
                    zorder=4,
                )
                continue
            ax.annotate(
                _num(ri),
                (ri, yi),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8.5,
            )
        with_overlap = _overlap(ax, summary, metric, y)
        ax.set_xlim(-1, 1)
        what = (
            f"with {metric}: S (circles), overlap z (squares)"
            if with_overlap
            else f"of S with {metric}"
        )
        ax.set_xlabel(f"Pearson r {what}\n(95% interval, features resampled)", fontsize=9)
        ax.set_title(f"{'S, overlap' if with_overlap else 'S'} vs {METRIC_NAMES[metric]}")
        ax.grid(axis="x", alpha=0.25, lw=0.6)
    axes[0].set_yticks(y, labels)
    axes[0].set_ylim(-0.7, n - 0.3)
    if with_binding:
        ax = axes[2]
        acc = binding.to_numpy(float)
        ax.barh(y, np.nan_to_num(acc), height=0.55, color="tab:green", zorder=2)
        ax.axvline(0.5, color="black", ls="--", lw=1.4, label="chance (0.5)", zorder=3)
        for yi, a in zip(y, acc):
            text = f"{a:.2f}" if np.isfinite(a) else "not run"
            ax.text(
                (a if np.isfinite(a) else 0) + 0.02, yi, text, va="center", ha="left", fontsize=9
            )
        ax.set_xlim(0, 1.12)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_xlabel("Swapped-caption binding accuracy\n(fraction of trials)")
        ax.set_title("Attribute binding")
        ax.legend(loc="lower right", fontsize=8.5, framealpha=0.9)
    fig.suptitle(
        title or "Models compared: does superposition predict poor separability and binding?"
    )
    return fig
