"""Figure 7: the toy model's zero-shot accuracies."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from vlmbinding.report.figures.style import (
    ZERO_SHOT_NAMES,
    _num,
    _styled,
)

SPLIT_STYLES = {
    # split: (legend label, colour, hatch)
    "seen": ("seen combinations (trained on inside other scenes)", "tab:blue", ""),
    "unseen": ("unseen combinations (held out of training)", "tab:orange", "//"),
    "all": ("test scenes", "tab:blue", ""),
}


@_styled
def zero_shot_bars(zero_shot: pd.DataFrame, model_name: str, title: str | None = None) -> Figure:
    """Zero-shot accuracy per attribute and split, with chance (toy model, one-object tests).

    `zero_shot` has attribute (color | shape | position | triple), accuracy, chance, n and
    optionally split (seen | unseen: side-by-side bars) and ci_low/ci_high (95% Wilson
    intervals, drawn as error bars). Without split, one bar per attribute.
    """
    table = zero_shot if "split" in zero_shot else zero_shot.assign(split="all")
    splits = [s for s in SPLIT_STYLES if s in set(table["split"])]
    splits += sorted(set(table["split"]) - set(splits))
    attributes = list(pd.unique(table["attribute"]))
    n_attr, n_split = len(attributes), len(splits)
    width = 0.8 / n_split
    fig = Figure(figsize=(n_attr * (0.8 + 0.6 * n_split) + 2.0, 4.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(n_attr)
    handles = []
    for j, split in enumerate(splits):
        label, color, hatch = SPLIT_STYLES.get(split, (split, f"C{j}", ""))
        part = table[table["split"].eq(split)].set_index("attribute").reindex(attributes)
        acc = part["accuracy"].to_numpy(float)
        xs = x - 0.4 + width * (j + 0.5)
        ax.bar(
            xs,
            np.nan_to_num(acc),
            width=width * 0.92,
            color=color,
            hatch=hatch,
            edgecolor="white",
            zorder=2,
        )
        if {"ci_low", "ci_high"} <= set(part.columns):
            low, high = part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float)
            err = np.array([np.nan_to_num(acc - low), np.nan_to_num(high - acc)]).clip(min=0)
            ax.errorbar(
                xs, acc, yerr=err, fmt="none", ecolor="black", elinewidth=1.0, capsize=3, zorder=4
            )
        tops = part["ci_high"].to_numpy(float) if "ci_high" in part else acc
        for xi, a, top in zip(xs, acc, np.fmax(acc, tops)):
            # Above the bar and its interval, where no hatch or line crosses it.
            ax.text(
                xi,
                (top if np.isfinite(top) else 0) + 0.015,
                "n/a" if not np.isfinite(a) else f"{a:.2f}",
                ha="center",
                va="bottom",
                fontsize=8.5,
                fontweight="bold",
                zorder=5,
            )
        n_text = ""
        if part["n"].notna().any():
            n_text = f", n = {int(part['n'].dropna().iloc[0]):,}"
        handles.append(
            Patch(facecolor=color, hatch=hatch, edgecolor="white", label=f"{label}{n_text}")
        )
    chance = table.groupby("attribute", sort=False)["chance"].first().reindex(attributes)
    ax.hlines(
        chance.to_numpy(float),
        x - 0.45,
        x + 0.45,
        colors="black",
        linestyles="--",
        lw=1.6,
        zorder=3,
    )
    labels = [
        f"{ZERO_SHOT_NAMES.get(str(a), str(a))}\n(chance {_num(chance[a], '.2g')})"
        for a in attributes
    ]
    ax.set_xticks(x, labels)
    ax.set_xlim(-0.6, n_attr - 0.4)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("Zero-shot accuracy (one-object test scenes,\n95% Wilson interval)")
    ax.set_xlabel("Attribute predicted")
    ax.grid(axis="y", alpha=0.25, lw=0.6, zorder=0)
    handles.append(Line2D([], [], color="black", ls="--", lw=1.6, label="chance level"))
    fig.legend(handles=handles, loc="outside lower center", frameon=False)
    ax.set_title(
        title
        or f"Zero-shot classification by {model_name}\nof one-object scenes never seen in training"
    )
    return fig
