"""The autoencoder basis: how its dictionaries trained, and how much sharing they resolve.

`sae_training` draws each layer's training.tsv (loss, held-out fraction of variance
unexplained, dead-latent fraction by step, one line per seed); `sae_resolved` draws
resolved.tsv (pairs that share in the neuron basis, in the sparse basis, in both, and
those the sparse basis resolves, per measure and autoencoder seed).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vlmbinding.report.figures.style import _styled

TRAINING_PANELS = {
    "loss": "training loss",
    "fvu": "fraction of variance unexplained (held out)",
    "dead_fraction": "dead latents (fraction, fired on no token)",
}
SEED_STYLES = ("-", "--", ":", "-.")
RESOLVED_BARS = {
    "shared_neurons": ("share in the neuron basis", "#4c72b0"),
    "shared_sae": ("share in the sparse basis", "#dd8452"),
    "shared_both": ("share in both", "#55a868"),
    "resolved": ("resolved (neurons only)", "#8172b3"),
}


@_styled
def sae_training(curves: Mapping[str | int, pd.DataFrame], title: str | None = None) -> Figure:
    """Three panels (loss, FVU, dead fraction) against the step, one line per layer and seed.

    `curves` maps a layer to its training.tsv (seed, step, loss, fvu, dead_fraction);
    colours tell the layers apart, line styles the seeds. A missing column is an error
    naming the layer and the column.
    """
    if not curves:
        raise ValueError("no training curve to draw (sharing.sae: no layer)")
    fig = Figure(figsize=(14, 4.8), layout="constrained")
    axes = fig.subplots(1, 3)
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for colour, (layer, curve) in zip(colours, curves.items()):
        missing = {"seed", "step", *TRAINING_PANELS} - set(curve.columns)
        if missing:
            raise ValueError(f"layer {layer}: training.tsv lacks {sorted(missing)}")
        for j, (seed, rows) in enumerate(curve.groupby("seed", sort=True)):
            rows = rows.sort_values("step")
            for ax, column in zip(axes, TRAINING_PANELS):
                ax.plot(
                    rows["step"],
                    rows[column],
                    color=colour,
                    ls=SEED_STYLES[j % len(SEED_STYLES)],
                    marker="o",
                    markersize=3,
                    label=f"layer {layer}, seed {seed}",
                )
    for ax, label in zip(axes, TRAINING_PANELS.values()):
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.25, lw=0.6)
    axes[2].set_ylim(0, 1.02)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(title or "Sparse autoencoders: training curves per layer and seed")
    return fig


@_styled
def sae_resolved(resolved: pd.DataFrame, title: str | None = None) -> Figure:
    """Bars per measure and autoencoder seed ('mean' = the seeds' mean basis): pairs that
    share (z above the threshold) in the neuron basis, in the sparse basis, in both, and
    resolved (neurons only); the resolved share and r of the pairs' z between the bases
    are written above each group."""
    if resolved.empty:
        raise ValueError("the resolved table is empty")
    measures = list(dict.fromkeys(resolved["measure"]))
    fig = Figure(figsize=(max(6.0, 3.2 * len(measures)) + 2, 5.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(measures), sharey=True))
    width = 0.8 / len(RESOLVED_BARS)
    for ax, measure in zip(axes, measures):
        rows = resolved[resolved["measure"].eq(measure)].reset_index(drop=True)
        x = np.arange(len(rows))
        for j, (column, (label, colour)) in enumerate(RESOLVED_BARS.items()):
            ax.bar(x + (j - 1.5) * width, rows[column], width, color=colour, label=label)
        top = float(rows[list(RESOLVED_BARS)].to_numpy(float).max()) if len(rows) else 0.0
        for xi, row in zip(x, rows.itertuples()):
            ax.text(
                xi,
                top * 1.04 + 0.3,
                f"{_share(row.resolved_share)} resolved\nr(z) {_share(row.r_z)}",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_xticks(x, [_seed_label(s) for s in rows["sae_seed"]])
        threshold = rows["threshold"].iloc[0] if len(rows) else np.nan
        n = int(rows["n_pairs"].iloc[0]) if len(rows) else 0
        ax.set_title(f"{measure} ({n} pairs; shares: z > {threshold:.3g})")
        ax.set_xlabel("autoencoder seed")
        ax.margins(y=0.25)
        ax.grid(axis="y", alpha=0.25, lw=0.6)
    axes[0].set_ylabel("feature pairs")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, frameon=False)
    fig.suptitle(title or "How much of the neuron basis's sharing the sparse basis resolves")
    return fig


def _share(x) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not np.isfinite(value) else f"{value:.2f}"


def _seed_label(seed) -> str:
    return "seeds' mean" if str(seed) == "mean" else f"seed {seed}"
