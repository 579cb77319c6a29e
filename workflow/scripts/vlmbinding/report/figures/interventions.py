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
SINGLE_COLOR = "tab:blue"
COVARIATE_LABELS = {
    "S": "Superposition score S of the pair",
    "overlap": "Shared neurons |A_f1 ∩ A_f2| of the pair",
}


def _summary_text(summary: pd.DataFrame, measure: str) -> str:
    rows = summary[(summary["measure"] == f"d{measure}") & (summary["contrast"] == "random")]
    if rows.empty:
        return ""
    r = rows.iloc[0]
    text = (
        f"|own| − |random| = {_num(r['excess_mean'], '+.3f')} "
        f"[{_num(r['excess_ci_low'], '.3f')}, {_num(r['excess_ci_high'], '.3f')}], "
        f"p = {_num(r['excess_p'], '.3f')}\n"
        f"Spearman ρ(excess, {r['covariate']}) = {_num(r['spearman'])} "
        f"[{_num(r['spearman_ci_low'])}, {_num(r['spearman_ci_high'])}], "
        f"Mantel p = {_num(r['mantel_p'], '.3f')}\n"
    )
    single = summary[
        (summary["measure"] == f"d{measure}") & (summary["contrast"] == "single_feature")
    ]
    if len(single):
        s = single.iloc[0]
        text += (
            f"|shared| − |single-feature| = {_num(s['excess_mean'], '+.3f')} "
            f"[{_num(s['excess_ci_low'], '.3f')}, {_num(s['excess_ci_high'], '.3f')}]; "
        )
    return text + (
        f"{int(r['n_pairs'])} pairs ({int(r['n_features'])} features, the unit resampled)"
    )


@_styled
def intervention_effects(
    effects: pd.DataFrame, summary: pd.DataFrame, model_name: str, title: str | None = None
) -> Figure:
    """ΔM and ΔD of every pair under its own neurons' ablation, with the controls.

    x: the shared neurons' count (select: shared) or S (select: pair_ratio). Grey bars:
    the control draws' mean ± 2 sd (random neurons matched per layer); red dots: the
    pair's own (shared) neurons, filled where the own effect is beyond every control draw;
    blue crosses: the mean of the f1-only and f2-only ablations. Pairs with nothing to
    ablate (n_neurons 0) are left out.
    """
    fig = Figure(figsize=(11.5, 5.6), layout="constrained")
    axes = fig.subplots(1, 2)
    data = effects[effects["n_neurons"] > 0]
    covariate = "overlap" if "overlap" in data else "S"
    for ax, m in zip(axes, ("M", "D")):
        s = data[covariate].to_numpy(float)
        own = data[f"d{m}"].to_numpy(float)
        mean = data[f"d{m}_control_mean"].to_numpy(float)
        sd = np.nan_to_num(data[f"d{m}_control_sd"].to_numpy(float))
        ax.errorbar(s, mean, yerr=2 * sd, fmt="_", color=CONTROL_COLOR, lw=1.2, ms=7, zorder=2)
        beyond = data[f"d{m}_p"].to_numpy(float) <= 1 / (data["control_draws"].to_numpy(float) + 1)
        ax.scatter(s[beyond], own[beyond], s=26, color=OWN_COLOR, zorder=3)
        ax.scatter(s[~beyond], own[~beyond], s=26, facecolor="none", edgecolor=OWN_COLOR, zorder=3)
        if f"d{m}_f1_only" in data:
            single = (data[f"d{m}_f1_only"] + data[f"d{m}_f2_only"]).to_numpy(float) / 2
            ax.scatter(s, single, s=22, marker="x", color=SINGLE_COLOR, zorder=3)
        ax.axhline(0, color="black", lw=0.8, zorder=1)
        ax.set_xlabel(COVARIATE_LABELS[covariate])
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
    if "dM_f1_only" in data:
        handles.append(
            Line2D([], [], marker="x", ls="", color=SINGLE_COLOR, label="f1-only, f2-only: mean")
        )
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    n = int(data["n_neurons"].median()) if len(data) else 0
    ablation = str(effects["ablation"].iloc[0]) if "ablation" in effects and len(effects) else ""
    which = "shared" if covariate == "overlap" else "pair-ratio"
    skipped = int((effects["n_neurons"] == 0).sum())
    fig.suptitle(
        title
        or f"{model_name}: ablating each pair's {which} neurons ({ablation} ablation, median "
        f"{n} neurons; {skipped} pairs with none left out) vs random neurons matched per layer"
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
