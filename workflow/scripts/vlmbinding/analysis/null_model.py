"""A null model for the superposition score S: S when neurons know nothing of the labels.

S (METHOD.md section 4) is large for a pair when the lowest-entropy neurons' top images
often contain either feature. Part of that comes from the features' frequencies alone (a
feature present in many images is in many top-k sets). The null keeps every neuron's
top-k image set fixed and permutes the *images' labels*: the rows of the image x feature
presence matrix are shuffled, so each feature keeps its frequency and each image keeps its
own combination of features, but which images a neuron prefers no longer has anything to
do with what they show. The permuted unit is the image, because the labels belong to
images. For each permutation the whole selection is redone (affinities of every neuron,
entropies, the N lowest-entropy neurons, S of every pair), giving each pair's S a null
distribution, and the correlation of S with D or M a null distribution too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from vlmbinding.analysis.neurons import entropy_bits
from vlmbinding.analysis.resampling import _rowwise_pearson

log = logging.getLogger(__name__)

NULL_COLUMNS = ["f1", "f2", "S", "null_mean", "null_sd", "z", "p", "n_perm"]
NULL_CORRELATION_COLUMNS = [
    "metric",
    "space",
    "subset",
    "n_pairs",
    "pearson_r",
    "null_mean",
    "null_sd",
    "z",
    "p",
    "n_perm",
]
# Permuted statistics equal to the observed one up to summation order count as extreme.
_REL_TOL = 1e-12


def membership_matrix(
    neurons: pd.DataFrame, image_ids: Sequence[str]
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Sparse [neuron, image] 0/1 matrix of each neuron's top images, and each k.

    `neurons` has top_images (the k image ids joined by ','), as neurons.parquet. The
    matrix times a presence matrix, divided by k, gives the affinities exactly as
    `neurons.affinities` does (integer counts over k).
    """
    row = {str(i): j for j, i in enumerate(image_ids)}
    lists = [str(s).split(",") for s in neurons["top_images"]]
    unknown = {i for ids in lists for i in ids} - set(row)
    if unknown:
        raise ValueError(f"top_images name images not in the dataset, e.g. {sorted(unknown)[:3]}")
    sizes = np.array([len(ids) for ids in lists])
    cols = np.array([row[i] for ids in lists for i in ids], dtype=np.int64)
    rows = np.repeat(np.arange(len(lists)), sizes)
    vals = np.ones(len(cols))
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(lists), len(image_ids)))
    return matrix, sizes.astype(np.float64)


def _scores(
    aff: np.ndarray, order_keys: tuple[np.ndarray, np.ndarray], n: int, i1, i2
) -> np.ndarray:
    """S of every pair [pair] from all neurons' affinities [neuron, feature]: the n
    lowest-entropy neurons (ties to the lower layer, then unit; NaN entropy never)."""
    h = entropy_bits(aff)
    finite = np.flatnonzero(np.isfinite(h))
    if 0 < n < len(finite):  # only neurons up to the n-th entropy (ties included) compete
        kth = np.partition(h[finite], n - 1)[n - 1]
        finite = finite[h[finite] <= kth]
    layer, unit = order_keys
    order = finite[np.lexsort((unit[finite], layer[finite], h[finite]))][:n]
    a = aff[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (a[:, i1] + a[:, i2]) / a.sum(axis=1, keepdims=True)
    return ratio.sum(axis=0)


def null_superposition(
    neurons: pd.DataFrame,
    presence: np.ndarray,
    image_ids: Sequence[str],
    features: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    n_neurons: int,
    n_perm: int,
    seed: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Each pair's S against its null distribution under permuted image labels.

    `neurons` is the neuron table (layer, unit, top_images); `presence` the boolean
    [image, feature] matrix whose rows are `image_ids` and columns `features`. The
    observed S is recomputed from the top images (it equals score_superposition's S);
    each of `n_perm` permutations (numpy default_rng(seed)) shuffles the rows of
    `presence` and recomputes S. Returns the table (NULL_COLUMNS: null mean and sd, z =
    (S - mean) / sd, two-sided p = (1 + #{|S_null - mean| >= |S - mean|}) / (n_perm + 1))
    and the null scores [n_perm, pair].
    """
    features = list(features)
    col = {f: j for j, f in enumerate(features)}
    i1 = np.array([col[a] for a, _ in pairs], dtype=np.int64)
    i2 = np.array([col[b] for _, b in pairs], dtype=np.int64)
    presence = np.asarray(presence, dtype=np.float64)
    if presence.shape != (len(image_ids), len(features)):
        raise ValueError(
            f"presence has shape {presence.shape}, expected ({len(image_ids)}, {len(features)})"
        )
    member, k = membership_matrix(neurons, image_ids)
    keys = (neurons["layer"].to_numpy(np.int64), neurons["unit"].to_numpy(np.int64))

    def scores(rows: np.ndarray) -> np.ndarray:
        aff = np.asarray(member @ rows) / k[:, None]
        return _scores(aff, keys, n_neurons, i1, i2)

    observed = scores(presence)
    rng = np.random.default_rng(seed)
    null = np.empty((n_perm, len(pairs)))
    for b in range(n_perm):
        null[b] = scores(presence[rng.permutation(len(presence))])
    mean, sd = null.mean(axis=0), null.std(axis=0, ddof=1) if n_perm > 1 else np.nan
    dev = np.abs(observed - mean)
    extreme = (np.abs(null - mean) >= dev * (1 - _REL_TOL)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (observed - mean) / sd
    table = pd.DataFrame(
        {
            "f1": [a for a, _ in pairs],
            "f2": [b for _, b in pairs],
            "S": observed,
            "null_mean": mean,
            "null_sd": sd,
            "z": z,
            "p": (1 + extreme) / (1 + n_perm),
            "n_perm": np.full(len(pairs), n_perm, dtype=np.int64),
        },
        columns=NULL_COLUMNS,
    )
    return table, null


def centred_permutation_p(observed: float, null: np.ndarray) -> dict[str, float]:
    """Two-sided permutation p of `observed` around the centre of its `null` draws.

    null_mean and null_sd of the draws, z = (observed - null_mean) / null_sd and
    p = (1 + #{|null - null_mean| >= |observed - null_mean|}) / (len(null) + 1); NaN
    when `observed` is not finite or there are no draws. Counting |null| >= |observed|
    instead would give p near 1 to an observed value far below a null centred above 0.
    """
    null = np.asarray(null, float)
    out = {"null_mean": np.nan, "null_sd": np.nan, "z": np.nan, "p": np.nan}
    if not len(null):
        return out
    centre = float(null.mean())
    sd = float(null.std(ddof=1)) if len(null) > 1 else np.nan
    out |= {"null_mean": centre, "null_sd": sd}
    if not np.isfinite(observed):
        return out
    dev = abs(observed - centre)
    extreme = np.count_nonzero(np.abs(null - centre) >= dev * (1 - _REL_TOL))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (observed - centre) / sd if sd and np.isfinite(sd) else np.nan
    return out | {"z": float(z), "p": float((1 + extreme) / (1 + len(null)))}


def null_correlation(
    table: pd.DataFrame,
    null: np.ndarray,
    separability: pd.DataFrame,
    feature_kinds: dict[str, str],
    metrics: Sequence[str] = ("D", "M"),
) -> pd.DataFrame:
    """Pearson r of S with each metric against r of the null S with the same metric.

    `table` and `null` come from `null_superposition` (the permuted unit is the image:
    its labels are shuffled). `separability` has f1, f2, space and the metric columns.
    One row per metric x space x subset (all / no_position, as the correlation table).
    The null r is not centred on 0 (the features' frequencies alone correlate S with D and
    M), so the test is two-sided around the null's centre: null_mean and null_sd are the
    null r's mean and sd, z = (r - null_mean) / null_sd, and
    p = (1 + #{|r_null - null_mean| >= |r - null_mean|}) / (n_perm + 1): how often S that
    knows nothing of the labels (only the features' frequencies) lies as far from what
    frequencies give, on either side.
    """
    key = {tuple(sorted(p)): j for j, p in enumerate(zip(table["f1"], table["f2"]))}
    rows = []
    for metric in metrics:
        for space in pd.unique(separability["space"]):
            part = separability[separability["space"].eq(space)]
            idx = np.array([key.get(tuple(sorted(p)), -1) for p in zip(part["f1"], part["f2"])])
            y = part[metric].to_numpy(float)
            no_pos = ~(
                part["f1"].map(feature_kinds).eq("position")
                | part["f2"].map(feature_kinds).eq("position")
            ).to_numpy()
            for subset, keep in (("all", idx >= 0), ("no_position", (idx >= 0) & no_pos)):
                keep = keep & np.isfinite(y)
                x_obs = table["S"].to_numpy(float)[idx[keep]]
                r = _rowwise_pearson(x_obs[None], y[keep][None])[0]
                r_null = _rowwise_pearson(null[:, idx[keep]], y[keep][None])
                r_null = r_null[np.isfinite(r_null)]
                rows.append(
                    {"metric": metric, "space": space, "subset": subset}
                    | {"n_pairs": int(keep.sum()), "pearson_r": float(r)}
                    | centred_permutation_p(r, r_null)
                    | {"n_perm": len(null)}
                )
    return pd.DataFrame(rows, columns=NULL_CORRELATION_COLUMNS)


def null_superposition_tables(
    neurons: pd.DataFrame,
    presence: np.ndarray,
    image_ids: Sequence[str],
    vocab,
    separability: pd.DataFrame,
    n_neurons: int,
    n_perm: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rule's two tables: per-pair null of S and the null of its correlation with D, M."""
    table, null = null_superposition(
        neurons, presence, image_ids, vocab.features, vocab.feature_pairs(), n_neurons, n_perm, seed
    )
    far = table[table["p"] <= 0.05]
    log.info(
        "%d of %d pairs have S outside the central 95%% of its null (%d permutations); "
        "median |z| %.2f",
        len(far),
        len(table),
        n_perm,
        float(np.nanmedian(np.abs(table["z"]))),
    )
    return table, null_correlation(table, null, separability, vocab.feature_kinds)
