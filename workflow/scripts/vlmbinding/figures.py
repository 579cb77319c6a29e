"""Figures of the study: Grad-CAM grids, feature neurons, superposition against separability.

Every function takes tables or arrays and returns a matplotlib Figure; `save_figure` writes
it as PNG (and PDF) without dates or version strings, so a rerun gives identical bytes
(STYLE.md). Figures are built on `matplotlib.figure.Figure` directly, not through pyplot, so
no figure is left registered with pyplot and no GUI backend is needed.

What each figure shows is defined in METHOD.md: feature neurons and their entropy (section 3),
the superposition score S (section 4), the separability D and M (section 5), their
correlation (section 6) and Grad-CAM on text-image similarity (section 7).
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .vocab import KNOWN_COLORS, KNOWN_POSITIONS, KNOWN_SHAPES

# Sizes that stay readable when a figure is shrunk to a column of a report.
STYLE = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.interpolation": "nearest",
}

# PNG: matplotlib writes only a 'Software' text chunk (its version); no date.
PNG_METADATA = {"Software": None}
# PDF: matplotlib adds Creator and Producer (its version) and CreationDate (now).
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}

TRUE_COLOR = "#006400"  # dark green
SWAPPED_COLOR = "#8b0000"  # dark red
GRADCAM_CMAP = "inferno"
PATCH_CMAP = "RdYlBu_r"
KIND_WORDS = {"color": "colour", "shape": "shape", "position": "position"}

# Pair types of the superposition scatter: label, marker, face colour, edge colour.
PAIR_STYLES = {
    "shape–shape": ("shape–shape pairs", "s", "tab:blue", "tab:blue"),
    "colour–colour": ("colour–colour pairs", "^", "tab:orange", "tab:orange"),
    "shape–colour": ("shape–colour pairs", "D", "tab:purple", "tab:purple"),
    "position": ("pairs involving a position", "o", "none", "tab:gray"),
}
BINDING_STYLES = {
    "color": ("colour pairs (colours swapped)", "^", "tab:orange"),
    "shape": ("shape pairs (shapes swapped)", "s", "tab:blue"),
    "other": ("other pairs", "o", "tab:gray"),
}
ZERO_SHOT_NAMES = {
    "color": "colour",
    "shape": "shape",
    "position": "position",
    "triple": "colour + shape\n+ position",
}
METRIC_LABELS = {
    "D": "Cluster-centre distance D\n(Euclidean, embedding units)",
    "M": "Misclassification rate M\n(nearest centroid, fraction of images)",
}
METRIC_NAMES = {"D": "cluster-centre distance D", "M": "misclassification rate M"}
SPACE_NAMES = {"full": "full embedding space", "pca": "PCA space"}


def _styled(func):
    """Build the figure under STYLE without touching the caller's rcParams."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def save_figure(
    fig: Figure, png_path: str | Path, pdf_path: str | Path | None = None, dpi: int = 150
) -> None:
    """Write `fig` as PNG (and PDF when `pdf_path` is given), then close it.

    The files carry no date and no matplotlib version, so the same figure gives the same
    bytes on every run. Parent folders are created.
    """
    paths = [(Path(png_path), PNG_METADATA)]
    if pdf_path is not None:
        paths.append((Path(pdf_path), PDF_METADATA))
    try:
        for path, metadata in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            # No bbox_inches="tight": constrained layout already fits every label in, and
            # a tight box would cost a second draw.
            fig.savefig(path, dpi=dpi, metadata=metadata)
    finally:
        import matplotlib.pyplot as plt

        # A figure made with pyplot by a caller is unregistered; ours never were.
        plt.close(fig)


# ---------------------------------------------------------------------------- helpers


def _pair_key(f1, f2) -> list[tuple[str, str]]:
    """Order-free pair keys, so (a, b) in one table matches (b, a) in another."""
    return [tuple(sorted((str(a), str(b)))) for a, b in zip(f1, f2)]


def _num(x, fmt: str = ".2f") -> str:
    """A number for a label, 'n/a' when missing."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not np.isfinite(value) else format(value, fmt)


def _get(row, key, default=np.nan):
    """row[key] for a dict or a Series, `default` when absent."""
    if row is None:
        return default
    try:
        return row[key]
    except (KeyError, IndexError):
        return default


def _pearson(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan
    return float(np.corrcoef(x, y)[0, 1])


def _spearman(x, y) -> float:
    return _pearson(pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy())


def correlation_label(name: str, row, x=None, y=None) -> str:
    """'name: r = -0.42 [-0.58, -0.23], ρ = -0.40, n = 120' from a correlation row.

    `row` has pearson_r, pearson_ci_low, pearson_ci_high, spearman_rho and n_pairs (a
    dict or Series). Without a row, r, ρ and n are computed from x and y and no interval
    is shown.
    """
    if row is None:
        if x is None:
            return f"{name}: no correlation available"
        return (
            f"{name}: r = {_num(_pearson(x, y))}, ρ = {_num(_spearman(x, y))}, n = {len(x)}"
            " (no bootstrap interval given)"
        )
    ci = f"[{_num(_get(row, 'pearson_ci_low'))}, {_num(_get(row, 'pearson_ci_high'))}]"
    n = _get(row, "n_pairs", len(x) if x is not None else np.nan)
    n_text = _num(n, ".0f")
    return (
        f"{name}: r = {_num(_get(row, 'pearson_r'))} {ci}, "
        f"ρ = {_num(_get(row, 'spearman_rho'))}, n = {n_text}"
    )


def _fit_line(ax, x, y, **style):
    """Least-squares line over the range of x; nothing when it cannot be fitted."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return ax.plot([], [], **style)[0]
    slope, intercept = np.polyfit(x[ok], y[ok], 1)
    xs = np.array([x[ok].min(), x[ok].max()])
    return ax.plot(xs, slope * xs + intercept, **style)[0]


def _as_image(img) -> np.ndarray:
    """An HxWx3 (or HxWx4, or HxW) image from an array or a PIL image."""
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"an image must be HxW or HxWxC, got shape {arr.shape}")
    return arr


def _upsample_nearest(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour upsampling of a [rows, cols] map to [height, width]."""
    grid = np.asarray(grid, dtype=float)
    rows = np.minimum((np.arange(height) * grid.shape[0]) // height, grid.shape[0] - 1)
    cols = np.minimum((np.arange(width) * grid.shape[1]) // width, grid.shape[1] - 1)
    return grid[np.ix_(rows, cols)]


def _bare(ax) -> None:
    """An image panel: no ticks, a thin grey frame (the images have white backgrounds)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("0.6")
        spine.set_linewidth(0.8)


def _wrap_note(text: str, width: int = 26) -> str:
    """A short note under a panel, broken at ' / ' (or words) when it is too wide."""
    if len(text) <= width:
        return text
    parts = [p.strip() for p in text.split(" / ")] if " / " in text else [text]
    return "\n".join(textwrap.fill(p, width) for p in parts)


def _infer_kind(feature: str) -> str:
    if feature in KNOWN_COLORS:
        return "color"
    if feature in KNOWN_SHAPES:
        return "shape"
    if feature in KNOWN_POSITIONS:
        return "position"
    return "other"


def _label_offsets() -> list[tuple[float, float, str, str]]:
    """Candidate label offsets (points) around a point, nearest first, with alignments."""
    out = []
    for radius in (12, 20, 30, 42):
        for angle in (45, 135, -45, -135, 90, -90, 0, 180):
            dx = radius * np.cos(np.radians(angle))
            dy = radius * np.sin(np.radians(angle))
            ha = "left" if dx > 1 else "right" if dx < -1 else "center"
            va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
            out.append((round(dx, 1), round(dy, 1), ha, va))
    return out


def _place_labels(ax, xs, ys, texts, fontsize=8.5, obstacles=(), draw=True) -> list:
    """Name points with labels on leader lines, avoiding each other, points and edges.

    Greedy: each label takes the candidate offset with the least overlap with labels
    already placed, `obstacles` (artists such as a legend), other points and the outside
    of the axes. Offsets are in points, so the choice does not depend on the saving dpi.
    The layout must be final: `draw` runs it (pass False when the caller just did).
    """
    if draw:
        ax.figure.draw_without_rendering()
    offsets = [np.asarray(c.get_offsets(), dtype=float).reshape(-1, 2) for c in ax.collections]
    data_points = np.concatenate(offsets) if offsets else np.empty((0, 2))
    all_points = ax.transData.transform(data_points) if len(data_points) else data_points
    axes_box = ax.get_window_extent()
    placed = [a.get_window_extent() for a in obstacles if a is not None]
    artists = []
    for x, y, text in zip(xs, ys, texts):
        best = None
        for dx, dy, ha, va in _label_offsets():
            ann = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=fontsize,
                zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                arrowprops={
                    "arrowstyle": "-",
                    "color": "0.25",
                    "lw": 0.7,
                    "shrinkA": 1,
                    "shrinkB": 4,
                },
            )
            box = ann.get_window_extent()
            overlap = sum(_overlap_area(box, other) for other in placed)
            outside = box.width * box.height - _overlap_area(box, axes_box)
            covered = (
                (all_points[:, 0] > box.x0 - 3)
                & (all_points[:, 0] < box.x1 + 3)
                & (all_points[:, 1] > box.y0 - 3)
                & (all_points[:, 1] < box.y1 + 3)
            ).sum()
            clash = overlap + outside + 300 * covered
            cost = clash + 4 * np.hypot(dx, dy)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann, box)
            else:
                ann.remove()
            if clash == 0:  # candidates come nearest first: the first clear one is best
                break
        best[1].set_in_layout(False)
        placed.append(best[2])
        artists.append(best[1])
    return artists


def _overlap_area(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


# ---------------------------------------------------------------------------- figures


@_styled
def gradcam_grid(
    images: Sequence,
    maps,
    prompts: Sequence[Sequence[str]],
    kinds: Sequence[Sequence[str]],
    row_titles: Sequence[str] | None = None,
    shares: Sequence[Sequence[str]] | None = None,
    alpha: float = 0.5,
    title: str | None = None,
) -> Figure:
    """Grad-CAM maps of each image for each of its prompts (METHOD.md section 7).

    `images`: n_img HxWx3 arrays (or PIL images). `maps`: [n_img, n_prompt, H, W] in [0, 1]
    at the image size, or a list per image of its prompts' maps; row i uses the first
    len(prompts[i]) maps. `prompts`, `kinds` (and optional `shares`, a short note per
    panel) are lists of lists, one list per image; kinds 'true' and 'swapped' colour the
    titles dark green and dark red. Rows with fewer prompts end in empty panels.
    """
    n_rows = len(images)
    if not (len(prompts) == len(kinds) == n_rows):
        raise ValueError(
            f"{n_rows} images but {len(prompts)} prompt lists and {len(kinds)} kind lists"
        )
    for i, (p, k) in enumerate(zip(prompts, kinds)):
        if len(p) != len(k):
            raise ValueError(f"row {i}: {len(p)} prompts but {len(k)} kinds")
        if len(maps[i]) < len(p):
            raise ValueError(f"row {i}: {len(p)} prompts but {len(maps[i])} maps")
    if shares is not None and len(shares) != n_rows:
        raise ValueError(f"{n_rows} images but {len(shares)} share lists")
    n_cols = 1 + max((len(p) for p in prompts), default=0)
    has_shares = shares is not None and any(len(s) for s in shares)
    fig = Figure(
        figsize=(1.95 * n_cols + 0.9, (2.55 if has_shares else 2.3) * n_rows + 0.5),
        layout="constrained",
    )
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    norm = Normalize(0.0, 1.0)
    for i in range(n_rows):
        image = _as_image(images[i])
        ax = axes[i, 0]
        ax.imshow(image)
        _bare(ax)
        ax.set_title("input image", fontsize=9.5)
        label = row_titles[i] if row_titles is not None else f"image {i + 1}"
        ax.set_ylabel(label, fontsize=10)
        for j in range(1, n_cols):
            ax = axes[i, j]
            _bare(ax)
            if j - 1 >= len(prompts[i]):
                ax.set_visible(False)
                continue
            heat = np.asarray(maps[i][j - 1], dtype=float)
            ax.imshow(image)
            ax.imshow(
                heat,
                cmap=GRADCAM_CMAP,
                norm=norm,
                alpha=alpha,
                extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5),
                interpolation="bilinear",
            )
            kind = str(kinds[i][j - 1])
            color = {"true": TRUE_COLOR, "swapped": SWAPPED_COLOR}.get(kind, "black")
            prompt = textwrap.shorten(str(prompts[i][j - 1]), 30, placeholder="…")
            ax.set_title(f"“{prompt}”\n{kind} binding", color=color, fontsize=9.5)
            if has_shares and j - 1 < len(shares[i]):
                ax.set_xlabel(_wrap_note(str(shares[i][j - 1])), fontsize=8)
    cbar = fig.colorbar(
        ScalarMappable(norm=norm, cmap=GRADCAM_CMAP),
        ax=axes.ravel().tolist(),
        shrink=min(0.9, 0.35 + 0.15 * n_rows),
        aspect=25,
    )
    cbar.set_label("Grad-CAM (normalised)")
    fig.suptitle(
        title
        or "Grad-CAM of image-text similarity: where the model looks for each prompt\n"
        "(true binding = an object of the image; swapped = colour of one object, shape "
        "of another)",
        fontsize=11,
    )
    return fig


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
    and pairs without positions; their legend entries quote Pearson r with its bootstrap
    interval and Spearman rho from `correlation` (rows metric, space, subset 'all' and
    'no_position'). The `label_extremes` pairs with the highest and the lowest S are named.
    """
    if metric not in METRIC_LABELS:
        raise ValueError(f"metric={metric!r}; use one of {list(METRIC_LABELS)}")
    sep = separability[separability["space"].eq(space)] if "space" in separability else separability
    if sep.empty:
        raise ValueError(f"no separability rows for space {space!r}")
    keys = _pair_key(superposition["f1"], superposition["f2"])
    score = dict(zip(keys, superposition["S"]))
    # Pairs are named in the superposition table's order (feature order in the workflow).
    named = dict(zip(keys, zip(superposition["f1"].astype(str), superposition["f2"].astype(str))))
    sep_keys = _pair_key(sep["f1"], sep["f2"])
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
    type_handles = []
    for key, (label, marker, face, edge) in PAIR_STYLES.items():
        part = data[data["type"].eq(key)]
        if part.empty:
            continue
        ax.scatter(
            part["S"],
            part["y"],
            marker=marker,
            facecolors=face,
            edgecolors=edge,
            s=34,
            linewidths=1.0,
            alpha=0.85,
            zorder=3,
        )
        type_handles.append(
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
    line_all = _fit_line(ax, data["S"], data["y"], color="0.45", ls="--", lw=1.6, zorder=2)
    line_np = _fit_line(ax, no_pos["S"], no_pos["y"], color="black", ls="-", lw=1.8, zorder=2)
    line_all.set_label(
        correlation_label(
            "all pairs", _correlation_row(correlation, metric, space, "all"), data["S"], data["y"]
        )
    )
    line_np.set_label(
        correlation_label(
            "pairs without positions",
            _correlation_row(correlation, metric, space, "no_position"),
            no_pos["S"],
            no_pos["y"],
        )
    )
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
        title="least-squares lines: Pearson r [95% bootstrap interval], Spearman ρ, pairs",
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
    (pearson_r, pearson_ci_low, pearson_ci_high, spearman_rho, n_pairs) is quoted in the
    legend; without it r and rho are computed from the points. `kinds` maps features to
    'color' | 'shape'; by default the known colour and shape names decide.
    """
    kinds = dict(kinds or {})
    score = dict(zip(_pair_key(superposition["f1"], superposition["f2"]), superposition["S"]))
    data = per_pair.copy()
    data["S"] = [score.get(k, np.nan) for k in _pair_key(data["f1"], data["f2"])]
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
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return fig


def _wilson(p: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of a proportion p out of n trials (NaN n: no interval)."""
    p, n = np.asarray(p, float), np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    ok = np.isfinite(half) & (n > 0)
    return np.where(ok, centre - half, p), np.where(ok, centre + half, p)


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


@_styled
def model_comparison(summary: pd.DataFrame, title: str | None = None) -> Figure:
    """Per model: correlation of S with D and with M (with intervals), binding accuracy.

    `summary` has one row per model: model, r_D, r_D_low, r_D_high, r_M, r_M_low, r_M_high,
    binding_accuracy (NaN where not run), median_entropy. The binding panel is left out
    when no model has a binding accuracy.
    """
    if summary.empty:
        raise ValueError("no models to compare")
    n = len(summary)
    binding = (
        summary["binding_accuracy"].astype(float)
        if "binding_accuracy" in summary
        else pd.Series(np.nan, index=summary.index)
    )
    with_binding = bool(np.isfinite(binding).any())
    n_panels = 3 if with_binding else 2
    fig = Figure(figsize=(3.3 * n_panels + 1.6, 0.55 * n + 2.4))
    # Extra room between panels: the 1.0 of one x axis and the -1.0 of the next meet.
    fig.set_layout_engine("constrained", wspace=0.06)
    axes = fig.subplots(1, n_panels, sharey=True)
    y = np.arange(n)[::-1]
    labels = []
    for _, row in summary.iterrows():
        med = row.get("median_entropy", np.nan)
        sub = f"\nmedian H = {_num(med)} bits" if pd.notna(med) else ""
        labels.append(f"{row['model']}{sub}")
    for ax, metric, color in zip(axes, ("D", "M"), ("tab:blue", "tab:orange")):
        r = summary[f"r_{metric}"].to_numpy(float)
        low = summary.get(f"r_{metric}_low", pd.Series(np.nan, index=summary.index))
        high = summary.get(f"r_{metric}_high", pd.Series(np.nan, index=summary.index))
        low, high = low.to_numpy(float), high.to_numpy(float)
        err = np.array([np.nan_to_num(r - low), np.nan_to_num(high - r)]).clip(min=0)
        ax.axvline(0, color="0.4", lw=1, zorder=1)
        ax.errorbar(r, y, xerr=err, fmt="o", color=color, capsize=4, markersize=7, zorder=3)
        for yi, ri in zip(y, r):
            if not np.isfinite(ri):
                # On a white box, so that the zero line does not run through the words.
                ax.text(
                    0,
                    yi,
                    "not available",
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    color="0.3",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.7"},
                    zorder=4,
                )
                continue
            ax.annotate(
                _num(ri),
                (ri, yi),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8.5,
            )
        ax.set_xlim(-1, 1)
        ax.set_xlabel(f"Pearson r of S with {metric}\n(95% bootstrap interval)")
        ax.set_title(f"S vs {METRIC_NAMES[metric]}")
        ax.grid(axis="x", alpha=0.25, lw=0.6)
    axes[0].set_yticks(y, labels)
    axes[0].set_ylim(-0.7, n - 0.3)
    if with_binding:
        ax = axes[2]
        acc = binding.to_numpy(float)
        ax.barh(y, np.nan_to_num(acc), height=0.55, color="tab:green", zorder=2)
        ax.axvline(0.5, color="black", ls="--", lw=1.4, label="chance (0.5)", zorder=3)
        for yi, a in zip(y, acc):
            text = f"{a:.2f}" if np.isfinite(a) else "not run"
            ax.text(
                (a if np.isfinite(a) else 0) + 0.02, yi, text, va="center", ha="left", fontsize=9
            )
        ax.set_xlim(0, 1.12)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_xlabel("Swapped-caption binding accuracy\n(fraction of trials)")
        ax.set_title("Attribute binding")
        ax.legend(loc="lower right", fontsize=8.5, framealpha=0.9)
    fig.suptitle(
        title or "Models compared: does superposition predict poor separability and binding?"
    )
    return fig
