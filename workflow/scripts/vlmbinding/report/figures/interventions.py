"""Neuron interventions: each pair's change in M and D against S, and one example."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from vlmbinding.analysis.separability import centroid_separability
from vlmbinding.report.figures.style import _num, _styled

EFFECT_LABELS = {
    "M": "ΔM after ablation\n(misclassification rate, after − before)",
    "D": "ΔD after ablation\n(cluster-centre distance, after − before)",
}
OWN_COLOR = "tab:red"
CONTROL_COLOR = "0.55"


def _summary_text(summary: pd.DataFrame, measure: str) -> str:
    rows = summary[summary["measure"] == f"d{measure}"]
    if rows.empty:
        return ""
    r = rows.iloc[0]
    return (
        f"|own| − |random| = {_num(r['excess_mean'], '+.3f')} "
        f"[{_num(r['excess_ci_low'], '.3f')}, {_num(r['excess_ci_high'], '.3f')}]\n"
        f"Spearman ρ(excess, S) = {_num(r['spearman_S'])} "
        f"[{_num(r['spearman_S_ci_low'])}, {_num(r['spearman_S_ci_high'])}], "
        f"Mantel p = {_num(r['mantel_p'], '.3f')}\n"
        f"own beyond every control: {_num(r['frac_beyond_all_controls'])} of "
        f"{int(r['n_pairs'])} pairs (chance {_num(r['chance_beyond_all_controls'])})"
    )


@_styled
def intervention_effects(
    effects: pd.DataFrame, summary: pd.DataFrame, model_name: str, title: str | None = None
) -> Figure:
    """ΔM and ΔD of every pair under its own neurons' ablation against S, with the controls.

    Grey bars: the control draws' mean ± 2 sd (random neurons of the same layers); red
    dots: the pair's own neurons, filled where the own effect is beyond every control draw.
    """
    fig = Figure(figsize=(11.5, 5.4), layout="constrained")
    axes = fig.subplots(1, 2)
    data = effects[effects["n_ablated"] > 0]
    for ax, m in zip(axes, ("M", "D")):
        s = data["S"].to_numpy(float)
        own = data[f"d{m}"].to_numpy(float)
        mean = data[f"d{m}_control_mean"].to_numpy(float)
        sd = np.nan_to_num(data[f"d{m}_control_sd"].to_numpy(float))
        ax.errorbar(s, mean, yerr=2 * sd, fmt="_", color=CONTROL_COLOR, lw=1.2, ms=7, zorder=2)
        beyond = data[f"d{m}_p"].to_numpy(float) <= 1 / (data["control_draws"].to_numpy(float) + 1)
        ax.scatter(s[beyond], own[beyond], s=26, color=OWN_COLOR, zorder=3)
        ax.scatter(s[~beyond], own[~beyond], s=26, facecolor="none", edgecolor=OWN_COLOR, zorder=3)
        ax.axhline(0, color="black", lw=0.8, zorder=1)
        ax.set_xlabel("Superposition score S of the pair")
        ax.set_ylabel(EFFECT_LABELS[m])
        ax.set_title(_summary_text(summary, m), fontsize=8.5, loc="left")
        ax.grid(alpha=0.25, lw=0.6)
    k = int(data["control_draws"].max()) if len(data) else 0
    handles = [
        Line2D(
            [], [], marker="o", ls="", color=OWN_COLOR, label="own neurons (beyond every control)"
        ),
        Line2D(
            [], [], marker="o", ls="", markerfacecolor="none", color=OWN_COLOR, label="own neurons"
        ),
        Line2D([], [], marker="_", color=CONTROL_COLOR, label=f"{k} random draws: mean ± 2 sd"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    n = int(data["n_ablated"].median()) if len(data) else 0
    ablation = str(effects["ablation"].iloc[0]) if "ablation" in effects and len(effects) else ""
    fig.suptitle(
        title
        or f"{model_name}: ablating each pair's own neurons ({ablation} ablation, median {n} "
        f"neurons) vs random neurons of the same layers"
    )
    return fig


@_styled
def intervention_example(
    before: np.ndarray, after: np.ndarray, labels: np.ndarray, f1: str, f2: str, model_name: str
) -> Figure:
    """The two classes of one pair before and after ablating its neurons, in one 2-D PCA.

    The projection is fit on the embeddings before the intervention and applied to both,
    so the two panels share axes; crosses mark the class centroids.
    """
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    centre = before.mean(axis=0)
    _, _, vt = np.linalg.svd(before - centre, full_matrices=False)
    basis = vt[:2].T
    for ax, emb, when in zip(axes, (before, after), ("before", "after")):
        z = (emb - centre) @ basis
        d, m = centroid_separability(emb[labels == 1], emb[labels == 2])
        for cls, name, color in ((1, f1, "tab:blue"), (2, f2, "tab:orange")):
            pts = z[labels == cls]
            ax.scatter(pts[:, 0], pts[:, 1], s=14, alpha=0.6, color=color, label=f"{name} only")
            c = pts.mean(axis=0)
            ax.scatter(*c, marker="X", s=140, color=color, edgecolor="black", zorder=3)
        ax.set_title(f"{when} ablation: D = {_num(d)}, M = {_num(m)}")
        ax.set_xlabel("PC 1 (fit before ablation)")
        ax.grid(alpha=0.25, lw=0.6)
    axes[0].set_ylabel("PC 2 (fit before ablation)")
    axes[0].legend(loc="best", frameon=True, framealpha=0.9)
    fig.suptitle(f"{model_name}: the pair ({f1}, {f2}) before and after ablating its neurons")
    return fig
