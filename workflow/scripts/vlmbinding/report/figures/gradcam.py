"""Figure 1: Grad-CAM binding maps, rows images and columns prompts (METHOD.md 7)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from vlmbinding.report.figures.style import (
    GRADCAM_CMAP,
    SWAPPED_COLOR,
    TRUE_COLOR,
    _as_image,
    _bare,
    _styled,
    _wrap_note,
)


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
