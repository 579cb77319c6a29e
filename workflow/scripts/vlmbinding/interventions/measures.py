"""What the intervention stage measures on a re-embedded image set: D and M of a pair in the full
space or a PCA, and binding accuracy on the swapped-caption trials."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vlmbinding.analysis.separability import centroid_separability, pca_project
from vlmbinding.interventions import selection as iv


@dataclass
class Trials:
    """Swapped-caption trials as arrays: image row, unit caption embeddings, features."""

    image_row: np.ndarray  # [trial] row into the images
    true_emb: np.ndarray  # [trial, dim], unit length
    swapped_emb: np.ndarray  # [trial, dim], unit length
    pairs: list[set]  # per trial: the feature pairs it counts for ({ci, cj}, {si, sj})

    def involving(self, f1: str, f2: str) -> np.ndarray:
        key = {f1, f2}
        return np.array([key in p for p in self.pairs], dtype=bool)


def trials_from_table(trials: pd.DataFrame, image_ids, caption_emb: dict[str, np.ndarray]):
    """`Trials` of a `binding.swapped_caption_trials` table; caption_emb maps caption -> vector."""
    row = {str(i): r for r, i in enumerate(image_ids)}

    def unit(captions):
        x = np.stack([caption_emb[c] for c in captions]).astype(np.float64)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return Trials(
        image_row=np.array([row[str(i)] for i in trials["image_id"]], dtype=np.int64),
        true_emb=unit(trials["true_caption"]),
        swapped_emb=unit(trials["swapped_caption"]),
        pairs=[
            [{a, b} for a, b in ((r.color_i, r.color_j), (r.shape_i, r.shape_j))]
            for r in trials.itertuples(index=False)
        ],
    )


def no_trials(dim: int) -> Trials:
    """No swapped-caption trial: a tower without a text tower (binding accuracy is NaN)."""
    empty = np.empty((0, dim))
    return Trials(np.empty(0, dtype=np.int64), empty, empty.copy(), [])


def binding_accuracy(emb: np.ndarray, trials: Trials, sel: np.ndarray) -> float:
    """Fraction of the selected trials whose image is nearer its true caption (cosine)."""
    if not sel.any():
        return float("nan")
    img = emb[trials.image_row[sel]].astype(np.float64)
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    true = (img * trials.true_emb[sel]).sum(axis=1)
    swapped = (img * trials.swapped_emb[sel]).sum(axis=1)
    return float(np.mean(true > swapped))


def pair_measures(emb, m1, m2, trials: Trials, sel, pca_variance: float) -> dict[str, float]:
    """D, M (full and PCA) of one pair's classes and its binding accuracy (METHOD.md 5)."""
    out = dict.fromkeys(iv.MEASURES, float("nan"))
    if m1.any() and m2.any():
        e1, e2 = emb[m1], emb[m2]
        out["D"], out["M"] = centroid_separability(e1, e2)
        z = pca_project(np.concatenate([e1, e2]), pca_variance)
        out["D_pca"], out["M_pca"] = centroid_separability(z[: len(e1)], z[len(e1) :])
    out["binding"] = binding_accuracy(emb, trials, sel)
    return out


def full_space(emb, classes) -> np.ndarray:
    """[pair, 2]: full-space D and M of every pair's classes."""
    return np.array(
        [
            centroid_separability(emb[m1], emb[m2]) if m1.any() and m2.any() else (np.nan, np.nan)
            for m1, m2 in classes
        ]
    )
