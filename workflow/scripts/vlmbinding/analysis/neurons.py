"""Neurons: reduce activations over tokens, feature affinities, entropy, superposition score.

METHOD.md sections 2-4. A neuron is one unit of a block's MLP output. Its activation on an
image is reduced over the image's tokens; its top-k images define its affinity for each
feature (the fraction of those images that contain the feature); the entropy of the
normalised affinities says how feature-selective it is; the lowest-entropy neurons give the
superposition score S of every feature pair.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

REDUCTIONS = ("mean", "max")
TOKEN_SETS = ("all", "patches")
SCORE_COLUMNS = ["f1", "f2", "S", "n_over_threshold", "n_neurons"]


def reduce_tokens(
    mlp_out: np.ndarray, how: str = "mean", tokens: str = "all", n_prefix: int = 1
) -> np.ndarray:
    """Reduce [image, token, unit] activations over tokens to float32 [image, unit].

    METHOD.md section 2: the notebooks take the mean over all tokens, CLS (token 0)
    included; `tokens="patches"` drops the `n_prefix` prefix tokens (the store's
    `n_prefix_tokens`: 1 for CLIP's CLS, 0 for SigLIP, 1 + registers for a ViT with
    registers), `how="max"` keeps the maximum.
    """
    if how not in REDUCTIONS:
        raise ValueError(f"how={how!r} is not a token reduction; use one of {REDUCTIONS}")
    if tokens not in TOKEN_SETS:
        raise ValueError(f"tokens={tokens!r} is not a token set; use one of {TOKEN_SETS}")
    if mlp_out.ndim != 3:
        raise ValueError(f"mlp_out must be [image, token, unit], got shape {mlp_out.shape}")
    x = mlp_out[:, int(n_prefix) :, :] if tokens == "patches" else mlp_out
    if how == "mean":
        # Summing 257 float16 values in float16 loses digits; accumulate in float32.
        return x.mean(axis=1, dtype=np.float32)
    # The maximum is exact in any dtype; only the result is widened.
    return x.max(axis=1).astype(np.float32)


def top_k_images(acts: np.ndarray, k: int) -> np.ndarray:
    """Indices int64 [k, unit] of each neuron's k highest-activation images, highest first.

    METHOD.md section 3. Ties go to the lower image index (a stable sort of -acts), so the
    choice is deterministic when activations repeat (float16 activations often do).
    """
    n_images = acts.shape[0]
    if not 1 <= k <= n_images:
        raise ValueError(f"k={k} must be between 1 and the number of images ({n_images})")
    order = np.argsort(-acts, axis=0, kind="stable")
    return order[:k].astype(np.int64)


def affinities(top_idx: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """Affinity float64 [unit, feature]: fraction of a neuron's top-k images with the feature.

    METHOD.md section 3. `top_idx` is [k, unit] (from `top_k_images`), `presence` the
    boolean [image, feature] matrix.
    """
    counts = presence[top_idx].sum(axis=0, dtype=np.int64)  # [unit, feature]
    return counts / top_idx.shape[0]


def entropy_bits(aff: np.ndarray) -> np.ndarray:
    """Entropy in bits float64 [unit] of each row of affinities normalised to sum 1.

    METHOD.md section 3: p_f = a_f / sum(a), H = -sum p_f log2 p_f with 0 log 0 = 0.
    A row whose affinities are all zero has no distribution: its entropy is NaN.
    """
    aff = np.asarray(aff, dtype=np.float64)
    total = aff.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = aff / total
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    h = -terms.sum(axis=1)
    h[total[:, 0] == 0] = np.nan
    # -0.0 for one-hot rows reads oddly in tables.
    return h + 0.0


def neuron_table(
    layer: int,
    mlp_out_layer: np.ndarray,
    presence: np.ndarray,
    features: Sequence[str],
    image_ids: Sequence[str],
    k: int,
    how: str = "mean",
    tokens: str = "all",
    n_prefix: int = 1,
) -> pd.DataFrame:
    """One row per unit of one layer: affinities, entropy and top images (METHOD.md 2-3).

    `mlp_out_layer` is [image, token, unit]; its rows, the rows of `presence` and
    `image_ids` are the same images in the same order; `features` names the columns of
    `presence`. Columns: layer, unit, one column per feature, entropy, top_images (the k
    image ids, highest activation first, joined by ",").
    An [image, unit] array is taken as already reduced over tokens (from a reduced store,
    `vlmbinding.extraction.store.reduced_layer`); `how`, `tokens` and `n_prefix` (the
    store's prefix tokens, see `reduce_tokens`) are then not used.
    """
    features = list(features)
    n_images = mlp_out_layer.shape[0]
    if presence.shape != (n_images, len(features)):
        raise ValueError(
            f"presence has shape {presence.shape}, expected ({n_images}, {len(features)}) "
            "= (images of mlp_out_layer, features)"
        )
    if len(image_ids) != n_images:
        raise ValueError(f"{len(image_ids)} image ids for {n_images} images")
    acts = (
        mlp_out_layer
        if mlp_out_layer.ndim == 2
        else reduce_tokens(mlp_out_layer, how, tokens, n_prefix)
    )
    top = top_k_images(acts, k)
    aff = affinities(top, presence)
    ids = np.asarray(image_ids, dtype=object)[top.T]  # [unit, k]
    n_units = aff.shape[0]
    table = pd.DataFrame(
        {
            "layer": np.full(n_units, layer, dtype=np.int64),
            "unit": np.arange(n_units, dtype=np.int64),
            **{f: aff[:, j] for j, f in enumerate(features)},
            "entropy": entropy_bits(aff),
            "top_images": [",".join(row) for row in ids],
        }
    )
    return table


def select_feature_neurons(neurons: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n lowest-entropy neurons, entropy ascending (METHOD.md section 4).

    Ties go to the lower layer, then the lower unit. Neurons with NaN entropy (no feature
    in any top image) are never selected. If fewer than n remain, all are returned and a
    warning is logged.
    """
    candidates = neurons[neurons["entropy"].notna()]
    if len(candidates) < n:
        log.warning(
            "asked for %d feature neurons but only %d have a finite entropy; using all of them",
            n,
            len(candidates),
        )
    ordered = candidates.sort_values(["entropy", "layer", "unit"], kind="stable")
    return ordered.head(n).reset_index(drop=True)


def feature_mass(selected: pd.DataFrame, features: Sequence[str]) -> pd.Series:
    """P(f) = sum over the selected neurons of a_f / sum_g a_g: each feature's share of the
    neurons' normalised affinity. S(f1, f2) = P(f1) + P(f2) (`superposition_scores`)."""
    aff = selected[list(features)].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = aff / aff.sum(axis=1, keepdims=True)
    return pd.Series(share.sum(axis=0), index=list(features), name="P")


def superposition_scores(
    selected: pd.DataFrame,
    features: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    threshold: float = 0.3,
) -> pd.DataFrame:
    """Superposition score S of each feature pair over the selected neurons (METHOD.md 4).

    For neuron i, ratio_i = (a_f1 + a_f2) / sum_f a_f, the sum over all `features` (the
    affinity columns). S = sum_i ratio_i; n_over_threshold counts ratio_i > threshold.
    One row per pair, in `pairs` order.

    By this definition S is additive: S(f1, f2) = P(f1) + P(f2) exactly, with P the
    per-feature mass of `feature_mass`. S holds no information about the pair beyond its
    two features' masses (whether they share neurons or not), and its mean over all pairs
    is 2N/F for N neurons and F features, whatever the model. n_over_threshold is not
    additive.
    """
    features = list(features)
    col = {f: j for j, f in enumerate(features)}
    unknown = sorted({f for pair in pairs for f in pair} - set(col))
    if unknown:
        raise ValueError(f"pairs name features that are not affinity columns: {unknown}")
    aff = selected[features].to_numpy(dtype=np.float64)  # [neuron, feature]
    i1 = np.array([col[a] for a, _ in pairs], dtype=np.int64)
    i2 = np.array([col[b] for _, b in pairs], dtype=np.int64)
    # A neuron with no affinity at all has no ratio; it stays NaN so S shows it.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (aff[:, i1] + aff[:, i2]) / aff.sum(axis=1, keepdims=True)  # [neuron, pair]
    return pd.DataFrame(
        {
            "f1": [a for a, _ in pairs],
            "f2": [b for _, b in pairs],
            "S": ratio.sum(axis=0),
            "n_over_threshold": (ratio > threshold).sum(axis=0).astype(np.int64),
            "n_neurons": np.full(len(pairs), len(aff), dtype=np.int64),
        },
        columns=SCORE_COLUMNS,
    )
