"""Does superposition go with poor separability? Correlations with their uncertainty.

METHOD.md section 6: across feature pairs, correlate the superposition score S with the
embedding separability D and M; Pearson and Spearman with p-values and bootstrap intervals
(pairs resampled), and a Mantel test, which respects that the 120 pairs share 16 features
and so are not independent; with and without the pairs that involve a position.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

METHODS = ("pearson", "spearman")
METRICS = ("D", "M")
SUBSETS = ("all", "no_position")
CORRELATION_COLUMNS = [
    "metric",
    "space",
    "subset",
    "n_pairs",
    "pearson_r",
    "pearson_p",
    "pearson_ci_low",
    "pearson_ci_high",
    "spearman_rho",
    "spearman_p",
    "spearman_ci_low",
    "spearman_ci_high",
    "mantel_r",
    "mantel_p",
    "n_boot",
    "n_perm",
]
# Permuted statistics equal to the observed one up to summation order count as "as
# extreme" (the same guard as scipy.stats.permutation_test).
_REL_TOL = 1e-12


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row of x with the same row of y [rows, n]; NaN marks a missing value.

    Only the entries finite in both count. A row with fewer than 3 of them, or with a
    constant x or y over them, gets NaN.
    """
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=1)
    # Constant rows are found exactly (max == min): a float mean of equal values need not
    # equal them, so centred values would be tiny noise rather than zero.
    const_x = np.where(ok, x, np.inf).min(axis=1) == np.where(ok, x, -np.inf).max(axis=1)
    const_y = np.where(ok, y, np.inf).min(axis=1) == np.where(ok, y, -np.inf).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = np.where(ok, x - np.where(ok, x, 0).sum(axis=1, keepdims=True) / n[:, None], 0)
        yc = np.where(ok, y - np.where(ok, y, 0).sum(axis=1, keepdims=True) / n[:, None], 0)
        r = (xc * yc).sum(axis=1) / np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    r[(n < 3) | const_x | const_y] = np.nan
    return np.clip(r, -1.0, 1.0)


def _rowwise_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho per row: Pearson r of the ranks among the entries finite in both."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    ok = np.isfinite(x) & np.isfinite(y)
    rx = stats.rankdata(np.where(ok, x, np.nan), axis=1, nan_policy="omit")
    ry = stats.rankdata(np.where(ok, y, np.nan), axis=1, nan_policy="omit")
    return _rowwise_pearson(rx, ry)


def bootstrap_ci(
    x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> dict[str, float]:
    """Percentile bootstrap intervals of Pearson r and Spearman rho (METHOD.md section 6).

    Resamples the (x, y) pairs with replacement (numpy default_rng(seed)); a resample in
    which x or y is constant has no correlation and is dropped. Keys pearson_ci_low,
    pearson_ci_high, spearman_ci_low, spearman_ci_high; NaN with fewer than 3 pairs.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite; drop the missing pairs first")
    keys = ["pearson_ci_low", "pearson_ci_high", "spearman_ci_low", "spearman_ci_high"]
    if len(x) < 3:
        return dict.fromkeys(keys, np.nan)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    xs, ys = x[idx], y[idx]
    tails = [50 * (1 - level), 50 * (1 + level)]
    out = []
    for r in (_rowwise_pearson(xs, ys), _rowwise_spearman(xs, ys)):
        r = r[np.isfinite(r)]
        out += list(np.percentile(r, tails)) if len(r) else [np.nan, np.nan]
    return dict(zip(keys, map(float, out)))


def mantel_test(
    a: np.ndarray, b: np.ndarray, n_perm: int, seed: int, method: str = "pearson"
) -> tuple[float, float]:
    """Mantel test of two symmetric [F, F] matrices: (r, two-sided p) (METHOD.md section 6).

    The statistic is the correlation (`method` pearson or spearman) of the upper-triangle
    entries finite in both (NaN = missing pair; the diagonal is ignored). The null
    permutes the rows and columns of b together by a random feature permutation;
    p = (1 + #{|r_perm| >= |r_obs|}) / (n_perm + 1). Permutations whose statistic is
    undefined (too few finite pairs left) are left out of both counts.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape:
        raise ValueError(f"a and b must be square and of one shape, got {a.shape}, {b.shape}")
    f = a.shape[0]
    iu, ju = np.triu_indices(f, k=1)
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(np.arange(f), (n_perm, 1)), axis=1)  # [n_perm, F]
    # Row 0 is the observed arrangement, so both go through the same arithmetic.
    vb = np.vstack([b[iu, ju], b[perms[:, iu], perms[:, ju]]])  # [1 + n_perm, pairs]
    corr = _rowwise_pearson if method == "pearson" else _rowwise_spearman
    r = corr(a[iu, ju][None, :], vb)
    r_obs, r_perm = r[0], r[1:]
    if not np.isfinite(r_obs):
        return float("nan"), float("nan")
    r_perm = r_perm[np.isfinite(r_perm)]
    extreme = np.count_nonzero(np.abs(r_perm) >= abs(r_obs) * (1 - _REL_TOL))
    return float(r_obs), float((1 + extreme) / (1 + len(r_perm)))


def pairs_to_matrix(df: pd.DataFrame, value: str, features: Sequence[str]) -> np.ndarray:
    """Symmetric [F, F] matrix of column `value` of a pair table (f1, f2), NaN diagonal.

    Rows and columns follow `features`; pairs naming a feature outside `features` are
    ignored, pairs absent from the table stay NaN. A pair listed twice is an error.
    """
    col = {f: j for j, f in enumerate(features)}
    keep = df["f1"].isin(col) & df["f2"].isin(col) & (df["f1"] != df["f2"])
    i = df.loc[keep, "f1"].map(col).to_numpy(dtype=np.int64)
    j = df.loc[keep, "f2"].map(col).to_numpy(dtype=np.int64)
    if len(set(zip(np.minimum(i, j), np.maximum(i, j)))) != len(i):
        raise ValueError(f"the table lists some feature pair more than once ({value})")
    m = np.full((len(col), len(col)), np.nan)
    m[i, j] = m[j, i] = df.loc[keep, value].to_numpy(dtype=np.float64)
    return m


def pair_key(f1, f2) -> list[tuple[str, str]]:
    """Order-free pair keys, so (a, b) in one table matches (b, a) in the other."""
    return [tuple(sorted((str(a), str(b)))) for a, b in zip(f1, f2)]


def attach_scores(superposition: pd.DataFrame, separability: pd.DataFrame) -> pd.DataFrame:
    """The separability table with each pair's S attached (NaN where S is missing)."""
    keys = pair_key(superposition["f1"], superposition["f2"])
    if len(set(keys)) != len(keys):
        raise ValueError("the superposition table lists some feature pair more than once")
    score = dict(zip(keys, superposition["S"].astype(float)))
    out = separability.copy()
    out["S"] = [score.get(k, np.nan) for k in pair_key(out["f1"], out["f2"])]
    return out


def _correlate(
    pairs: pd.DataFrame, metric: str, features: list[str], n_boot: int, n_perm: int, seed: int
) -> dict[str, float]:
    """Every statistic of S against `metric` over the (finite) rows of `pairs`."""
    x, y = pairs["S"].to_numpy(float), pairs[metric].to_numpy(float)
    names = CORRELATION_COLUMNS[4:14]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        log.warning("S vs %s: %d pairs or a constant column; no correlation", metric, len(x))
        return dict.fromkeys(names, np.nan)
    pr, sr = stats.pearsonr(x, y), stats.spearmanr(x, y)
    mantel_r, mantel_p = mantel_test(
        pairs_to_matrix(pairs, "S", features),
        pairs_to_matrix(pairs, metric, features),
        n_perm,
        seed,
    )
    return {
        "pearson_r": float(pr.statistic),
        "pearson_p": float(pr.pvalue),
        "spearman_rho": float(sr.statistic),
        "spearman_p": float(sr.pvalue),
        **bootstrap_ci(x, y, n_boot, seed),
        "mantel_r": mantel_r,
        "mantel_p": mantel_p,
    }


def correlation_table(
    superposition: pd.DataFrame,
    separability: pd.DataFrame,
    feature_kinds: dict[str, str],
    n_boot: int = 10000,
    n_perm: int = 9999,
    seed: int = 0,
    metrics: Sequence[str] = METRICS,
) -> pd.DataFrame:
    """Correlations of S with D and M across feature pairs (METHOD.md section 6).

    `superposition` has f1, f2, S; `separability` has f1, f2, space, D, M (pairs match
    in either order); `feature_kinds` maps every feature to 'shape' | 'color' | 'position'.
    One row per metric (D, M) x space x subset ('all'; 'no_position': pairs of two
    non-position features). `metrics` names other columns to correlate with S instead
    (the binding test's per-pair accuracy, say). Pairs with a non-finite S or metric are
    dropped; with fewer than 3 left the statistics are NaN. The Mantel test uses the
    subset's features.
    """
    joined = attach_scores(superposition, separability)
    named = set(joined["f1"]) | set(joined["f2"])
    unknown = sorted(named - set(feature_kinds))
    if unknown:
        raise ValueError(f"features without a kind in feature_kinds: {unknown}")
    no_pos = ~(joined["f1"].map(feature_kinds).eq("position"))
    no_pos &= ~(joined["f2"].map(feature_kinds).eq("position"))
    rows = []
    for metric in metrics:
        for space in pd.unique(joined["space"]):
            for subset in SUBSETS:
                keep = joined["space"].eq(space) & np.isfinite(joined[["S", metric]]).all(axis=1)
                if subset == "no_position":
                    keep &= no_pos
                pairs = joined[keep]
                used = set(pairs["f1"]) | set(pairs["f2"])
                features = [f for f in feature_kinds if f in used]
                result = _correlate(pairs, metric, features, n_boot, n_perm, seed)
                rows.append(
                    {"metric": metric, "space": space, "subset": subset, "n_pairs": len(pairs)}
                    | result
                    | {"n_boot": n_boot, "n_perm": n_perm}
                )
    table = pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
    return table.astype({"n_pairs": np.int64, "n_boot": np.int64, "n_perm": np.int64})
