"""The sanity figure: each headline statistic for the trained model, its
untrained twin and the pixel baseline, with the difference and whether it survives."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vlmbinding.report.figures.style import _num, _styled

SERIES = (
    ("trained", "trained model", "tab:blue", "o"),
    ("random", "untrained twin", "tab:red", "s"),
    ("pixels", "pixel baseline", "tab:gray", "D"),
)
SURVIVES_COLOR = "#006400"
FAILS_COLOR = "#8b0000"


@_styled
def sanity_panels(table: pd.DataFrame, model_name: str, ncols: int = 2) -> Figure:
    """One panel per row of the sanity table: the values with their 95% intervals.

    In each panel the trained model, its random twin and (where it applies) the pixel
    baseline sit on their own line; the panel's note gives the difference trained minus
    random with its interval and the verdict, green when the statistic survives.
    """
    n = len(table)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(5.6 * ncols, 1.9 * nrows + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, row in zip(axes, table.itertuples(index=False)):
        ys, labels = [], []
        for y, (key, label, color, marker) in enumerate(SERIES):
            if key == "pixels":
                label = _pixel_label(row.statistic)
            value = getattr(row, key)
            if not np.isfinite(value):
                continue
            low = getattr(row, f"{key}_ci_low", np.nan)
            high = getattr(row, f"{key}_ci_high", np.nan)
            if np.isfinite(low) and np.isfinite(high):
                ax.plot([low, high], [y, y], color=color, lw=2.2, solid_capstyle="butt")
            ax.plot([value], [y], marker=marker, color=color, ms=7, ls="none")
            ax.annotate(
                _num(value, ".3g"),
                (value, y),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8.5,
            )
            ys.append(y)
            labels.append(label)
        ax.set_yticks(ys, labels)
        ax.set_ylim(len(SERIES) - 0.4, -0.6)
        if row.unit == "features":
            ax.axvline(0, color="black", lw=0.8, ls=":")
        ax.set_title(row.statistic, loc="left")
        note = (
            f"difference {_num(row.difference, '+.3g')} "
            f"[{_num(row.difference_ci_low, '.3g')}, {_num(row.difference_ci_high, '.3g')}]"
            f" ({row.unit} resampled)"
        )
        if np.isfinite(row.trained_mantel_p):
            note += (
                f"\nMantel p: trained {_num(row.trained_mantel_p, '.3g')}, "
                f"twin {_num(row.random_mantel_p, '.3g')}"
            )
        note += "\n" + ("survives" if row.survives else "does not survive")
        # as the x label, so that the layout keeps it clear of the tick labels
        ax.set_xlabel(
            note, fontsize=8.5, color=SURVIVES_COLOR if row.survives else FAILS_COLOR, loc="right"
        )
        ax.margins(x=0.15)
    for ax in axes[n:]:
        ax.set_visible(False)
    survive = int(table["survives"].sum())
    fig.suptitle(
        f"{model_name}: sanity controls — {survive} of {n} statistics survive "
        "(trained vs untrained twin, 95% intervals)"
    )
    return fig


def _pixel_label(statistic: str) -> str:
    """What the pixel baseline is for a row: S against the pixels' D or M, or an even map."""
    for metric in ("D", "M"):
        if statistic.startswith(f"r(S, {metric})"):
            return f"S vs pixels' {metric}"
    if statistic.startswith("Grad-CAM"):
        return "even spread (area)"
    return "pixel baseline"
