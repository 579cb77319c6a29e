"""Measures of sharing against D and M: does sharing neurons go with poor separability?

Every figure here draws pairs of panels (the measure against D, against M) with the
helper of the S figure (`correlation._pair_panel`): one point per feature pair, the two
least-squares lines labelled with the rows of sharing_correlation.parquet (Pearson r, its
interval with features resampled, the Mantel p with features permuted). `sharing_scatter`
draws one measure in one basis (the co-tuned neuron overlap in the neuron basis, or in the
autoencoder basis), `geometry_scatter` the encoding geometry's interference and neuron
sharing at one block.
"""

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
# x-axis labels per (measure, score); the overlap's are SCORE_LABELS
MEASURE_LABELS = {
    ("interference", "value"): "interference ι (cross-fitted cosine of the encoding vectors)",
    ("interference", "z"): "interference ι, z against the neuron-permutation null",
    ("neuron_sharing", "value"): "neuron sharing ω (cross-fitted overlap of neuron profiles)",
    ("neuron_sharing", "z"): "neuron sharing ω, z against the neuron-permutation null",
}
BASIS_LABELS = {"neurons": "", "sae": " (autoencoder latents)"}
LEGEND_TITLE = "Pearson r [95% interval, features resampled], Mantel p (features permuted)"


def _axis_label(measure: str, basis: str, score: str) -> str:
    if measure == "overlap":
        label = SCORE_LABELS.get(score, score)
    else:
        label = MEASURE_LABELS.get((measure, score), f"{measure} ({score})")
    return label + BASIS_LABELS.get(basis, f" ({basis})")


def _select(table: pd.DataFrame, measure: str, basis: str, layers: str | None) -> pd.DataFrame:
    rows = table[table["measure"].eq(measure) & table["basis"].eq(basis)]
    if layers is not None:
        rows = rows[rows["layers"].astype(str).eq(str(layers))]
    return rows


def _measure_panels(
    axes,
    sharing: pd.DataFrame,
    separability: pd.DataFrame,
    correlation: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    measure: str,
    basis: str,
    score: str,
    space: str,
    layers: str | None = None,
) -> int:
    """One measure against D (axes[0]) and M (axes[1]); returns the pairs left out for an
    infinite score. An error naming measure, basis and layers when the table has no row."""
    rows = _select(sharing, measure, basis, layers)
    if rows.empty:
        at = "" if layers is None else f" at layers {layers!r}"
        raise ValueError(f"no sharing rows for measure {measure!r} in basis {basis!r}{at}")
    corr = _select(correlation, measure, basis, layers)
    corr = corr[corr["score"].eq(score)]
    sep = separability[separability["space"].eq(space)]
    data = attach_scores(rows.rename(columns={score: "S"}), sep)
    finite = np.isfinite(data["S"].astype(float))
    dropped = int((~finite).sum())
    data = data[finite].reset_index(drop=True)
    data["type"] = [_pair_type(a, b, kinds) for a, b in zip(data["f1"], data["f2"])]
    for ax, metric in zip(axes, ("D", "M")):
        handles, lines = _pair_panel(ax, data, metric, corr, metric, space)
        ax.axvline(0, color="0.7", lw=0.8, zorder=1)
        ax.set_xlabel(_axis_label(measure, basis, score))
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
            title=LEGEND_TITLE,
            title_fontsize=8,
        )
    return dropped


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
    without spread) is left out of the plot, and the title says how many were. basis
    'sae' draws the autoencoder basis's rows (the seeds' mean).
    """
    fig = Figure(figsize=(13.5, 6.6), layout="constrained")
    axes = fig.subplots(1, 2)
    dropped = _measure_panels(
        axes,
        sharing,
        separability,
        correlation,
        kinds,
        measure=measure,
        basis=basis,
        score=score,
        space=space,
    )
    left_out = f"; {dropped} pairs with an infinite z left out" if dropped else ""
    fig.suptitle(
        title
        or f"Co-tuned neuron overlap{BASIS_LABELS.get(basis, '')} against D and M "
        f"({SPACE_NAMES.get(space, space)}; one point per feature pair{left_out})"
    )
    return fig


def deepest_block(sharing: pd.DataFrame, measures=("interference", "neuron_sharing")) -> str:
    """The largest block index among the rows of `measures` (their `layers` is one block)."""
    blocks = sharing.loc[sharing["measure"].isin(measures), "layers"].astype(str).unique()
    if not len(blocks):
        raise ValueError(f"no sharing rows of the measures {list(measures)}")
    return max(blocks, key=int)


@_styled
def geometry_scatter(
    sharing: pd.DataFrame,
    separability: pd.DataFrame,
    correlation: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    layer: str | int | None = None,
    score: str = "value",
    space: str = "full",
    title: str | None = None,
) -> Figure:
    """Four panels: interference ι (top) and neuron sharing ω (bottom) against D and M.

    The encoding geometry's rows of sharing.parquet at block `layer` (default: the deepest
    block measured, `deepest_block`), score `value` or `z`; the lines are labelled from
    the rows of sharing_correlation.parquet of that block and score, as `sharing_scatter`.
    """
    layer = deepest_block(sharing) if layer is None else str(layer)
    fig = Figure(figsize=(13.5, 12.4), layout="constrained")
    axes = fig.subplots(2, 2)
    dropped = 0
    for row, measure in zip(axes, ("interference", "neuron_sharing")):
        dropped += _measure_panels(
            row,
            sharing,
            separability,
            correlation,
            kinds,
            measure=measure,
            basis="neurons",
            score=score,
            space=space,
            layers=layer,
        )
    left_out = f"; {dropped} points with an infinite z left out" if dropped else ""
    fig.suptitle(
        title
        or f"Encoding geometry at block {layer}: interference ι and neuron sharing ω against "
        f"D and M ({SPACE_NAMES.get(space, space)}; one point per feature pair{left_out})"
    )
    return fig
