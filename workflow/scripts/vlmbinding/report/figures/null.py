"""The null model of S: each pair's S against S under permuted image labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from vlmbinding.report.figures.style import _styled


@_styled
def superposition_null(null: pd.DataFrame, title: str | None = None, label: int = 4) -> Figure:
    """Per feature pair (sorted by its null mean): the observed S as a dot and the central
    95% of S under permuted image labels (null_mean +- 1.96 null_sd) as a grey bar.

    `null` has f1, f2, S, null_mean, null_sd, z, p, n_perm (superposition_null.parquet).
    Dots outside the bar are pairs whose S is not explained by the features' frequencies;
    filled dots have p <= 0.05. The `label` pairs with the largest |z| are named.
    """
    data = null.sort_values(["null_mean", "S"], kind="stable").reset_index(drop=True)
    x = np.arange(len(data))
    mean, sd = data["null_mean"].to_numpy(float), data["null_sd"].to_numpy(float)
    s, p = data["S"].to_numpy(float), data["p"].to_numpy(float)
    fig = Figure(figsize=(max(6.5, 0.06 * len(data) + 4), 4.8), layout="constrained")
    ax = fig.subplots()
    ax.bar(x, 2 * 1.96 * sd, bottom=mean - 1.96 * sd, width=0.8, color="0.82", zorder=1)
    ax.plot(x, mean, "_", color="0.35", markersize=5, zorder=2)
    far = p <= 0.05
    ax.scatter(x[~far], s[~far], s=16, facecolors="white", edgecolors="tab:blue", zorder=3)
    ax.scatter(x[far], s[far], s=18, color="tab:red", zorder=3)
    z = data["z"].to_numpy(float)
    for i in np.argsort(-np.nan_to_num(np.abs(z)), kind="stable")[: max(0, label)]:
        ax.annotate(
            f"{data['f1'][i]}–{data['f2'][i]}",
            (x[i], s[i]),
            xytext=(4, 6 if z[i] >= 0 else -12),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xticks([])
    ax.set_xlim(-1, len(data))
    ax.set_xlabel(f"feature pairs ({len(data)}), sorted by the S their features' frequencies give")
    ax.set_ylabel("Superposition score S")
    n_perm = int(data["n_perm"].iloc[0]) if len(data) else 0
    ax.set_title(
        title
        or "Superposition score S against its null\n"
        f"(image labels permuted {n_perm:,} times; top-k images and selection rule kept)"
    )
    ax.grid(axis="y", alpha=0.25, lw=0.6)
    handles = [
        Patch(color="0.82", label="null: central 95% (mean ± 1.96 sd)"),
        Line2D([], [], ls="", marker="o", color="tab:red", label=f"S, p ≤ 0.05 ({far.sum()})"),
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            markerfacecolor="white",
            markeredgecolor="tab:blue",
            label=f"S, p > 0.05 ({(~far).sum()})",
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    return fig
