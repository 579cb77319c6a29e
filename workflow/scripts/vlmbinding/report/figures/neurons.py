"""Figures 2-4: neuron entropy, the feature-neuron gallery, patch activation maps (METHOD.md 3)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from vlmbinding.report.figures.style import (
    PATCH_CMAP,
    _as_image,
    _bare,
    _styled,
    _upsample_nearest,
)


@_styled
def entropy_histogram(
    entropy,
    cut: float,
    n_selected: int,
    max_bits: float | None = None,
    bins: int = 60,
    log_y: bool = False,
    title: str | None = None,
) -> Figure:
    """Histogram of the neurons' affinity entropies with the selection cut (METHOD.md 3-4).

    `cut` is the entropy of the n_selected-th lowest neuron; neurons left of it are the
    feature neurons. `max_bits` (log2 of the number of features) marks the largest
    possible entropy. NaN entropies (neurons without any feature) are left out and counted.
    """
    values = np.asarray(entropy, dtype=float)
    finite = values[np.isfinite(values)]
    n_nan = len(values) - len(finite)
    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.subplots()
    hi = max(finite.max() if len(finite) else 1.0, max_bits or 0.0)
    lo = min(finite.min() if len(finite) else 0.0, cut)
    edges = np.linspace(lo, hi, bins + 1) if hi > lo else bins
    ax.hist(
        finite,
        bins=edges,
        color="tab:blue",
        edgecolor="white",
        linewidth=0.4,
        label=f"analysed neurons (n = {len(finite):,})",
    )
    span = (hi - lo) if hi > lo else 1.0
    left = lo - 0.03 * span
    ax.axvspan(left, cut, color="tab:orange", alpha=0.18, lw=0, zorder=0)
    ax.axvline(
        cut,
        color="tab:orange",
        lw=2,
        label=f"{n_selected:,} lowest-entropy neurons selected (H ≤ {cut:.2f} bits)",
    )
    if max_bits is not None:
        ax.axvline(
            max_bits,
            color="0.3",
            ls=":",
            lw=1.5,
            label=f"largest possible entropy ({max_bits:.2f} bits)",
        )
    ax.set_xlim(left, hi + 0.03 * span)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("Entropy of feature affinities (bits)")
    ax.set_ylabel("Neurons" + (" (log scale)" if log_y else ""))
    note = f"; {n_nan:,} neurons without any feature left out" if n_nan else ""
    ax.set_title(
        title
        or "Feature selectivity of MLP neurons: entropy of each neuron's feature affinities\n"
        f"(low entropy = selective 'feature neuron'{note})"
    )
    # Below the axes: inside, the legend would cross the cut line wherever the cut falls.
    fig.legend(loc="outside lower center", ncols=1, frameon=False)
    return fig


@_styled
def feature_neuron_gallery(
    rows: pd.DataFrame,
    images_by_id: Mapping,
    features: Sequence[str],
    n_images: int = 5,
    n_bars: int = 6,
    title: str | None = None,
) -> Figure:
    """Top images of a few neurons, one row per neuron, with their strongest affinities.

    `rows` has layer, unit, the affinity columns `features`, entropy and top_images (image
    ids joined by ',', best first); `images_by_id` maps an id to an HxWx3 image. Each row
    shows the neuron's largest affinities as bars and its first `n_images` top images.
    """
    features = list(features)
    n = len(rows)
    if n == 0:
        raise ValueError("no neurons to show")
    with_bars = n_bars > 0
    fig = Figure(figsize=(1.5 * n_images + (2.2 if with_bars else 0.3), 2.3 * n + 0.5))
    fig.set_layout_engine("constrained", h_pad=0.06, hspace=0.04)
    subfigs = np.atleast_1d(fig.subfigures(n, 1))
    for subfig, (_, row) in zip(subfigs, rows.iterrows()):
        aff = pd.Series({f: float(row[f]) for f in features}).sort_values(
            ascending=False, kind="stable"
        )
        top3 = ", ".join(f"{f} {a:.2f}" for f, a in aff.head(3).items())
        subfig.suptitle(
            f"L{int(row['layer'])} U{int(row['unit'])}  H={float(row['entropy']):.2f} bits  "
            f"top: {top3}",
            fontsize=10.5,
            x=0.01,
            ha="left",
            fontweight="bold",
        )
        ratios = ([1.5] if with_bars else []) + [1.0] * n_images
        axes = subfig.subplots(1, len(ratios), width_ratios=ratios, squeeze=False)[0]
        if with_bars:
            ax = axes[0]
            shown = aff.head(n_bars)[::-1]
            ax.barh(range(len(shown)), shown.to_numpy(), color="tab:blue", height=0.75)
            # Names written at the bars rather than as tick labels, so that every row's bar
            # panel has the same width and the panels line up.
            for yi, (name, a) in enumerate(shown.items()):
                inside = a > 0.55
                ax.text(
                    a - 0.02 if inside else a + 0.02,
                    yi,
                    f"{name} {a:.2f}",
                    ha="right" if inside else "left",
                    va="center",
                    fontsize=8,
                    color="white" if inside else "black",
                )
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            ax.set_xlim(0, 1)
            ax.set_xticks([0, 0.5, 1])
            ax.tick_params(axis="x", labelsize=8)
            ax.set_xlabel("affinity (share of\ntop-k images)", fontsize=8.5)
            axes = axes[1:]
        ids = [s for s in str(row["top_images"]).split(",") if s]
        for r, ax in enumerate(axes):
            _bare(ax)
            if r >= len(ids):
                ax.set_visible(False)
                continue
            image = images_by_id.get(ids[r])
            if image is None:
                ax.text(0.5, 0.5, "image\nnot found", ha="center", va="center", fontsize=8)
            else:
                ax.imshow(_as_image(image))
            ax.set_title(f"top image {r + 1}", fontsize=8.5)
    fig.suptitle(
        title
        or "Feature neurons: each neuron's strongest feature affinities and its "
        "top-activating images",
        fontsize=11.5,
    )
    return fig


@_styled
def patch_activation_maps(
    images: Sequence,
    maps: Sequence,
    titles: Sequence[str],
    neuron_label: str,
    alpha: float = 0.6,
    interpolation: str = "nearest",
    title: str | None = None,
) -> Figure:
    """One neuron's activation on each image patch, on a scale shared by all panels.

    `images`: HxWx3 arrays; `maps`: [grid, grid] per-patch activations of the neuron for
    each image (METHOD.md section 2: CLS dropped, patches in image order), upsampled here
    to the image size (`interpolation` 'nearest' keeps the patches visible, or 'bilinear').
    """
    if not (len(images) == len(maps) == len(titles)):
        raise ValueError(f"{len(images)} images, {len(maps)} maps and {len(titles)} titles")
    if len(images) == 0:
        raise ValueError("no images to show")
    arrays = [np.asarray(m, dtype=float) for m in maps]
    vmin = float(min(np.nanmin(m) for m in arrays))
    vmax = float(max(np.nanmax(m) for m in arrays))
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    norm = Normalize(vmin, vmax)
    n = len(images)
    fig = Figure(figsize=(2.3 * n + 1.3, 3.05), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    for ax, image, grid, panel_title in zip(axes, images, arrays, titles):
        image = _as_image(image)
        height, width = image.shape[:2]
        ax.imshow(image)
        extent = (-0.5, width - 0.5, height - 0.5, -0.5)
        if interpolation == "nearest":
            up = _upsample_nearest(grid, height, width)
            ax.imshow(up, cmap=PATCH_CMAP, norm=norm, alpha=alpha, extent=extent)
        else:
            ax.imshow(
                grid,
                cmap=PATCH_CMAP,
                norm=norm,
                alpha=alpha,
                extent=extent,
                interpolation=interpolation,
            )
        _bare(ax)
        ax.set_title(textwrap.fill(str(panel_title), 24), fontsize=9.5)
        ax.set_xlabel(f"patch mean {np.nanmean(grid):.3g}, max {np.nanmax(grid):.3g}", fontsize=8.5)
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=PATCH_CMAP), ax=list(axes), shrink=0.85)
    cbar.set_label(f"activation of {neuron_label}")
    fig.suptitle(
        title or f"Patch-wise activation of {neuron_label} (one colour scale for all panels)",
        fontsize=11,
    )
    return fig
