"""Effect statistics of the interventions, with features as the unit.

Pairs share features: every pair with red moves with red's own neurons and images, so
pair effects are clustered by feature and a bootstrap over pairs is too confident (in this
workflow's simulation of pairs that share features it covered the truth 63% of the time).
The statistics here resample or permute *features* (`analysis.resampling`), as the
correlations of S with D and M do:

- the mean excess effect over pairs, with a percentile interval from a feature bootstrap
  (draw the features with replacement, keep the pairs whose two features were both drawn,
  a pair of two draws of one feature left out) and a two-sided bootstrap p (the smallest
  level at which that interval leaves out 0);
- Spearman's rho of the excess with a pair covariate (S, or the shared neurons' count),
  with a feature-bootstrap interval and a Mantel p (features permuted, rows and columns of
  the pair matrix together).

Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis.resampling import feature_resamples

# contrast -> (column of the own effect's reference, in words)
CONTRASTS = {
    "random": "random neurons matched per layer (control draws)",
    "single_feature": "as many f1-only and f2-only neurons (mean of the two)",
    "other_pairs": "the pairs that share no feature with it, under the same ablation",
}
SUMMARY_NOTE = (
    "excess = |own effect| - |reference effect| per pair; unit resampled and permuted: the "
    "feature (bootstrap: features drawn with replacement, pairs kept whose two features were "
    "drawn; p two-sided from that bootstrap; mantel_p permutes features)"
)


def pair_matrix(pairs: pd.DataFrame, values: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Symmetric [feature, feature] matrix of one value per pair (NaN where none)."""
    col = {f: j for j, f in enumerate(features)}
    out = np.full((len(features), len(features)), np.nan)
    if not len(pairs):  # e.g. binding of a tower without a text tower: no finite value
        return out
    i = pairs["f1"].map(col).to_numpy()
    j = pairs["f2"].map(col).to_numpy()
    out[i, j] = out[j, i] = values
    return out


def feature_bootstrap_mean(
    matrix: np.ndarray, n_boot: int, seed: int, level: float = 0.95, strata=None
) -> dict[str, float]:
    """Mean of the pair values with a feature-bootstrap interval and p for "mean = 0".

    The unit resampled is the *feature*: each resample draws the F features with
    replacement (within `strata` when given), takes the pairs among the draws whose value
    is finite (a pair of two draws of one feature is left out) and averages them.
    Returns mean, ci_low, ci_high (percentile) and p = min(1, 2 min(P*(mean* <= 0),
    P*(mean* >= 0))), the smallest level at which the percentile interval leaves out 0
    (never below 1 / n_boot). NaN throughout with fewer than 2 features holding a value.
    """
    a = np.asarray(matrix, dtype=np.float64)
    iu = np.triu_indices(a.shape[0], k=1)
    finite = np.isfinite(a[iu])
    nan = dict.fromkeys(("mean", "ci_low", "ci_high", "p"), float("nan"))
    if finite.sum() < 2:
        return nan
    mean = float(a[iu][finite].mean())
    draws = feature_resamples(a.shape[0], n_boot, np.random.default_rng(seed), strata)
    fi, fj = draws[:, iu[0]], draws[:, iu[1]]
    vals = a[fi, fj]
    ok = np.isfinite(vals) & (fi != fj)
    n = ok.sum(axis=1)
    boot = np.where(ok, vals, 0.0).sum(axis=1)[n > 0] / n[n > 0]
    if not len(boot):
        return nan
    lo, hi = np.percentile(boot, [50 * (1 - level), 50 * (1 + level)])
    tail = min(np.mean(boot <= 0), np.mean(boot >= 0))
    p = float(min(1.0, max(2 * tail, 1 / len(boot))))
    return {"mean": mean, "ci_low": float(lo), "ci_high": float(hi), "p": p}


def association(
    pairs: pd.DataFrame,
    excess: np.ndarray,
    covariate: np.ndarray,
    features: Sequence[str],
    n_boot: int,
    n_perm: int,
    seed: int,
) -> dict[str, float]:
    """Spearman rho of the excess with a pair covariate: feature-bootstrap interval, Mantel p.

    Units: features, resampled (interval) and permuted (Mantel: the same permutation of
    rows and columns of the excess matrix, which keeps every feature's pairs together).
    """
    from vlmbinding.analysis.correlation import _rowwise_spearman, mantel_test
    from vlmbinding.analysis.resampling import feature_bootstrap_ci

    ok = np.isfinite(excess) & np.isfinite(covariate)
    out = dict.fromkeys(("rho", "rho_ci_low", "rho_ci_high", "mantel_p"), float("nan"))
    if ok.sum() < 3:
        return out
    x = pair_matrix(pairs[ok], covariate[ok], features)
    y = pair_matrix(pairs[ok], excess[ok], features)
    out["rho"] = float(_rowwise_spearman(covariate[ok][None], excess[ok][None])[0])
    out["rho_ci_low"], out["rho_ci_high"] = feature_bootstrap_ci(
        x, y, n_boot, seed, method="spearman"
    )
    _, out["mantel_p"] = mantel_test(x, y, n_perm, seed, method="spearman")
    out["mantel_p"] = float(out["mantel_p"])
    return out


def excess_effects(effects: pd.DataFrame, measure: str) -> dict[str, np.ndarray]:
    """Per pair and contrast: |own effect| - |reference effect| (NaN where not measured).

    random: the control draws' mean |effect|; single_feature: the mean of |f1-only| and
    |f2-only| (when those were ablated); other_pairs: the mean |change| of the pairs that
    share no feature (D and M only). Pairs with nothing ablated get NaN.
    """
    own = np.abs(effects[f"d{measure}"].to_numpy(np.float64))
    done = effects["n_neurons"].to_numpy() > 0
    out = {"random": own - effects[f"d{measure}_control_abs"].to_numpy(np.float64)}
    if f"d{measure}_f1_only" in effects and f"d{measure}_f2_only" in effects:
        single = (
            np.abs(effects[f"d{measure}_f1_only"].to_numpy(np.float64))
            + np.abs(effects[f"d{measure}_f2_only"].to_numpy(np.float64))
        ) / 2
        out["single_feature"] = own - single
    if f"d{measure}_others_abs" in effects:
        out["other_pairs"] = own - effects[f"d{measure}_others_abs"].to_numpy(np.float64)
    return {k: np.where(done, v, np.nan) for k, v in out.items()}


def summarise_effects(
    effects: pd.DataFrame,
    features: Sequence[str],
    n_boot: int,
    n_perm: int,
    seed: int,
    measures: Sequence[str] = ("D", "M", "D_pca", "M_pca", "binding"),
    covariate: str = "S",
) -> pd.DataFrame:
    """One row per measure and contrast: do the ablated neurons move it more than the
    reference does, and does that excess grow with `covariate`?

    Contrasts (`CONTRASTS`, those the effects table holds): random control draws, the
    single-feature sets, the pairs that share no feature. Per row: n_pairs (pairs with a
    finite excess), n_features (features in them), the mean |own| and |reference|, the mean
    excess with its feature-bootstrap interval and p (`feature_bootstrap_mean`), Spearman's
    rho of the excess with the covariate with a feature-bootstrap interval and a Mantel p
    (`association`), and for the random contrast the share of pairs beyond every control
    draw (chance 1 / (K + 1)). The unit resampled and permuted is the feature throughout.
    """
    rows = []
    cov = effects[covariate].to_numpy(np.float64)
    for m in measures:
        for contrast, excess in excess_effects(effects, m).items():
            ok = np.isfinite(excess)
            sub = effects[ok]
            feats = sorted(set(sub["f1"]) | set(sub["f2"]))
            own = np.abs(sub[f"d{m}"].to_numpy(np.float64))
            row = {
                "measure": f"d{m}",
                "contrast": contrast,
                "reference": CONTRASTS[contrast],
                "unit": "feature",
                "n_pairs": int(ok.sum()),
                "n_features": len(feats),
                "own_abs_mean": float(own.mean()) if ok.any() else np.nan,
                "reference_abs_mean": float((own - excess[ok]).mean()) if ok.any() else np.nan,
            }
            boot = feature_bootstrap_mean(pair_matrix(sub, excess[ok], features), n_boot, seed)
            row.update({f"excess_{k}" if k != "p" else "excess_p": v for k, v in boot.items()})
            assoc = association(effects, excess, cov, features, n_boot, n_perm, seed)
            row.update(
                covariate=covariate,
                spearman=assoc["rho"],
                spearman_ci_low=assoc["rho_ci_low"],
                spearman_ci_high=assoc["rho_ci_high"],
                mantel_p=assoc["mantel_p"],
            )
            if contrast == "random" and ok.any():
                p = sub[f"d{m}_p"].to_numpy(np.float64)
                k = sub["control_draws"].to_numpy(np.float64)
                row["frac_beyond_all_controls"] = float(np.mean(p <= 1 / (k + 1) + 1e-12))
                row["chance_beyond_all_controls"] = float(np.mean(1 / (k + 1)))
            else:
                row["frac_beyond_all_controls"] = row["chance_beyond_all_controls"] = np.nan
            row["note"] = SUMMARY_NOTE
            rows.append(row)
    return pd.DataFrame(rows)
