"""Figures 5-6: S against D and M, binding accuracy against S (METHOD.md 4-6)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from vlmbinding.analysis.correlation import attach_scores, pair_key
from vlmbinding.report.figures.style import (
    BINDING_STYLES,
    METRIC_LABELS,
    METRIC_NAMES,
    PAIR_STYLES,
    SPACE_NAMES,
    _fit_line,
    _infer_kind,
    _place_labels,
    _styled,
    _wilson,
    correlation_label,
)


def _pair_type(f1: str, f2: str, kinds: Mapping[str, str]) -> str:
    k1, k2 = kinds.get(f1, _infer_kind(f1)), kinds.get(f2, _infer_kind(f2))
    if "position" in (k1, k2):
        return "position"
    if k1 == k2 == "shape":
        return "shape–shape"
    if k1 == k2 == "color":
        return "colour–colour"
    return "shape–colour"


def _over_neurons(superposition: pd.DataFrame) -> str:
    """' over 1,000 feature neurons' from the table's n_neurons (when it has one)."""
    if "n_neurons" in superposition and len(superposition):
        return f" over {int(superposition['n_neurons'].iloc[0]):,} feature neurons"
    return " over feature neurons"


def _correlation_row(correlation, metric: str, space: str, subset: str):
    if correlation is None or len(correlation) == 0:
        return None
    hit = correlation[
        correlation["metric"].eq(metric)
        & correlation["space"].eq(space)
        & correlation["subset"].eq(subset)
    ]
    return None if hit.empty else hit.iloc[0]


def _pair_panel(ax, data: pd.DataFrame, y: str, correlation, metric: str, space: str):
    """Feature pairs on `ax`: data["S"] against data[y], one marker style per pair type
    (data["type"], PAIR_STYLES), and two least-squares lines, all pairs (dashed grey) and
    pairs without positions (black), labelled by `correlation_label` from the rows of
    `correlation` for `metric`, `space` and subset 'all' / 'no_position' (computed from the
    points when there is no row). Returns (pair-type legend handles, [line all, line
    without positions])."""
    handles = []
    for key, (label, marker, face, edge) in PAIR_STYLES.items():
        part = data[data["type"].eq(key)]
        if part.empty:
            continue
        ax.scatter(
            part["S"],
            part[y],
            marker=marker,
            facecolors=face,
            edgecolors=edge,
            s=34,
            linewidths=1.0,
            alpha=0.85,
            zorder=3,
        )
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker=marker,
                markerfacecolor=face,
                markeredgecolor=edge,
                markersize=6.5,
                label=f"{label} ({len(part)})",
            )
        )
    no_pos = data[data["type"].ne("position")]
    lines = []
    for name, subset, part, style in (
        ("all pairs", "all", data, {"color": "0.45", "ls": "--", "lw": 1.6}),
        ("pairs without positions", "no_position", no_pos, {"color": "black", "lw": 1.8}),
    ):
        line = _fit_line(ax, part["S"], part[y], zorder=2, **style)
        row = _correlation_row(correlation, metric, space, subset)
        line.set_label(correlation_label(name, row, part["S"], part[y]))
        lines.append(line)
    return handles, lines


@_styled
def superposition_scatter(
    superposition: pd.DataFrame,
    separability: pd.DataFrame,
    correlation: pd.DataFrame | None,
    metric: str,
    kinds: Mapping[str, str],
    space: str = "full",
    label_extremes: int = 3,
    title: str | None = None,
) -> Figure:
    """S against D or M, one point per feature pair (METHOD.md sections 4-6).

    Pairs are joined on (f1, f2) in either order; `separability` rows of `space` are used.
    Pairs involving a position are drawn hollow grey. Two least-squares lines: all pairs,
    and pairs without positions; their legend entries lead with Pearson r, its
    feature-bootstrap interval and the Mantel p, then the pair-bootstrap interval and
    Spearman rho labelled conditional, from `correlation` (rows metric, space, subset
    'all' and 'no_position'). The `label_extremes` pairs with the highest and the
    lowest S are named.
    """
    if metric not in METRIC_LABELS:
        raise ValueError(f"metric={metric!r}; use one of {list(METRIC_LABELS)}")
    sep = separability[separability["space"].eq(space)] if "space" in separability else separability
    if sep.empty:
        raise ValueError(f"no separability rows for space {space!r}")
    keys = pair_key(superposition["f1"], superposition["f2"])
    score = dict(zip(keys, superposition["S"]))
    # Pairs are named in the superposition table's order (feature order in the workflow).
    named = dict(zip(keys, zip(superposition["f1"].astype(str), superposition["f2"].astype(str))))
    sep_keys = pair_key(sep["f1"], sep["f2"])
    sep_names = list(zip(sep["f1"].astype(str), sep["f2"].astype(str)))
    names = [named.get(k, own) for k, own in zip(sep_keys, sep_names)]
    data = pd.DataFrame(
        {
            "f1": [a for a, _ in names],
            "f2": [b for _, b in names],
            "S": [score.get(k, np.nan) for k in sep_keys],
            "y": sep[metric].astype(float).to_numpy(),
        }
    )
    data = data[np.isfinite(data["S"].astype(float)) & np.isfinite(data["y"])]
    data = data.reset_index(drop=True)
    data["type"] = [_pair_type(a, b, kinds) for a, b in zip(data["f1"], data["f2"])]

    fig = Figure(figsize=(7.6, 6.4), layout="constrained")
    ax = fig.subplots()
    type_handles, (line_all, line_np) = _pair_panel(ax, data, "y", correlation, metric, space)
    ax.set_xlabel(f"Superposition score S (sum of pair ratios{_over_neurons(superposition)})")
    ax.set_ylabel(METRIC_LABELS[metric])
    ax.set_title(
        title
        or f"Superposition score S against {METRIC_NAMES[metric]}\n"
        f"(one point per feature pair; {SPACE_NAMES.get(space, space)})"
    )
    ax.grid(alpha=0.25, lw=0.6)
    ax.margins(0.08)
    legend = ax.legend(handles=type_handles, title="feature pair", loc="best", framealpha=0.85)
    fig.legend(
        handles=[line_all, line_np],
        loc="outside lower center",
        title="least-squares lines: Pearson r [95% interval, features resampled], "
        "Mantel p (features permuted), pairs",
        frameon=False,
    )
    if label_extremes > 0 and len(data):
        order = data.sort_values("S", kind="stable")
        k = min(label_extremes, len(data))
        picked = pd.concat([order.tail(k)[::-1], order.head(k)]).drop_duplicates()
        # Fix the legend where 'best' put it, so that it does not move away from the
        # labels placed around it below (it would, since 'best' avoids texts too).
        fig.draw_without_rendering()
        corner = ax.transAxes.inverted().transform(legend.get_window_extent().p0)
        legend.set_loc(tuple(float(v) for v in corner))
        # Ring the named points so that each label's point stands out.
        ax.scatter(
            picked["S"],
            picked["y"],
            s=110,
            facecolors="none",
            edgecolors="black",
            linewidths=1.0,
            zorder=4,
        )
        _place_labels(
            ax,
            picked["S"].to_numpy(float),
            picked["y"].to_numpy(float),
            [f"{a}–{b}" for a, b in zip(picked["f1"], picked["f2"])],
            obstacles=[legend],
            draw=False,
        )
    return fig


@_styled
def binding_scatter(
    per_pair: pd.DataFrame,
    superposition: pd.DataFrame,
    correlation_row=None,
    kinds: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """Swapped-caption binding accuracy of each feature pair against its S.

    `per_pair` has f1, f2, n, accuracy (a colour pair when the trial swapped colours, a
    shape pair otherwise); pairs are joined with `superposition` on (f1, f2) in either
    order. Error bars are 95% Wilson intervals of each pair's accuracy. `correlation_row`
    (a row of the binding correlation table) is quoted in the legend by
    `correlation_label`, r with its feature-bootstrap interval and Mantel p first; without
    it r and rho are computed from the points. `kinds` maps features to
    'color' | 'shape'; by default the known colour and shape names decide.
    """
    kinds = dict(kinds or {})
    data = attach_scores(superposition, per_pair)
    data = data[np.isfinite(data["S"].astype(float)) & np.isfinite(data["accuracy"].astype(float))]

    def pair_kind(a, b):
        ka, kb = kinds.get(a, _infer_kind(a)), kinds.get(b, _infer_kind(b))
        return ka if ka == kb and ka in ("color", "shape") else "other"

    data = data.assign(kind=[pair_kind(a, b) for a, b in zip(data["f1"], data["f2"])])
    fig = Figure(figsize=(7.2, 5.6), layout="constrained")
    ax = fig.subplots()
    ax.axhline(0.5, color="0.35", ls=":", lw=1.4, label="chance (0.5)", zorder=1)
    for key, (label, marker, color) in BINDING_STYLES.items():
        part = data[data["kind"].eq(key)]
        if part.empty:
            continue
        p = part["accuracy"].to_numpy(float)
        n = part["n"].to_numpy(float) if "n" in part else np.full(len(part), np.nan)
        low, high = _wilson(p, n)
        ax.errorbar(
            part["S"],
            p,
            yerr=[np.clip(p - low, 0, None), np.clip(high - p, 0, None)],
            fmt=marker,
            color=color,
            ecolor=color,
            elinewidth=0.7,
            alpha=0.85,
            markersize=6,
            capsize=0,
            label=f"{label} ({len(part)})",
            zorder=3,
        )
    fit = _fit_line(ax, data["S"], data["accuracy"], color="black", lw=1.6, zorder=2)
    fit.set_label(
        correlation_label("least-squares line", correlation_row, data["S"], data["accuracy"])
    )
    ax.set_ylim(0, 1.02)
    ax.margins(x=0.08)
    ax.set_xlabel(f"Superposition score S (sum of pair ratios{_over_neurons(superposition)})")
    ax.set_ylabel("Swapped-caption binding accuracy\n(fraction of trials, 95% Wilson interval)")
    ax.set_title(
        title
        or "Binding accuracy against superposition, one point per feature pair\n"
        "(true caption scored above the caption with two objects' attributes swapped)"
    )
    ax.grid(alpha=0.25, lw=0.6)
    fig.legend(
        loc="outside lower center",
        title="line: Pearson r [95% interval, features resampled within kind], "
        "Mantel p (features permuted within kind), pairs",
        frameon=False,
    )
    return fig
