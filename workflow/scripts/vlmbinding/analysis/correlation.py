"""Does superposition go with poor separability? Correlations with their uncertainty.

METHOD.md section 6: across feature pairs, correlate the superposition score S with the
embedding separability D and M, with and without the pairs that involve a position. The
120 pairs share 16 features and so are not independent: the headline numbers treat the
feature as the unit, a Mantel test (features permuted) and a bootstrap that resamples
features (`feature_bootstrap_ci`, in `vlmbinding.analysis.resampling`), both optionally within
strata. Pearson and Spearman p-values and the pair-resampling bootstrap are kept, as
conditional numbers (pairs treated as independent).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from vlmbinding.analysis.power import additive_share, minimum_detectable_r
from vlmbinding.analysis.resampling import (
    METHODS,
    _rowwise_pearson,
    _rowwise_spearman,
    feature_bootstrap_ci,
    feature_jackknife_ci,
    feature_permutations,
    rowwise_correlation,
)

__all__ = [
    "feature_bootstrap_ci",
    "feature_jackknife_ci",
    "mantel_test",
    "dependence_aware",
    "correlation_table",
]

log = logging.getLogger(__name__)

METRICS = ("D", "M")
INTERVALS = ("jackknife", "percentile")
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
    "feature_ci_low",
    "feature_ci_high",
    "n_boot",
    "n_perm",
    "mde_r",
]
# Permuted statistics equal to the observed one up to summation order count as "as
# extreme" (the same guard as scipy.stats.permutation_test).
_REL_TOL = 1e-12


def bootstrap_ci(
    x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> dict[str, float]:
    """Percentile bootstrap intervals of Pearson r and Spearman rho (METHOD.md section 6).

    Conditional: it treats the pairs as independent, which pairs sharing features are
    not (`feature_bootstrap_ci` gives the headline interval). Resamples the (x, y) pairs
    with replacement (numpy default_rng(seed)); a resample in which x or y is constant has
    no correlation and is dropped. Keys pearson_ci_low, pearson_ci_high, spearman_ci_low,
    spearman_ci_high; NaN with fewer than 3 pairs.
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
    a: np.ndarray,
    b: np.ndarray,
    n_perm: int,
    seed: int,
    method: str = "pearson",
    strata: Sequence | None = None,
) -> tuple[float, float]:
    """Mantel test of two symmetric [F, F] matrices: (r, two-sided p) (METHOD.md section 6).

    The statistic is the correlation (`method` pearson or spearman) of the upper-triangle
    entries finite in both (NaN = missing pair; the diagonal is ignored). The permuted
    unit is the *feature*: the null relabels the rows and columns of b together by a
    random feature permutation, which keeps every dependence among pairs that share a
    feature. With `strata` (a group label per feature) features are permuted only within
    their group, so a matrix defined only on same-kind pairs (binding accuracy) keeps its
    set of pairs under the null. p = (1 + #{|r_perm| >= |r_obs|}) / (n_perm + 1).
    Permutations whose statistic is undefined (too few finite pairs left) are left out
    of both counts.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape:
        raise ValueError(f"a and b must be square and of one shape, got {a.shape}, {b.shape}")
    f = a.shape[0]
    iu, ju = np.triu_indices(f, k=1)
    perms = feature_permutations(f, n_perm, np.random.default_rng(seed), strata)
    # Row 0 is the observed arrangement, so both go through the same arithmetic.
    vb = np.vstack([b[iu, ju], b[perms[:, iu], perms[:, ju]]])  # [1 + n_perm, pairs]
    r = rowwise_correlation(a[iu, ju][None, :], vb, method)
    r_obs, r_perm = r[0], r[1:]
    if not np.isfinite(r_obs):
        return float("nan"), float("nan")
    r_perm = r_perm[np.isfinite(r_perm)]
    extreme = np.count_nonzero(np.abs(r_perm) >= abs(r_obs) * (1 - _REL_TOL))
    return float(r_obs), float((1 + extreme) / (1 + len(r_perm)))


def dependence_aware(
    a: np.ndarray,
    b: np.ndarray,
    n_boot: int,
    n_perm: int,
    seed: int,
    strata: Sequence | None = None,
    method: str = "pearson",
    interval: str = "jackknife",
) -> dict[str, float]:
    """The headline statistics of two pair matrices, with features as the unit.

    Keys: r (the correlation of the pairs finite in both), feature_ci_low and
    feature_ci_high (95%; `interval` jackknife: `feature_jackknife_ci`, features left out
    one at a time, the default because it keeps its coverage where S is additive; or
    percentile: `feature_bootstrap_ci`, features resampled, all pairs among them, within
    `strata`), mantel_p (`mantel_test`: features permuted, within `strata` when given) and
    n_pairs. Both use `seed`. NaN statistics with fewer than 3 usable pairs.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval={interval!r} is not one of {INTERVALS}")
    a, b = np.asarray(a, float), np.asarray(b, float)
    r, p = mantel_test(a, b, n_perm, seed, method=method, strata=strata)
    iu = np.triu_indices(a.shape[0], k=1)
    n_pairs = int(np.count_nonzero(np.isfinite(a[iu]) & np.isfinite(b[iu])))
    low, high = (np.nan, np.nan)
    if np.isfinite(r):
        if interval == "jackknife":
            low, high = feature_jackknife_ci(a, b, method=method)
        else:
            low, high = feature_bootstrap_ci(a, b, n_boot, seed, method=method, strata=strata)
    return {
        "r": r,
        "feature_ci_low": float(low),
        "feature_ci_high": float(high),
        "mantel_p": p,
        "n_pairs": n_pairs,
    }


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


def attach_scores(
    superposition: pd.DataFrame, separability: pd.DataFrame, columns: Sequence[str] = ("S",)
) -> pd.DataFrame:
    """The separability table with each pair's S (and any other `columns` of the
    superposition table) attached, NaN where the pair is missing."""
    keys = pair_key(superposition["f1"], superposition["f2"])
    if len(set(keys)) != len(keys):
        raise ValueError("the superposition table lists some feature pair more than once")
    out = separability.copy()
    rows = pair_key(out["f1"], out["f2"])
    for col in columns:
        score = dict(zip(keys, superposition[col].astype(float)))
        out[col] = [score.get(k, np.nan) for k in rows]
    return out


def _correlate(
    pairs: pd.DataFrame,
    metric: str,
    features: list[str],
    n_boot: int,
    n_perm: int,
    seed: int,
    strata: list[str] | None = None,
    power_sims: int = 200,
) -> dict[str, float]:
    """Every statistic of S against `metric` over the (finite) rows of `pairs`.

    The pair-level ones (pearson_*, spearman_*) are conditional: they treat the pairs as
    independent. The Mantel p and the feature interval permute/resample features, within
    `strata` (a label per feature) when given. mde_r: `minimum_detectable_r` for these
    features, pairs, strata and the additive shares of S and the metric (`power_sims` data
    sets, seeded by `seed`; 0 skips it).
    """
    x, y = pairs["S"].to_numpy(float), pairs[metric].to_numpy(float)
    names = [*CORRELATION_COLUMNS[4:16], "mde_r"]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        log.warning("S vs %s: %d pairs or a constant column; no correlation", metric, len(x))
        return dict.fromkeys(names, np.nan)
    pr, sr = stats.pearsonr(x, y), stats.spearmanr(x, y)
    a, b = pairs_to_matrix(pairs, "S", features), pairs_to_matrix(pairs, metric, features)
    headline = dependence_aware(a, b, n_boot, n_perm, seed, strata=strata)
    mde = np.nan
    if power_sims:
        mde = minimum_detectable_r(
            len(features),
            np.isfinite(a) & np.isfinite(b),
            strata,
            (additive_share(a), additive_share(b)),
            n_sim=power_sims,
            seed=seed,
        )
    return {
        "pearson_r": float(pr.statistic),
        "pearson_p": float(pr.pvalue),
        "spearman_rho": float(sr.statistic),
        "spearman_p": float(sr.pvalue),
        **bootstrap_ci(x, y, n_boot, seed),
        "mantel_r": headline["r"],
        "mantel_p": headline["mantel_p"],
        "feature_ci_low": headline["feature_ci_low"],
        "feature_ci_high": headline["feature_ci_high"],
        "mde_r": mde,
    }


def correlation_table(
    superposition: pd.DataFrame,
    separability: pd.DataFrame,
    feature_kinds: dict[str, str],
    n_boot: int = 10000,
    n_perm: int = 9999,
    seed: int = 0,
    metrics: Sequence[str] = METRICS,
    within_kind: bool = False,
    power_sims: int = 200,
) -> pd.DataFrame:
    """Correlations of S with D and M across feature pairs (METHOD.md section 6).

    `superposition` has f1, f2, S; `separability` has f1, f2, space, D, M (pairs match
    in either order); `feature_kinds` maps every feature to 'shape' | 'color' | 'position'.
    One row per metric (D, M) x space x subset ('all'; 'no_position': pairs of two
    non-position features). `metrics` names other columns to correlate with S instead
    (the binding test's per-pair accuracy, say). Pairs with a non-finite S or metric are
    dropped; with fewer than 3 left the statistics are NaN.

    Headline (dependence-aware, features as the unit): mantel_r (= pearson_r), mantel_p
    (features permuted) and feature_ci_low/high (Pearson r, jackknife over features), over the
    subset's features. With `within_kind` both permute/resample features only among
    their own kind, for metrics defined only on same-kind pairs (binding accuracy: colour
    pairs and shape pairs). pearson_p/spearman_p and the pair-bootstrap pearson_ci_*/
    spearman_ci_* are conditional: they treat the pairs as independent. mde_r: the smallest
    |r| the row's Mantel test detects with 80% power at alpha 0.05, simulated with the
    row's features, pairs and additive structure (`vlmbinding.analysis.power`; `power_sims`
    simulated data sets, 0 skips it); NaN when no r the structure allows reaches 80%.
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
                strata = [feature_kinds[f] for f in features] if within_kind else None
                result = _correlate(
                    pairs, metric, features, n_boot, n_perm, seed, strata, power_sims
                )
                rows.append(
                    {"metric": metric, "space": space, "subset": subset, "n_pairs": len(pairs)}
                    | result
                    | {"n_boot": n_boot, "n_perm": n_perm}
                )
    table = pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
    return table.astype({"n_pairs": np.int64, "n_boot": np.int64, "n_perm": np.int64})


def mark_primary(table: pd.DataFrame, primary: dict | None) -> pd.DataFrame:
    """The correlation table with `primary` (bool: the row of the one test declared in
    advance, config analysis.primary: measure S, metric, subset, space) and
    `n_comparisons` (the table's rows: every other row is an exploratory comparison among
    them). No row is primary when `primary` is None or names another measure than S."""
    out = table.copy()
    hit = pd.Series(False, index=out.index)
    if primary and primary.get("measure", "S") == "S":
        hit = (
            out["metric"].eq(primary["metric"])
            & out["subset"].eq(primary["subset"])
            & out["space"].eq(primary["space"])
        )
    out["primary"] = hit.astype(bool)
    out["n_comparisons"] = np.int64(len(out))
    return out
