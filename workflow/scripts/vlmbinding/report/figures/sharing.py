"""Co-tuned neuron overlap against D and M: does sharing neurons go with poor separability?"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vlmbinding.analysis.correlation import attach_scores
from vlmbinding.report.figures.correlation import _pair_panel, _pair_type
from vlmbinding.report.figures.style import (
    METRIC_LABELS,
    SPACE_NAMES,
    _styled,
)

SCORE_LABELS = {
    "z": "overlap z (co-tuned neurons against the degree-preserving null, in null sd)",
    "value": "overlap |A_f1 ∩ A_f2| (neurons in both tuned sets)",
}


@_styled
def sharing_scatter(
    sharing: pd.DataFrame,
    separability: pd.DataFrame,
    correlation: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    measure: str = "overlap",
    basis: str = "neurons",
    score: str = "z",
    space: str = "full",
    title: str | None = None,
) -> Figure:
    """Two panels, a measure of sharing against D and against M, one point per pair.

    `sharing` is sharing.parquet, `correlation` sharing_correlation.parquet (its rows of
    `measure`, `basis`, `score` and `space` label the lines: Pearson r, its interval with
    features resampled and the Mantel p with features permuted, then the conditional
    pair-level numbers). Pairs with a position are hollow grey; an infinite z (a null
    without spread) is left out of the plot, and the title says how many were.
    """
    rows = sharing[sharing["measure"].eq(measure) & sharing["basis"].eq(basis)]
    if rows.empty:
        raise ValueError(f"no sharing rows for measure {measure!r} in basis {basis!r}")
    corr = correlation[
        correlation["measure"].eq(measure)
        & correlation["basis"].eq(basis)
        & correlation["score"].eq(score)
    ]
    sep = separability[separability["space"].eq(space)]
    data = attach_scores(rows.rename(columns={score: "S"}), sep)
    dropped = int((~np.isfinite(data["S"].astype(float))).sum())
    data = data[np.isfinite(data["S"].astype(float))].reset_index(drop=True)
    data["type"] = [_pair_type(a, b, kinds) for a, b in zip(data["f1"], data["f2"])]

    fig = Figure(figsize=(13.5, 6.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("D", "M")):
        handles, lines = _pair_panel(ax, data, metric, corr, metric, space)
        ax.axvline(0, color="0.7", lw=0.8, zorder=1)
        ax.set_xlabel(SCORE_LABELS.get(score, score))
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.grid(alpha=0.25, lw=0.6)
        ax.margins(0.08)
        ax.legend(handles=handles, title="feature pair", loc="best", framealpha=0.85)
        ax.add_artist(ax.get_legend())
        ax.legend(
            handles=lines,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            fontsize=8,
            frameon=False,
            title="Pearson r [95% interval, features resampled], Mantel p (features permuted)",
            title_fontsize=8,
        )
    left_out = f"; {dropped} pairs with an infinite z left out" if dropped else ""
    fig.suptitle(
        title
        or f"Co-tuned neuron overlap against D and M ({SPACE_NAMES.get(space, space)}; "
        f"one point per feature pair{left_out})"
    )
    return fig
