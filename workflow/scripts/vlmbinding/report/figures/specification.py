"""The specification curve: r(S, D) and r(S, M) under every analysis choice, sorted."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from vlmbinding.report.figures.style import METRIC_NAMES, _num, _styled

NEGATIVE_COLOR = "tab:blue"
POSITIVE_COLOR = "tab:red"
NEUTRAL_COLOR = "0.62"
CHOICE_NAMES = {
    "top_k": "top-k images",
    "n_neurons": "neurons in S",
    "layers": "layer pool",
    "reduce": "token reduction",
    "tokens": "tokens",
    "space": "embedding space",
    "subset": "pairs",
}
VALUE_NAMES = {
    ("subset", "all"): "all pairs",
    ("subset", "no_position"): "no position pairs",
    ("tokens", "all"): "all tokens (CLS too)",
    ("tokens", "patches"): "patch tokens",
    ("space", "full"): "full embedding",
    ("space", "pca"): "PCA (per pair)",
    ("layers", "all"): "all blocks",
    ("layers", "third-1"): "first third of blocks",
    ("layers", "third-2"): "middle third of blocks",
    ("layers", "third-3"): "last third of blocks",
    ("tokens", "box"): "patches in the object's box (omega)",
}
MEASURE_NAMES = {"S": "S", "overlap": "overlap z", "omega": "omega z (neuron sharing)"}
# S's choices that other measures do not make: their rows carry this value
NOT_A_CHOICE = {("top_k", 0), ("n_neurons", 0)}


def _choice_rows(specs: pd.DataFrame, choices) -> list[tuple[str, object]]:
    """(choice, value) rows of the dot matrix: numbers ascending, words in table order."""
    rows = []
    for choice in choices:
        values = list(pd.unique(specs[choice]))
        if all(isinstance(v, (int, np.integer)) for v in values):
            values = sorted(values)
        rows += [(choice, v) for v in values]
    return rows


def _row_label(choice: str, value, specs: pd.DataFrame | None = None) -> str:
    """'choice: value'; an S-only choice's placeholder names the measures whose rows carry
    it ('not a choice (overlap, omega)')."""
    words = VALUE_NAMES.get((choice, value), value)
    if (choice, value) in NOT_A_CHOICE and specs is not None and "measure" in specs:
        hit = specs.loc[specs[choice].eq(value) & specs["measure"].ne("S"), "measure"]
        words = f"not a choice ({', '.join(map(str, pd.unique(hit))) or 'S'})"
    return f"{CHOICE_NAMES.get(choice, choice)}: {words}"


def _share_text(summary: pd.DataFrame, measure: str, metric: str, n: int, alpha: float) -> str:
    hit = summary[summary["metric"] == metric] if summary is not None else pd.DataFrame()
    if "measure" in hit:
        hit = hit[hit["measure"] == measure]
    if hit.empty:
        return f"{n} specifications"
    row = hit.iloc[0]
    text = (
        f"{n} specifications; Mantel p < {alpha:g}: {100 * row['share_negative']:.0f}% negative, "
        f"{100 * row['share_positive']:.0f}% positive; median r = {_num(row['median_r'])}"
    )
    if "joint_p_share" in row and np.isfinite(row["joint_p_share"]):
        text += (
            f"\njoint test (features permuted in all at once): "
            f"p(share) = {_num(row['joint_p_share'])}, p(median) = {_num(row['joint_p_median'])}"
        )
    return text


@_styled
def specification_curve(
    specs: pd.DataFrame,
    summary: pd.DataFrame | None = None,
    alpha: float = 0.05,
    choices=("top_k", "n_neurons", "layers", "reduce", "tokens", "space", "subset"),
    title: str | None = None,
) -> Figure:
    """Per measure (S, overlap, omega) and metric (D, M): every specification's r, sorted, above
    the choices that made it (one column each; the title names the measure).

    `specs` is a specifications table (`specification.specification_table`: the choice
    columns, metric, pearson_r, feature_ci_low, feature_ci_high, mantel_p); `summary` its
    `specification_summary`, whose shares head each column. Top: r with its 95%
    feature-jackknife interval, blue when significantly negative (Mantel p < alpha), red when
    significantly positive, grey otherwise. Bottom: one row per choice value, a dot under a
    specification that used it. A black ring marks the main analysis's specifications
    (column `main`, one per space and subset); the title quotes the joint test when the
    summary has it (joint_p_share, joint_p_median).
    """
    if specs.empty:
        raise ValueError("no specifications to plot")
    if "measure" not in specs:
        specs = specs.assign(measure="S")
    measures = [m for m in MEASURE_NAMES if m in set(specs["measure"])]
    measures += [m for m in pd.unique(specs["measure"]) if m not in measures]
    panels = [(s, m) for s in measures for m in ("D", "M") if m in set(specs["metric"])]
    panels = [(s, m) for s, m in panels if ((specs["measure"] == s) & (specs["metric"] == m)).any()]
    rows = _choice_rows(specs, choices)
    fig = Figure(figsize=(6.2 * len(panels) + 1.5, 4.2 + 0.2 * len(rows)))
    fig.set_layout_engine("constrained")
    axes = fig.subplots(
        2,
        len(panels),
        squeeze=False,
        sharex="col",
        gridspec_kw={"height_ratios": [3.0, 0.22 * len(rows) + 0.3]},
    )
    for col, (measure, metric) in enumerate(panels):
        g = specs[(specs["metric"] == metric) & (specs["measure"] == measure)]
        name = MEASURE_NAMES.get(measure, measure)
        g = g.sort_values("pearson_r", kind="stable", na_position="last").reset_index(drop=True)
        x = np.arange(len(g))
        r = g["pearson_r"].to_numpy(float)
        p = g["mantel_p"].to_numpy(float)
        sig = np.isfinite(p) & (p < alpha)
        colors = np.where(
            sig & (r < 0), NEGATIVE_COLOR, np.where(sig & (r > 0), POSITIVE_COLOR, NEUTRAL_COLOR)
        )
        top, bottom = axes[0, col], axes[1, col]
        top.axhline(0, color="0.3", lw=0.9, zorder=1)
        top.vlines(
            x,
            g["feature_ci_low"].to_numpy(float),
            g["feature_ci_high"].to_numpy(float),
            colors=colors,
            lw=max(0.3, min(1.5, 150 / max(len(g), 1))),
            alpha=0.55,
            zorder=2,
        )
        top.scatter(x, r, c=colors, s=max(2.0, min(18.0, 1500 / max(len(g), 1))), zorder=3)
        if "main" in g:
            main = g["main"].fillna(False).to_numpy(bool)
            top.scatter(x[main], r[main], s=60, facecolors="none", edgecolors="black",
                        linewidths=1.2, zorder=4)  # fmt: skip
        top.set_ylim(-1.05, 1.05)
        top.set_ylabel(f"Pearson r of {name} with {metric}\n(95% feature-jackknife interval)")
        top.set_title(
            f"{name} vs {METRIC_NAMES[metric]}\n"
            f"{_share_text(summary, measure, metric, len(g), alpha)}",
            fontsize=9.5,
        )
        top.grid(axis="y", alpha=0.25, lw=0.6)
        for i, (choice, value) in enumerate(rows):
            used = (g[choice] == value).to_numpy()
            bottom.scatter(
                x[used],
                np.full(used.sum(), i),
                marker="|" if len(g) > 120 else "o",
                s=12 if len(g) > 120 else 6,
                c=colors[used],
                linewidths=0.8,
            )
        bottom.set_ylim(len(rows) - 0.5, -0.5)
        bottom.set_yticks(
            np.arange(len(rows)) if col == 0 else [],
            [_row_label(c, v, specs) for c, v in rows] if col == 0 else [],
            fontsize=8,
        )
        bottom.set_xlim(-1, len(g))
        bottom.set_xlabel("specifications, sorted by r")
        for i in range(1, len(rows)):
            if rows[i][0] != rows[i - 1][0]:
                bottom.axhline(i - 0.5, color="0.85", lw=0.6)
    handles = [
        Line2D([], [], color=NEGATIVE_COLOR, marker="o", lw=1, label="r < 0, Mantel p < α"),
        Line2D([], [], color=POSITIVE_COLOR, marker="o", lw=1, label="r > 0, Mantel p < α"),
        Line2D([], [], color=NEUTRAL_COLOR, marker="o", lw=1, label="not significant"),
    ]
    if "main" in specs and specs["main"].fillna(False).astype(bool).any():
        handles.append(
            Line2D(
                [],
                [],
                color="black",
                marker="o",
                markerfacecolor="none",
                lw=0,
                label="the main analysis",
            )  # fmt: skip
        )
    fig.legend(
        handles=handles, loc="outside lower center", ncols=len(handles), title=f"α = {alpha:g}"
    )
    fig.suptitle(title or "Specification curve: r(S, D) and r(S, M) over the analysis choices")
    return fig
