"""The specification curve: r(S, D) and r(S, M) over a grid of reasonable analysis choices.

From one activation store, without re-running the model, the superposition
score S (METHOD.md sections 3-4) is recomputed under every combination of

- `top_k`: top images per neuron that define its affinities;
- `reduce` (mean | max) and `tokens` (all | patches): how a neuron is reduced over tokens;
- `layers`: the pool of blocks the feature neurons are drawn from (the last 10, all, each
  third of the blocks);
- `n_neurons`: how many lowest-entropy neurons enter S (capped by the pool);

and correlated with the separability D and M (METHOD.md section 5) in each embedding `space`
(full | pca), over each `subset` of pairs (all | no_position), with the dependence-aware
statistics of `vlmbinding.analysis.correlation.dependence_aware` (feature-bootstrap
interval, Mantel p).

Cost: a block of the store is read once (`layer_affinity_grid`, one job per block). Per
(reduce, tokens) the neurons' images are sorted once and every top_k is a prefix of that
order (`top_k_images` sorts stably, so the first k of the longest prefix are exactly the top
k). Every later choice works on the small per-neuron tables (`specification_table`).
The statistics are those of the single-specification rules: affinities, entropy, the
selection and S come from `vlmbinding.analysis.neurons`, the pair subsets follow
`stats.correlation_table`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis import correlation as stats
from vlmbinding.analysis.neurons import (
    affinities,
    entropy_bits,
    reduce_tokens,
    select_feature_neurons,
    superposition_scores,
    top_k_images,
)
from vlmbinding.data.vocab import all_pairs
from vlmbinding.workflow.grid import layer_pools  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

CHOICES = ("top_k", "n_neurons", "layers", "reduce", "tokens", "space", "subset")
MEASURES = ("S", "overlap", "omega")
SPECIFICATION_COLUMNS = [
    "measure",
    *CHOICES,
    "metric",
    "pearson_r",
    "feature_ci_low",
    "feature_ci_high",
    "mantel_p",
    "n_pairs",
    "layer_indices",
    "main",
]
SUMMARY_COLUMNS = [
    "measure",
    "metric",
    "n_specifications",
    "share_negative",
    "share_positive",
    "share_ci_below_zero",
    "share_ci_above_zero",
    "median_r",
    "min_r",
    "max_r",
    "alpha",
    "main_r",
    "main_p",
]


# --- the grid --------------------------------------------------------------------------


def usable_top_ks(top_ks: Sequence[int], n_images: int) -> list[int]:
    """The top_k values possible with `n_images` images, ascending; others dropped (logged)."""
    keep = sorted({int(k) for k in top_ks if 1 <= int(k) <= n_images})
    dropped = sorted({int(k) for k in top_ks} - set(keep))
    if dropped:
        log.info("top_k %s dropped: the dataset has only %d images", dropped, n_images)
    if not keep:
        raise ValueError(
            f"robustness.top_k: none of {list(top_ks)} fits a dataset of {n_images} images; "
            f"add a value of at most {n_images}"
        )
    return keep


def neuron_counts(n_neurons: Sequence[int], pool_size: int) -> list[int]:
    """The n_neurons values for a pool of `pool_size` neurons: capped, repeats dropped."""
    out = []
    for n in sorted(int(n) for n in n_neurons):
        capped = min(n, pool_size)
        if capped != n:
            log.info("n_neurons %d capped at the pool's %d neurons", n, pool_size)
        if capped not in out:
            out.append(capped)
    return out


# --- per block: every (reduce, tokens, top_k) at once ------------------------------------


def layer_affinity_grid(
    layer: int,
    mlp_out_layer: np.ndarray,
    presence: np.ndarray,
    features: Sequence[str],
    top_ks: Sequence[int],
    reductions: Sequence[str] = ("mean", "max"),
    token_sets: Sequence[str] = ("all", "patches"),
    n_prefix: int = 1,
) -> pd.DataFrame:
    """Affinities and entropy of one block's neurons under every token and top-k choice.

    `n_prefix`: the store's prefix tokens, dropped by the `patches` token set.

    `mlp_out_layer` [image, token, unit] and `presence` [image, feature] describe the same
    images in order. For each (reduce, tokens) the activations are reduced and sorted once;
    each k of `top_ks` (all at most the number of images) takes the first k of that order,
    which equals `top_k_images(acts, k)`. One row per (reduce, tokens, top_k, unit) with
    columns reduce, tokens, top_k, layer, unit, one affinity column per feature, entropy:
    the rows `neurons.neuron_table` gives for the same settings (without top_images).
    """
    features = list(features)
    if presence.shape != (mlp_out_layer.shape[0], len(features)):
        raise ValueError(
            f"presence has shape {presence.shape}, expected "
            f"({mlp_out_layer.shape[0]}, {len(features)}) = (images of mlp_out_layer, features)"
        )
    top_ks = sorted({int(k) for k in top_ks})
    n_units = mlp_out_layer.shape[2]
    # One widening for all reductions: numpy reduces float16 several times slower than
    # float32 (the max above all), and reduce_tokens accumulates in float32 either way,
    # so the values are the same (the tests compare with neuron_table on float16).
    acts = np.asarray(mlp_out_layer, dtype=np.float32)
    tables = []
    for how in reductions:
        for tokens in token_sets:
            order = top_k_images(reduce_tokens(acts, how, tokens, n_prefix), top_ks[-1])
            for k in top_ks:
                aff = affinities(order[:k], presence)
                tables.append(
                    pd.DataFrame(
                        {
                            "reduce": how,
                            "tokens": tokens,
                            "top_k": np.full(n_units, k, dtype=np.int64),
                            "layer": np.full(n_units, layer, dtype=np.int64),
                            "unit": np.arange(n_units, dtype=np.int64),
                            **{f: aff[:, j] for j, f in enumerate(features)},
                            "entropy": entropy_bits(aff),
                        }
                    )
                )
    return pd.concat(tables, ignore_index=True)


# --- the specifications -------------------------------------------------------------------


def subset_pairs(
    joined: pd.DataFrame, metric: str, space: str, subset: str, feature_kinds: Mapping[str, str]
) -> pd.DataFrame:
    """The pairs `stats.correlation_table` correlates for (metric, space, subset).

    `joined` is a separability table with S attached (`stats.attach_scores`). Rows of
    `space` with finite S and metric; `no_position` drops pairs that involve a position.
    """
    if subset not in stats.SUBSETS:
        raise ValueError(f"subset={subset!r} is not one of {stats.SUBSETS}")
    keep = joined["space"].eq(space) & np.isfinite(joined[["S", metric]]).all(axis=1)
    if subset == "no_position":
        keep &= ~joined["f1"].map(feature_kinds).eq("position")
        keep &= ~joined["f2"].map(feature_kinds).eq("position")
    return joined[keep]


def correlate_subset(
    pairs: pd.DataFrame,
    metric: str,
    feature_kinds: Mapping[str, str],
    n_boot: int,
    n_perm: int,
    seed: int,
) -> dict:
    """Dependence-aware r of S with `metric` over `pairs` (pearson_r, interval, Mantel p).

    The features are those the pairs name, in `feature_kinds` order (as correlation_table
    orders them); the bootstrap resamples features and the Mantel test permutes them,
    because the pairs share features and are not independent.
    """
    used = set(pairs["f1"]) | set(pairs["f2"])
    features = [f for f in feature_kinds if f in used]
    a = stats.pairs_to_matrix(pairs, "S", features)
    b = stats.pairs_to_matrix(pairs, metric, features)
    x, y = pairs["S"].to_numpy(float), pairs[metric].to_numpy(float)
    if len(pairs) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        log.info("S vs %s: %d pairs or a constant column; no correlation", metric, len(pairs))
        empty = ("pearson_r", "feature_ci_low", "feature_ci_high", "mantel_p")
        return dict.fromkeys(empty, np.nan) | {"n_pairs": len(pairs)}
    res = stats.dependence_aware(a, b, n_boot, n_perm, seed)
    return {
        "pearson_r": float(res["r"]),
        "feature_ci_low": float(res["feature_ci_low"]),
        "feature_ci_high": float(res["feature_ci_high"]),
        "mantel_p": float(res["mantel_p"]),
        "n_pairs": int(res["n_pairs"]),
    }


def specification_table(
    grid: pd.DataFrame,
    separability: pd.DataFrame,
    feature_kinds: Mapping[str, str],
    pools: Mapping[str, Sequence[int]],
    n_neurons: Sequence[int],
    spaces: Sequence[str] = ("full", "pca"),
    subsets: Sequence[str] = stats.SUBSETS,
    metrics: Sequence[str] = stats.METRICS,
    ratio_threshold: float = 0.3,
    n_boot: int = 1000,
    n_perm: int = 999,
    seed: int = 0,
    main: Mapping | None = None,
    keep_matrices: bool = False,
):
    """One row per specification and metric: r of S with D or M and its uncertainty.

    `grid` stacks `layer_affinity_grid` tables of every block that a pool names; its
    (top_k, reduce, tokens) values are the ones the grid runs. For each of those and each
    layer pool, the `n_neurons` lowest-entropy neurons of the pool (capped by the pool's
    size) give S (`select_feature_neurons`, `superposition_scores`), which is joined to
    `separability` (f1, f2, space, D, M) and correlated per space, subset and metric
    (`correlate_subset`), every specification with the same `seed`. Columns
    SPECIFICATION_COLUMNS; `layer_indices` lists the pool's blocks; `main` marks the rows of
    the main analysis (`main`: its top_k, n_neurons, reduce, tokens and 0-based blocks; see
    `specification_joint.main_mask`), all False without it. With `keep_matrices` it returns
    (table, a, b): the [row, F, F] pair matrices of S and the metric over all features of
    `feature_kinds` (NaN off the row's pairs), for `specification_joint.joint_summary`.
    """
    from vlmbinding.analysis.specification_joint import main_mask

    features = list(feature_kinds)
    missing = sorted({b for p in pools.values() for b in p} - set(grid["layer"].unique()))
    if missing:
        raise ValueError(f"the neuron grid has no rows for blocks {missing} that a pool names")
    rows, mats = [], []
    for (top_k, how, tokens), group in grid.groupby(["top_k", "reduce", "tokens"], sort=False):
        for label, blocks in pools.items():
            pool = group[group["layer"].isin(list(blocks))]
            for n in neuron_counts(n_neurons, len(pool)):
                selected = select_feature_neurons(pool, n)
                scores = superposition_scores(
                    selected, features, all_pairs(features), ratio_threshold
                )
                joined = stats.attach_scores(scores, separability)
                choice = {
                    "top_k": int(top_k),
                    "n_neurons": int(n),
                    "layers": label,
                    "reduce": how,
                    "tokens": tokens,
                }
                for space in spaces:
                    for subset in subsets:
                        for metric in metrics:
                            pairs = subset_pairs(joined, metric, space, subset, feature_kinds)
                            if keep_matrices:
                                mats.append(
                                    (
                                        stats.pairs_to_matrix(pairs, "S", features),
                                        stats.pairs_to_matrix(pairs, metric, features),
                                    )
                                )
                            result = correlate_subset(
                                pairs, metric, feature_kinds, n_boot, n_perm, seed
                            )
                            rows.append(
                                choice
                                | {"space": space, "subset": subset, "metric": metric}
                                | result
                                | {"layer_indices": ",".join(map(str, blocks))}
                            )
    table = pd.DataFrame(rows, columns=SPECIFICATION_COLUMNS).assign(measure="S")
    table = table.astype({"top_k": np.int64, "n_neurons": np.int64, "n_pairs": np.int64})
    table["main"] = main_mask(table, pools, main) if main is not None else False
    if not keep_matrices:
        return table
    shape = (0, len(features), len(features))
    a = np.stack([m[0] for m in mats]) if mats else np.empty(shape)
    b = np.stack([m[1] for m in mats]) if mats else np.empty(shape)
    return table, a, b


def specification_summary(specs: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per measure (S, overlap, omega) and metric: how many specifications find a significant effect
    of each sign (a table without a `measure` column is S's).

    Significant: Mantel p < `alpha` (share_negative: r < 0, share_positive: r > 0); the
    shares of feature-bootstrap intervals wholly below or above zero are given beside them.
    Specifications without a correlation (NaN r) count in n_specifications but in no share.
    The specifications share one store and one dataset, so the shares describe how robust
    the estimate is to the analysis choices; they are not independent replications
    (`specification_joint.joint_summary` tests them jointly). main_r and main_p: r and Mantel
    p of the main analysis's full-space specification over the pairs without positions when
    the table marks one (`main`), else over all pairs; NaN when none is marked.
    """
    rows = []
    if "measure" not in specs:
        specs = specs.assign(measure="S")
    groups = specs.groupby(["measure", "metric"], sort=False)
    order = sorted(groups.groups, key=lambda k: (_measure_rank(k[0]), k[1]))
    for measure, metric in order:
        g = groups.get_group((measure, metric))
        r, p = g["pearson_r"].to_numpy(float), g["mantel_p"].to_numpy(float)
        low, high = g["feature_ci_low"].to_numpy(float), g["feature_ci_high"].to_numpy(float)
        n = len(g)
        sig = np.isfinite(p) & (p < alpha)
        finite = r[np.isfinite(r)]
        main_r = main_p = np.nan
        if "main" in g:
            for subset in ("no_position", "all"):
                hit = g[g["main"].astype(bool) & g["space"].eq("full") & g["subset"].eq(subset)]
                if len(hit):
                    main_r, main_p = float(hit["pearson_r"].iloc[0]), float(hit["mantel_p"].iloc[0])
                    break
        rows.append(
            {
                "measure": measure,
                "metric": metric,
                "n_specifications": n,
                "share_negative": float(np.mean(sig & (r < 0))) if n else np.nan,
                "share_positive": float(np.mean(sig & (r > 0))) if n else np.nan,
                "share_ci_below_zero": float(np.mean(high < 0)) if n else np.nan,
                "share_ci_above_zero": float(np.mean(low > 0)) if n else np.nan,
                "median_r": float(np.median(finite)) if len(finite) else np.nan,
                "min_r": float(finite.min()) if len(finite) else np.nan,
                "max_r": float(finite.max()) if len(finite) else np.nan,
                "alpha": float(alpha),
                "main_r": main_r,
                "main_p": main_p,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _measure_rank(measure: str) -> int:
    """S first, then the measures of sharing in MEASURES order, then any other."""
    return MEASURES.index(measure) if measure in MEASURES else len(MEASURES)
