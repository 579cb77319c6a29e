"""Which neurons to ablate for a pair in `select: shared`: the neurons the two features share.

A_f is the m neurons of the analysed layer pool most tuned to feature f
(`analysis.sharing.tuned_sets` of `analysis.tuning.neuron_tuning` t values, from the
images' reduced activations, as the sharing stage computes them). For a pair (f1, f2):

- shared: A_f1 & A_f2, the neurons that carry both features;
- f1_only: as many neurons of A_f1 - A_f2, the same number in each layer as the shared set
  (the most f1-tuned first; where a layer has too few, the rest come from the other
  layers, most tuned first, and the shortfall is recorded);
- f2_only: likewise for f2.

A pair whose sets do not meet has nothing to ablate: it is recorded with n_neurons 0 and
skipped. Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SELECTIONS = ("shared", "pair_ratio")
SET_KINDS = ("shared", "f1_only", "f2_only")


@dataclass
class TunedPool:
    """The analysed layer pool's neurons with their tuning and tuned-set membership."""

    layer: np.ndarray  # int64 [neuron]: block index
    unit: np.ndarray  # int64 [neuron]: unit within the block
    t: np.ndarray  # float64 [neuron, feature]: tuning t values
    member: np.ndarray  # bool [neuron, feature]: A_f
    sd: np.ndarray  # float64 [neuron]: activation sd over the images
    m: int


def pool_activations(root, layers: Sequence[int], reduce: str, tokens: str):
    """(activations float32 [image, neuron], layer [neuron], unit [neuron]) of `layers`,
    reduced over each image's tokens as the affinities are (`store.reduced_layer`)."""
    from vlmbinding.extraction.store import reduced_layer

    width = int(root.attrs["width"])
    acts = np.concatenate([reduced_layer(root, int(L), reduce, tokens) for L in layers], axis=1)
    layer = np.repeat(np.asarray(layers, dtype=np.int64), width)
    unit = np.tile(np.arange(width, dtype=np.int64), len(layers))
    return acts, layer, unit


def tuned_pool(
    activations: np.ndarray,
    layer: np.ndarray,
    unit: np.ndarray,
    presence: np.ndarray,
    features: Sequence[str],
    n_objects: np.ndarray,
    m: int | None = None,
    seed: int = 0,
) -> TunedPool:
    """Tune every neuron of the pool to every feature and take each feature's A_f.

    m defaults to `analysis.sharing.default_m` of the pool's size; `seed` fixes the
    tuning's decorrelation directions (its only randomness). With too few images to
    decorrelate (a tiny test dataset), plain OLS t values, with a warning.
    """
    from vlmbinding.analysis.sharing import default_m, tuned_sets
    from vlmbinding.analysis.tuning import neuron_tuning

    acts = np.asarray(activations, dtype=np.float64)
    m = default_m(acts.shape[1]) if m is None else int(m)
    if not 1 <= m <= acts.shape[1]:
        raise ValueError(
            f"interventions.m={m} must be between 1 and the layer pool's {acts.shape[1]} neurons"
        )
    try:
        t = neuron_tuning(acts, presence, n_objects, features=list(features), seed=seed)
    except ValueError as e:
        if "too few residual directions" not in str(e):
            raise
        log.warning(
            "%s: tuning without decorrelation (plain OLS t values; the design's correlated "
            "errors can then make pure-noise neurons overlap, see analysis.tuning)",
            e,
        )
        t = neuron_tuning(acts, presence, n_objects, features=list(features), decorrelate=False)
    t = t[:, : len(features)]
    member = tuned_sets(t, m, features)
    return TunedPool(
        np.asarray(layer, np.int64), np.asarray(unit, np.int64), t, member, acts.std(axis=0), m
    )


def layer_matched(
    candidates: np.ndarray, score: np.ndarray, layer: np.ndarray, wanted: dict[int, int]
) -> tuple[np.ndarray, int]:
    """(chosen neuron indices, how many could not be placed in their layer).

    From `candidates` (pool indices), in every layer L the `wanted[L]` highest `score`;
    a layer short of candidates is filled with the highest-scoring candidates left, from
    any layer. Ties go to the lower pool index.
    """
    order = candidates[np.argsort(-score[candidates], kind="stable")]
    chosen, short = [], 0
    for L, c in sorted(wanted.items()):
        here = order[layer[order] == L][:c]
        chosen.extend(here.tolist())
        short += c - len(here)
    if short:
        rest = np.setdiff1d(order, chosen, assume_unique=True)
        rest = rest[np.argsort(-score[rest], kind="stable")][:short]
        chosen.extend(rest.tolist())
    return np.asarray(chosen, dtype=np.int64), short


def pair_sets(pool: TunedPool, j1: int, j2: int) -> dict:
    """The pair's three neuron sets as {kind: {layer: units}} plus their bookkeeping.

    Keys: the SET_KINDS (each {layer: sorted units}), `n_shared`, and `f1_only_short`,
    `f2_only_short` (how many single-feature neurons had to come from another layer than
    the shared neuron they stand in for; also short of the shared count when A_f - A_g is
    smaller than it, recorded as `n_f1_only`, `n_f2_only`).
    """
    a1, a2 = pool.member[:, j1], pool.member[:, j2]
    shared = np.flatnonzero(a1 & a2)
    wanted: dict[int, int] = {}
    for L in pool.layer[shared]:
        wanted[int(L)] = wanted.get(int(L), 0) + 1
    out = {"n_shared": len(shared), "shared": as_layers(pool, shared)}
    for kind, mine, other, j in (("f1_only", a1, a2, j1), ("f2_only", a2, a1, j2)):
        chosen, short = layer_matched(
            np.flatnonzero(mine & ~other), pool.t[:, j], pool.layer, wanted
        )
        out[kind] = as_layers(pool, chosen)
        out[f"n_{kind}"] = len(chosen)
        out[f"{kind}_short"] = short
    return out


def as_layers(pool: TunedPool, idx: np.ndarray) -> dict[int, np.ndarray]:
    """{layer: sorted units} of pool indices `idx`."""
    layers = pool.layer[idx]
    return {int(L): np.sort(pool.unit[idx][layers == L]) for L in np.unique(layers)}


def layer_sd(pool: TunedPool, n_layers: int, width: int) -> np.ndarray:
    """float64 [layer, width]: the pool's activation sd per neuron, NaN outside the pool."""
    sd = np.full((n_layers, width), np.nan)
    sd[pool.layer, pool.unit] = pool.sd
    return sd
