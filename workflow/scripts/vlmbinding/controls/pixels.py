"""The pixel-space baseline of separability: D and M on the model's inputs.

How much of an embedding's separability is already in the pixels? The baseline takes
exactly the tensors the activation rule feeds the model (the same image loading and the
same preprocessing, `extraction.images.load_images` with `choose_preprocess`),
flattens each to one vector, and measures D and M of every pair on them with the very
function that measures the embeddings (`separability.separability_table`, full space
and per-pair PCA).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis.separability import separability_table
from vlmbinding.extraction.images import choose_preprocess, load_images

log = logging.getLogger(__name__)


def pixel_tensors(paths: Sequence[str], transform, batch_size: int = 64) -> np.ndarray:
    """[image, channel*height*width] float32: each image as the model receives it, flattened."""
    chunks = [
        load_images(list(paths[s : s + batch_size]), transform).flatten(1).numpy()
        for s in range(0, len(paths), batch_size)
    ]
    return np.concatenate(chunks).astype(np.float32, copy=False)


def model_inputs(loaded, paths: Sequence[str], mode: str = "model", batch_size: int = 64):
    """The flattened input tensors of a loaded model under `activations.preprocess` = mode."""
    return pixel_tensors(paths, choose_preprocess(loaded, mode), batch_size)


def pixel_separability(
    pixels: np.ndarray,
    presence: np.ndarray,
    features: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    pca_variance: float = 0.9,
) -> pd.DataFrame:
    """D and M of every pair on flattened input tensors: `separability_table` on pixels.

    The images are first given coordinates in the span of their own vectors
    (`row_space_coordinates`), an isometry: every distance, centroid and per-pair PCA is
    the same as on the raw pixels (up to rounding), but each of the 120 per-pair PCAs
    works on at most n_images columns instead of 3 x 224 x 224.
    """
    log.info(f"pixel separability of {len(pairs)} pairs on {pixels.shape[1]} input values")
    coords = row_space_coordinates(pixels)
    return separability_table(coords, presence, features, pairs, pca_variance)


def row_space_coordinates(x: np.ndarray) -> np.ndarray:
    """Rows of x [n, d] in an orthonormal basis of their span: [n, min(n, d)], same geometry.

    With x = U S V^T (thin SVD), x V = U S: the rows keep every inner product and distance.
    Rows are returned unchanged when d <= n (nothing to gain).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] <= x.shape[0]:
        return x
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    return u * s
