"""The specification curve as one test, and the main analysis as one of its specifications.

"31% of the specifications are significant" needs a reference distribution: the
specifications share one store and one dataset and are strongly dependent, so the share is
not a count of independent tests. The joint test of Simonsohn, Simmons & Nelson (2020,
Nature Human Behaviour 4, 1208-1214) draws null data sets and runs every specification on
each. Here the permuted unit is the *feature*, as in each specification's Mantel test: one
random relabelling of the features is applied to every specification's metric matrix at
once (S stays), so the dependence between specifications is kept in the null. A feature
permutation only relabels the pair matrices, so each null draw costs one gather per
specification, not a rerun of the analysis.

Positions are permuted among positions and the other features among themselves, so that
one relabelling maps the pairs of every subset (all pairs; pairs without a position) onto
themselves. That null is valid whenever the unstratified one is (exchangeable features are
exchangeable within groups).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from vlmbinding.analysis.resampling import _rowwise_pearson, feature_permutations
from vlmbinding.workflow.grid import grid_with_main, pools_with_main  # noqa: F401  (re-exported)

# Null draws are scored in chunks of about this many pair values.
_CHUNK = 2_000_000
JOINT_COLUMNS = [
    "measure",
    "metric",
    "share_significant",
    "joint_p_share",
    "joint_p_median",
    "joint_n_perm",
]


def joint_strata(feature_kinds: Mapping[str, str]) -> list[str]:
    """One group label per feature: positions among positions, the rest among the rest."""
    return ["position" if k == "position" else "object" for k in feature_kinds.values()]


def permuted_correlations(a: np.ndarray, b: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """[specification, 1 + n_perm] Pearson r of S with the metric, column 0 observed.

    `a`, `b`: [specification, F, F] pair matrices of S and the metric over all F features
    (NaN = a pair the specification does not use). Column j + 1 relabels every
    specification's metric matrix by the same feature permutation `perms[j]`.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    iu, ju = np.triu_indices(a.shape[1], k=1)
    x = a[:, iu, ju]
    perms = np.vstack([np.arange(a.shape[1]), np.asarray(perms, dtype=np.int64)])
    out = np.empty((len(a), len(perms)))
    chunk = max(1, _CHUNK // max(1, x.size))
    for s in range(0, len(perms), chunk):
        p = perms[s : s + chunk]
        y = b[:, p[:, iu], p[:, ju]]  # [specification, chunk, pair]
        xs = np.broadcast_to(x[:, None, :], y.shape)
        out[:, s : s + len(p)] = _rowwise_pearson(
            xs.reshape(-1, x.shape[1]), y.reshape(-1, x.shape[1])
        ).reshape(len(a), len(p))
    return out


def permutation_p_matrix(r: np.ndarray) -> np.ndarray:
    """Each entry's two-sided permutation p within its row: #{j: |r_j| >= |r_b|} / n.

    Row = one specification, columns = the observed and the permuted data sets, all
    exchangeable under the null; column 0's p is the specification's Mantel p on these
    permutations. A NaN r gets p = 1 (never significant) and counts as least extreme.
    """
    mag = np.where(np.isfinite(r), np.abs(r), -np.inf)
    ge = sps.rankdata(-mag, method="max", axis=1)  # entries with |r| >= this one
    return np.where(np.isfinite(r), ge / r.shape[1], 1.0)


def joint_test(r: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """The joint p of the share of significant specifications and of the median r.

    `r` from `permuted_correlations`. Under the null each column is one data set: its
    share of specifications with p < `alpha` (either sign) and its median r. joint_p_share
    = #{columns with a share >= the observed} / columns (one-sided: more significant
    specifications than the null gives); joint_p_median: two-sided around the null medians'
    centre, #{|median - centre| >= |observed - centre|} / columns. The observed column is
    counted in both, so neither p is below 1 / columns.
    """
    share = (permutation_p_matrix(r) < alpha).mean(axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column has no median
        med = np.nanmedian(r, axis=0)
    centre = np.nanmean(med[1:]) if len(med) > 1 else 0.0
    dev = np.abs(med - centre)
    p_med = np.nan
    if np.isfinite(dev[0]):
        p_med = np.count_nonzero(dev >= dev[0] * (1 - 1e-12)) / len(med)
    return {
        "share_significant": float(share[0]),
        "joint_p_share": float(np.count_nonzero(share >= share[0]) / len(share)),
        "joint_p_median": float(p_med),
        "joint_n_perm": int(r.shape[1] - 1),
    }


def joint_summary(
    specs: pd.DataFrame,
    a: np.ndarray,
    b: np.ndarray,
    feature_kinds: Mapping[str, str],
    n_perm: int,
    seed: int,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per measure and metric of `specs`: the joint test over its specifications
    (JOINT_COLUMNS; a table without a `measure` column is S's).

    `a`, `b` are the [row, F, F] matrices of the score (S, or a measure of sharing's z) and
    the metric for each row of `specs` (`specification_table(..., keep_matrices=True)`); F
    follows `feature_kinds`. The same `n_perm` feature permutations (numpy
    default_rng(seed), positions among positions) serve every measure, metric and
    specification: the permuted unit is the feature, relabelled in the metric's matrix, so
    each measure's test is valid on its own and all share the same null data sets.
    """
    perms = feature_permutations(
        len(feature_kinds), n_perm, np.random.default_rng(seed), joint_strata(feature_kinds)
    )
    rows = []
    metric = specs["metric"].to_numpy()
    measure = specs["measure"].to_numpy() if "measure" in specs else np.full(len(specs), "S")
    for s, m in dict.fromkeys(zip(measure, metric)):
        keep = (measure == s) & (metric == m)
        r = permuted_correlations(a[keep], b[keep], perms)
        rows.append({"measure": s, "metric": m} | joint_test(r, alpha))
    return pd.DataFrame(rows, columns=JOINT_COLUMNS)


# --- the main analysis in the grid ---------------------------------------------------------


def main_mask(specs: pd.DataFrame, pools: Mapping[str, Sequence[int]], main: Mapping) -> np.ndarray:
    """Rows of `specs` whose choices are the main analysis's: top_k, reduce, tokens, the pool
    with the main blocks, and n_neurons capped by that pool's size as the selection caps it.

    `main` has top_k, n_neurons, reduce, tokens and blocks (0-based). Every space, subset
    and metric of that specification is marked.
    """
    blocks = sorted(int(b) for b in main["blocks"])
    label = next((k for k, v in pools.items() if sorted(v) == blocks), None)
    if label is None:
        return np.zeros(len(specs), dtype=bool)
    return (
        specs["top_k"].eq(int(main["top_k"]))
        & specs["reduce"].eq(main["reduce"])
        & specs["tokens"].eq(main["tokens"])
        & specs["layers"].eq(label)
        & specs["n_neurons"].eq(min(int(main["n_neurons"]), _pool_size(specs, label)))
    ).to_numpy()


def _pool_size(specs: pd.DataFrame, label: str) -> int:
    """The largest n_neurons the pool ran: the cap that neuron_counts applies."""
    return int(specs.loc[specs["layers"].eq(label), "n_neurons"].max())
