"""Shared look of every figure: sizes, colours, labels, saving without dates, small helpers."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vlmbinding.data.vocab import KNOWN_COLORS, KNOWN_POSITIONS, KNOWN_SHAPES

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
    """A legend entry that leads with the dependence-aware numbers of a correlation row.

    'name: r = -0.42 [-0.70, -0.05], Mantel p = 0.031, n = 120' (the interval resamples
    features, the Mantel test permutes them), then on a second line the pair-level numbers
    labelled 'conditional (pairs treated as independent): [-0.58, -0.23], ρ = -0.40'.
    `row` (a dict or Series) has pearson_r, feature_ci_low/high, mantel_p,
    pearson_ci_low/high, spearman_rho and n_pairs; a missing value shows as n/a. Without a
    row, r, ρ and n are computed from x and y and no interval is shown.
    """
    if row is None:
        if x is None:
            return f"{name}: no correlation available"
        return (
            f"{name}: r = {_num(_pearson(x, y))}, ρ = {_num(_spearman(x, y))}, n = {len(x)}"
            " (no bootstrap interval given)"
        )
    feature = f"[{_num(_get(row, 'feature_ci_low'))}, {_num(_get(row, 'feature_ci_high'))}]"
    pair = f"[{_num(_get(row, 'pearson_ci_low'))}, {_num(_get(row, 'pearson_ci_high'))}]"
    n = _get(row, "n_pairs", len(x) if x is not None else np.nan)
    return (
        f"{name}: r = {_num(_get(row, 'pearson_r'))} {feature}, "
        f"Mantel p = {_num(_get(row, 'mantel_p'), '.3f')}, n = {_num(n, '.0f')}\n"
        f"    conditional (pairs treated as independent): {pair}, "
        f"ρ = {_num(_get(row, 'spearman_rho'))}"
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


def _wilson(p: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of a proportion p out of n trials (NaN n: no interval)."""
    p, n = np.asarray(p, float), np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    ok = np.isfinite(half) & (n > 0)
    return np.where(ok, centre - half, p), np.where(ok, centre + half, p)
