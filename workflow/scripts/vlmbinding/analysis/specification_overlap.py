"""The specification curve's `overlap` measure: the co-tuned neuron overlap z per specification.

For `robustness.measure` including `overlap`, every layer pool, token reduction and token
set of the grid gets the sharing stage's neuron-basis overlap (`sharing.neuron_overlap`:
each neuron's tuning from one joint regression on every feature and the object count, the
m most tuned neurons per feature, |A_f1 & A_f2| against a curveball null; conjunctions off)
and its z is correlated with D and M per space and subset exactly as S is
(`specification.correlate_subset`: feature-bootstrap interval, Mantel p with features
permuted). top_k and n_neurons are choices of S only: the overlap rows carry 0 there.
The main analysis's specification is the sharing stage's pool, reduction and tokens (with
`overlap_n_null` null draws, so its z differs from sharing.parquet's by the null's
Monte Carlo error only). Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis import correlation as stats
from vlmbinding.analysis.sharing import neuron_overlap
from vlmbinding.analysis.sharing_stage import layers_label, pool_activations
from vlmbinding.analysis.specification import (
    SPECIFICATION_COLUMNS,
    correlate_subset,
    subset_pairs,
)

log = logging.getLogger(__name__)

OVERLAP_SPEC_COLUMNS = ["layers", "reduce", "tokens", "layer_indices", "f1", "f2", "z"]


def overlap_grid(
    read_layer: Callable[[int, str, str], np.ndarray],
    presence: np.ndarray,
    features: Sequence[str],
    n_objects: np.ndarray,
    pools: Mapping[str, Sequence[int]],
    reductions: Sequence[str] = ("mean", "max"),
    token_sets: Sequence[str] = ("all", "patches"),
    *,
    m: int | None = None,
    n_null: int = 199,
    seed: int = 0,
    decorrelate: bool = True,
) -> pd.DataFrame:
    """The overlap z of every pair under every (pool, reduce, tokens): OVERLAP_SPEC_COLUMNS.

    `read_layer(layer, reduce, tokens)` gives a block's reduced [image, neuron] activations
    (each block read once per reduction and token set). `m` (None: `sharing.default_m` of
    each pool), `n_null` curveball draws (the unit permuted: a neuron's membership between
    two features), `seed` and `decorrelate` as in `sharing.neuron_overlap`, the same for
    every specification. An error names the pool, reduction and tokens that failed.
    """
    blocks = sorted({int(b) for pool in pools.values() for b in pool})
    tables = []
    for how in reductions:
        for tokens in token_sets:
            cache = {b: read_layer(b, how, tokens) for b in blocks}
            for label, pool in pools.items():
                acts = pool_activations(cache.__getitem__, list(pool))
                try:
                    table = neuron_overlap(
                        acts, presence, features, n_objects,
                        m=m, n_null=n_null, seed=seed, decorrelate=decorrelate,
                    )  # fmt: skip
                except ValueError as e:
                    raise ValueError(
                        f"robustness.measure overlap, layer pool {label!r} ({how}, {tokens}): {e}"
                    ) from e
                tables.append(
                    table.assign(
                        layers=label, reduce=how, tokens=tokens, layer_indices=layers_label(pool)
                    )[OVERLAP_SPEC_COLUMNS]
                )
            log.info("overlap specifications: %s/%s, %d pools", how, tokens, len(pools))
    return pd.concat(tables, ignore_index=True)


def overlap_specification_table(
    grid: pd.DataFrame,
    separability: pd.DataFrame,
    feature_kinds: Mapping[str, str],
    spaces: Sequence[str] = ("full", "pca"),
    subsets: Sequence[str] = stats.SUBSETS,
    metrics: Sequence[str] = stats.METRICS,
    n_boot: int = 1000,
    n_perm: int = 999,
    seed: int = 0,
    main: Mapping | None = None,
    measure: str = "overlap",
):
    """(table, a, b): a measure of sharing's z under its specifications as
    `specification_table` gives S's.

    One row per (pool, reduce, tokens) of `grid` (`overlap_grid`, or
    `specification_omega.omega_grid` with `measure` 'omega'), space, subset and metric,
    labelled `measure`, top_k and n_neurons 0 (not choices of these measures); a non-finite
    z (a null without spread) leaves its pair out. `main` (reduce, tokens, blocks) marks the
    main analysis's specification. `a`, `b`: the [row, F, F] matrices of z and the
    metric over all features of `feature_kinds`, for `specification_joint.joint_summary`.
    """
    features = list(feature_kinds)
    rows, mats = [], []
    main_blocks = layers_label(sorted(int(b) for b in main["blocks"])) if main else None
    keys = ["layers", "reduce", "tokens", "layer_indices"]
    for (label, how, tokens, indices), g in grid.groupby(keys, sort=False):
        scores = g[["f1", "f2", "z"]].rename(columns={"z": "S"})
        scores = scores[np.isfinite(scores["S"].to_numpy(float))]
        joined = stats.attach_scores(scores, separability)
        is_main = bool(
            main and indices == main_blocks and how == main["reduce"] and tokens == main["tokens"]
        )
        choice = {"measure": measure, "top_k": 0, "n_neurons": 0, "layers": label}
        choice |= {"reduce": how, "tokens": tokens, "layer_indices": indices, "main": is_main}
        for space in spaces:
            for subset in subsets:
                for metric in metrics:
                    pairs = subset_pairs(joined, metric, space, subset, feature_kinds)
                    mats.append(
                        (
                            stats.pairs_to_matrix(pairs, "S", features),
                            stats.pairs_to_matrix(pairs, metric, features),
                        )
                    )
                    result = correlate_subset(pairs, metric, feature_kinds, n_boot, n_perm, seed)
                    rows.append(
                        choice | {"space": space, "subset": subset, "metric": metric} | result
                    )
    table = pd.DataFrame(rows, columns=SPECIFICATION_COLUMNS)
    table = table.astype({"top_k": np.int64, "n_neurons": np.int64, "n_pairs": np.int64})
    table["main"] = table["main"].astype(bool)
    shape = (0, len(features), len(features))
    a = np.stack([x for x, _ in mats]) if mats else np.empty(shape)
    b = np.stack([y for _, y in mats]) if mats else np.empty(shape)
    return table, a, b
