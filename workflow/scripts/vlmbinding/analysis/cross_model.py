"""One row per model for the cross-model view: correlations, binding, entropies."""

from __future__ import annotations

import numpy as np
import pandas as pd

# the measures of sharing's views live beside it (re-exported: compare_models imports them here)
from vlmbinding.analysis.cross_model_sharing import (  # noqa: F401
    sharing_pair_table,
    sharing_summary,
)


def _row(correlation: pd.DataFrame, metric: str, space: str, subset: str) -> pd.Series | None:
    hit = correlation[
        (correlation["metric"] == metric)
        & (correlation["space"] == space)
        & (correlation["subset"] == subset)
    ]
    return hit.iloc[0] if len(hit) else None


def model_summary(
    model: str,
    correlation: pd.DataFrame,
    neurons: pd.DataFrame,
    binding_overall: pd.DataFrame | None = None,
    binding_correlation: pd.DataFrame | None = None,
    zero_shot: pd.DataFrame | None = None,
    space: str = "full",
    subset: str = "no_position",
    pairs: pd.DataFrame | None = None,
) -> dict:
    """The figures of one model that the comparison table and figure show.

    Correlations are S against D and M in `space`, over `subset` of the pairs (by default
    the pairs without positions, as the study plotted them). `pairs` (`pair_table`) adds
    the spread (sd) of S, the mean count of neurons over the ratio threshold and the mean
    D and M over those pairs.
    """
    out: dict = {"model": model, "space": space, "subset": subset}
    for metric in ("D", "M"):
        row = _row(correlation, metric, space, subset)
        for key, col in (
            ("", "pearson_r"),
            ("_low", "feature_ci_low"),  # the interval resamples features, not pairs
            ("_high", "feature_ci_high"),
            ("_rho", "spearman_rho"),
            ("_mantel_p", "mantel_p"),
            ("_feature_low", "feature_ci_low"),
            ("_feature_high", "feature_ci_high"),
        ):
            out[f"r_{metric}{key}"] = float(row.get(col, np.nan)) if row is not None else np.nan
    entropy = neurons["entropy"].to_numpy(float)
    out["neurons"] = int(len(entropy))
    out["median_entropy"] = float(np.nanmedian(entropy)) if len(entropy) else np.nan
    out["min_entropy"] = float(np.nanmin(entropy)) if len(entropy) else np.nan
    out["entropy_p10"] = float(np.nanpercentile(entropy, 10)) if len(entropy) else np.nan
    # S's mean over pairs is fixed by its definition (S(f1, f2) = P(f1) + P(f2), whose mean
    # over all pairs is 2N/F): its spread over pairs and the count of neurons over the ratio
    # threshold are what a model can change.
    have = pairs is not None
    out["sd_S"] = float(pairs["S"].std(ddof=1)) if have else np.nan
    out["mean_n_over_threshold"] = float(pairs["n_over_threshold"].mean()) if have else np.nan
    for col in ("D", "M"):
        out[f"mean_{col}"] = float(pairs[col].mean()) if have else np.nan
    out["binding_accuracy"] = (
        float(binding_overall["accuracy"].iloc[0]) if binding_overall is not None else np.nan
    )
    row = None
    if binding_correlation is not None:
        row = _row(binding_correlation, "accuracy", "binding", "all")
    out["r_binding"] = float(row["pearson_r"]) if row is not None else np.nan
    for attribute in ("color", "shape", "position", "triple"):
        value = np.nan
        if zero_shot is not None:
            # On combinations held out of training, where the table splits seen / unseen.
            unseen = zero_shot["split"].eq("unseen") if "split" in zero_shot else True
            hit = zero_shot.loc[(zero_shot["attribute"] == attribute) & unseen, "accuracy"]
            value = float(hit.iloc[0]) if len(hit) else np.nan
        out[f"zero_shot_{attribute}"] = value
    return out


# --- replicates: a random-effects pool per base model -------------------------------------

POOLED_COLUMNS = [
    "base",
    "metric",
    "k",
    "r_pooled",
    "ci_low",
    "ci_high",
    "tau2",
    "I2",
    "Q",
    "r_mean",
    "r_sd",
    "r_replicates",
    "se_source",
]
_Z95 = 1.959963984540054
_R_MAX = 1 - 1e-12


def fisher_z(r) -> np.ndarray:
    """atanh(r), with |r| capped just below 1 so a perfect correlation stays finite."""
    return np.arctanh(np.clip(np.asarray(r, dtype=float), -_R_MAX, _R_MAX))


def z_standard_error(r_low, r_high, level: float = 0.95) -> np.ndarray:
    """Standard error on the Fisher-z scale read off a (percentile) interval of r.

    (atanh(high) - atanh(low)) / (2 z_{1-(1-level)/2}): the width of the interval, which
    for a normal estimate on the z scale is 2 z_q se. NaN where the interval is missing.
    """
    from scipy.stats import norm

    q = norm.ppf(0.5 + level / 2)
    return (fisher_z(r_high) - fisher_z(r_low)) / (2 * q)


def random_effects(r, se_z, level: float = 0.95) -> dict:
    """DerSimonian-Laird random-effects pool of correlations on the Fisher-z scale.

    `r` the replicates' correlations, `se_z` their standard errors on the z scale (each
    replicate's own uncertainty, here from its feature-bootstrap interval). Weights
    1/(se^2 + tau^2), tau^2 the DerSimonian-Laird between-replicate variance
    max(0, (Q - (k-1)) / (sum w - sum w^2 / sum w)) with fixed-effect weights w = 1/se^2
    and Cochran's Q = sum w (z - z_fe)^2; I^2 = max(0, (Q - (k-1)) / Q), the share of the
    spread beyond what the replicates' own uncertainty explains. Returns r_pooled, ci_low,
    ci_high (tanh of z_re -/+ z_q se_re), tau2, I2, Q, k. Replicates with a missing r or
    se are left out; one replicate gives its own r and interval (tau2, I2, Q NaN).
    """
    from scipy.stats import norm

    r, se = np.asarray(r, float), np.asarray(se_z, float)
    ok = np.isfinite(r) & np.isfinite(se) & (se > 0)
    z, v = fisher_z(r[ok]), se[ok] ** 2
    k = int(ok.sum())
    q = norm.ppf(0.5 + level / 2)
    nan = dict.fromkeys(("r_pooled", "ci_low", "ci_high", "tau2", "I2", "Q"), np.nan)
    if k == 0:
        return nan | {"k": 0}
    if k == 1:
        half = q * np.sqrt(v[0])
        return nan | {
            "r_pooled": float(np.tanh(z[0])),
            "ci_low": float(np.tanh(z[0] - half)),
            "ci_high": float(np.tanh(z[0] + half)),
            "k": 1,
        }
    w = 1 / v
    z_fe = (w * z).sum() / w.sum()
    big_q = float((w * (z - z_fe) ** 2).sum())
    c = w.sum() - (w**2).sum() / w.sum()
    tau2 = max(0.0, (big_q - (k - 1)) / c)
    w_re = 1 / (v + tau2)
    z_re = (w_re * z).sum() / w_re.sum()
    se_re = np.sqrt(1 / w_re.sum())
    i2 = max(0.0, (big_q - (k - 1)) / big_q) if big_q > 0 else 0.0
    return {
        "r_pooled": float(np.tanh(z_re)),
        "ci_low": float(np.tanh(z_re - q * se_re)),
        "ci_high": float(np.tanh(z_re + q * se_re)),
        "tau2": float(tau2),
        "I2": float(i2),
        "Q": big_q,
        "k": k,
    }


def pool_replicates(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per base model and metric: its trained replicates pooled (random effects).

    Not what the workflow reports: the replicates' feature-bootstrap errors are mostly the
    error of which features were sampled, which all seeds share, and this pool divides it by
    sqrt(k) as if independent (too narrow an interval; I^2 = 0 is then mechanical).
    `vlmbinding.analysis.pooling.pool_replicate_pairs` resamples features and seeds together.

    `summary` has one row per model (`model_summary`) with `base` and `role` columns; rows
    of role `trained` are pooled by `base`. A replicate's standard error comes from its
    feature-bootstrap interval (r_<metric>_feature_low/high, dependence-aware) where given,
    else from its pair-bootstrap interval (r_<metric>_low/high, conditional on the pairs
    being independent); `se_source` says which. r_mean and r_sd describe the replicates'
    estimates themselves (sd over replicates, ddof 1).
    """
    rows = []
    missing = sorted({"base", "role"} - set(summary.columns))
    if missing:
        raise ValueError(f"the model summary lacks the columns {missing}")
    for name, group in summary[summary["role"] == "trained"].groupby("base", sort=False):
        for metric in ("D", "M"):
            r = group[f"r_{metric}"].to_numpy(float)
            feature = [f"r_{metric}_feature_low", f"r_{metric}_feature_high"]
            has_feature = all(c in group for c in feature) and bool(
                np.isfinite(group[feature].to_numpy(float)).all()
            )
            cols = feature if has_feature else [f"r_{metric}_low", f"r_{metric}_high"]
            se = z_standard_error(group[cols[0]].to_numpy(float), group[cols[1]].to_numpy(float))
            finite = r[np.isfinite(r)]
            rows.append(
                {"base": name, "metric": metric}
                | random_effects(r, se)
                | {
                    "r_mean": float(finite.mean()) if len(finite) else np.nan,
                    "r_sd": float(finite.std(ddof=1)) if len(finite) > 1 else np.nan,
                    "r_replicates": ",".join(f"{x:.3f}" for x in r),
                    "se_source": "feature bootstrap" if has_feature else "pair bootstrap",
                }
            )
    return pd.DataFrame(rows, columns=POOLED_COLUMNS)


# --- replicates: other statistics over seeds -----------------------------------------------


def pair_table(
    superposition: pd.DataFrame,
    separability: pd.DataFrame,
    feature_kinds: dict[str, str],
    space: str = "full",
    subset: str = "no_position",
) -> pd.DataFrame:
    """S, n_over_threshold, D and M of the pairs `model_summary` correlates (`space`,
    `subset`)."""
    from vlmbinding.analysis.correlation import attach_scores
    from vlmbinding.analysis.specification import subset_pairs

    joined = attach_scores(superposition, separability, ("S", "n_over_threshold"))
    pairs = subset_pairs(joined, "M", space, subset, feature_kinds)
    pairs = pairs[np.isfinite(pairs[["S", "D", "M"]]).all(axis=1)]  # the same pairs for all
    return pairs[["f1", "f2", "S", "n_over_threshold", "D", "M"]]


SEED_STATISTICS = (
    "sd_S",
    "mean_n_over_threshold",
    "mean_D",
    "mean_M",
    "median_entropy",
    "entropy_p10",
    "min_entropy",
    "binding_accuracy",
    "r_binding",
    "zero_shot_triple",
)


def _finite(group: pd.DataFrame, stat: str) -> np.ndarray:
    """The finite values of column `stat` of a base model's replicates (none if absent)."""
    values = group[stat].to_numpy(float) if stat in group else np.array([])
    return values[np.isfinite(values)]


def replicate_means(
    summary: pd.DataFrame, statistics=SEED_STATISTICS, level: float = 0.95
) -> pd.DataFrame:
    """Per base model and statistic: the trained replicates' mean with a t interval over seeds.

    The unit is the replicate (a training or dataset seed): each gives one value of the
    statistic (its median neuron entropy, binding accuracy, ...), and the interval is the
    Student t interval of their mean (k - 1 degrees of freedom), so it says how much the
    statistic moves with the seed (too little when training and dataset seeds are crossed,
    since replicates then share seeds). One replicate gives a mean and no interval.
    Columns base, statistic, k, mean, sd, ci_low, ci_high.
    """
    from scipy import stats as st

    rows = []
    for name, group in summary[summary["role"] == "trained"].groupby("base", sort=False):
        for stat in statistics:
            values = _finite(group, stat)
            k = len(values)
            mean = float(values.mean()) if k else np.nan
            sd = float(values.std(ddof=1)) if k > 1 else np.nan
            half = st.t.ppf(0.5 + level / 2, k - 1) * sd / np.sqrt(k) if k > 1 else np.nan
            rows.append(
                {"base": name, "statistic": stat, "k": k, "mean": mean, "sd": sd}
                | {"ci_low": mean - half, "ci_high": mean + half}
            )
    columns = ["base", "statistic", "k", "mean", "sd", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)


def base_differences(
    summary: pd.DataFrame, statistics=SEED_STATISTICS, level: float = 0.95
) -> pd.DataFrame:
    """Every two base models' difference in each statistic, with a Welch t interval.

    The unit is the replicate (training or dataset seed) of each base: the difference of the
    two bases' replicate means, its Welch-Satterthwaite t interval and two-sided p-value
    (no equal variances assumed; no correction for the many statistics and pairs). Bases
    with fewer than 2 finite replicates give NaN intervals; replicates that all agree give
    the exact difference (interval of width 0, p 0 or 1). Replicates of crossed training
    and dataset seeds share a seed and are not independent: the interval is then too narrow.
    Columns base_a, base_b, statistic, k_a, k_b, mean_a, mean_b, difference
    (a - b), ci_low, ci_high, df, p.
    """
    from itertools import combinations

    from scipy import stats as st

    trained = summary[summary["role"] == "trained"]
    groups = {name: g for name, g in trained.groupby("base", sort=False)}
    rows = []
    for a, b in combinations(groups, 2):
        for stat in statistics:
            va, vb = _finite(groups[a], stat), _finite(groups[b], stat)
            row = {"base_a": a, "base_b": b, "statistic": stat, "k_a": len(va), "k_b": len(vb)}
            row |= {
                "mean_a": va.mean() if len(va) else np.nan,
                "mean_b": vb.mean() if len(vb) else np.nan,
            }
            row["difference"] = row["mean_a"] - row["mean_b"]
            low = high = df = p = np.nan
            if len(va) > 1 and len(vb) > 1:
                qa, qb = va.var(ddof=1) / len(va), vb.var(ddof=1) / len(vb)
                se = np.sqrt(qa + qb)
                if se == 0:  # every replicate of both bases agrees: the difference is exact
                    low = high = row["difference"]
                    p = float(row["difference"] == 0)
                else:
                    df = (qa + qb) ** 2 / (qa**2 / (len(va) - 1) + qb**2 / (len(vb) - 1))
                    half = st.t.ppf(0.5 + level / 2, df) * se
                    low, high = row["difference"] - half, row["difference"] + half
                    p = 2 * st.t.sf(abs(row["difference"]) / se, df)
            rows.append(row | {"ci_low": low, "ci_high": high, "df": df, "p": p})
    columns = [
        "base_a", "base_b", "statistic", "k_a", "k_b", "mean_a", "mean_b",
        "difference", "ci_low", "ci_high", "df", "p",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
