"""Figure 7: the toy model's zero-shot accuracies."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .style import (
    ZERO_SHOT_NAMES,
    _num,
    _styled,
)


@_styled
def zero_shot_bars(zero_shot: pd.DataFrame, model_name: str, title: str | None = None) -> Figure:
    """Zero-shot accuracy per attribute with its chance level (toy model, held-out objects).

    `zero_shot` has attribute (color | shape | position | triple), accuracy, chance, n.
    """
    n_bars = len(zero_shot)
    fig = Figure(figsize=(1.35 * n_bars + 2.4, 4.4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(n_bars)
    acc = zero_shot["accuracy"].to_numpy(float)
    chance = zero_shot["chance"].to_numpy(float)
    colors = [mpl.colormaps["tab10"](i % 10) for i in range(n_bars)]
    ax.bar(x, acc, width=0.62, color=colors, zorder=2)
    ax.hlines(chance, x - 0.4, x + 0.4, colors="black", linestyles="--", lw=1.6, zorder=3)
    for xi, a, c in zip(x, acc, chance):
        if not np.isfinite(a):
            ax.text(xi, 0.02, "n/a", ha="center", va="bottom")
            continue
        # Above the bar (and above the chance line when that sits just over the bar), or
        # inside the bar near its top when the bar reaches the top of the axes.
        inside = a > 0.9
        y_text = a - 0.02 if inside else a + 0.015
        if not inside and np.isfinite(c) and a <= c < a + 0.08:
            y_text = c + 0.015
        ax.text(
            xi,
            y_text,
            f"{a:.2f}",
            ha="center",
            va="top" if inside else "bottom",
            fontsize=9.5,
            fontweight="bold",
            color="white" if inside else "black",
            zorder=4,
        )
    labels = []
    for _, row in zero_shot.iterrows():
        name = ZERO_SHOT_NAMES.get(str(row["attribute"]), str(row["attribute"]))
        notes = [f"chance {_num(row['chance'])}"]
        if "n" in row and pd.notna(row["n"]):
            notes.insert(0, f"n = {int(row['n']):,}")
        labels.append(f"{name}\n({', '.join(notes)})")
    ax.set_xticks(x, labels)
    ax.set_xlim(-0.6, n_bars - 0.4)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("Zero-shot accuracy (held-out single objects)")
    ax.set_xlabel("Attribute predicted")
    ax.grid(axis="y", alpha=0.25, lw=0.6, zorder=0)
    ax.legend(
        handles=[Line2D([], [], color="black", ls="--", lw=1.6, label="chance level")],
        loc="upper right",
        frameon=True,
        framealpha=0.9,
    )
    ax.set_title(title or f"Zero-shot classification by {model_name}\nof held-out single objects")
    return fig
