"""Does superposition explain separability beyond the pixels? The partial correlation.

The model's M (or D) of a pair and its S are each regressed on the pixel baseline's M (D)
across pairs (ordinary least squares with an intercept, within the subset of pairs
analysed); the residuals are the parts the pixels do not explain, and the statistic is
the partial correlation r(S, M | pixels), the Pearson r of the two residuals. Its
estimate, interval and p-value are of this one quantity. Inference treats *features* as
the unit, because the pairs share features and are not independent:

- p-value: the partial Mantel test (Smouse, Long and Sokal 1986): the features of the
  model's residual are permuted against S's residual; the unpermuted statistic is `r`.
  (Permuting the model's residual against the raw S, the semipartial version, is
  conservative here: the fitted residual is orthogonal to the pixel metric, a permuted one
  is not, and S itself follows the pixels; measured: p-values piled up near 1 on
  structure-free data.)
- interval: a feature bootstrap (features drawn with replacement, all pairs among them)
  that refits both regressions in every resample, so the interval includes the fits'
  uncertainty.

`semipartial_r`, r(S, residual of M), is kept as a column for reference.
Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis.correlation import (
    SUBSETS,
    attach_scores,
    dependence_aware,
    mantel_test,
    pairs_to_matrix,
)
from vlmbinding.analysis.resampling import feature_resamples, resampled_pairs, rowwise_correlation

BEYOND_PIXELS_COLUMNS = [
    "metric",
    "space",
    "subset",
    "n_pairs",
    "slope",
    "intercept",
    "r_model_pixels",
    "pixels_r",
    "pixels_ci_low",
    "pixels_ci_high",
    "pixels_mantel_p",
    "r",
    "semipartial_r",
    "feature_ci_low",
    "feature_ci_high",
    "mantel_p",
    "n_boot",
    "n_perm",
]


def least_squares_residual(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(y - (a + b x), b, a) for the least-squares line of y on x over entries finite in both.

    NaN where y or x is not finite; all-NaN residuals (and NaN a, b) with fewer than 3
    such entries or a constant x.
    """
    y, x = np.asarray(y, float), np.asarray(x, float)
    ok = np.isfinite(x) & np.isfinite(y)
    out = np.full(y.shape, np.nan)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return out, float("nan"), float("nan")
    design = np.column_stack([np.ones(ok.sum()), x[ok]])
    (a, b), *_ = np.linalg.lstsq(design, y[ok], rcond=None)
    out[ok] = y[ok] - (a + b * x[ok])
    return out, float(b), float(a)


def _refit_residuals(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row-wise least-squares residuals of y on x [rows, n] (NaN = missing in either)."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        mx = np.where(ok, x, 0).sum(axis=1, keepdims=True) / n
        my = np.where(ok, y, 0).sum(axis=1, keepdims=True) / n
        xc, yc = np.where(ok, x - mx, 0), np.where(ok, y - my, 0)
        slope = (xc * yc).sum(axis=1, keepdims=True) / (xc**2).sum(axis=1, keepdims=True)
    return np.where(ok, yc - slope * xc, np.nan)


def resampled_partial_correlation(draws, s, model, pixels) -> np.ndarray:
    """r(S, model | pixels) among each row of drawn features [rows, F]: the residuals of S
    and of the model's metric on the pixels' refitted over that row's pairs, correlated.
    The unit drawn is the feature (all pairs among a row's draws)."""
    s_b, m_b = resampled_pairs(s, model, draws)
    p_b, _ = resampled_pairs(pixels, pixels, draws)
    ok = np.isfinite(s_b) & np.isfinite(m_b) & np.isfinite(p_b)
    s_b, m_b, p_b = (np.where(ok, v, np.nan) for v in (s_b, m_b, p_b))
    return rowwise_correlation(_refit_residuals(s_b, p_b), _refit_residuals(m_b, p_b))


def refit_bootstrap_ci(
    s: np.ndarray,
    model: np.ndarray,
    pixels: np.ndarray,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of the partial r(S, model | pixels), resampling *features*.

    `s`, `model`, `pixels`: symmetric [F, F] pair matrices (NaN = missing). Each resample
    draws F features with replacement (numpy default_rng(seed)), takes every pair among
    the draws (two draws of one feature make no pair), refits the least-squares lines of
    the model's metric and of S on the pixels' over those pairs and correlates the two
    residuals (`resampled_partial_correlation`). Undefined resamples are dropped; (NaN,
    NaN) if none is left.
    """
    draws = feature_resamples(s.shape[0], n_boot, np.random.default_rng(seed))
    r = resampled_partial_correlation(draws, s, model, pixels)
    r = r[np.isfinite(r)]
    if not len(r):
        return float("nan"), float("nan")
    low, high = np.percentile(r, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def residual_test(
    s: np.ndarray,
    model: np.ndarray,
    pixels: np.ndarray,
    features: Sequence[str],
    f1: Sequence[str],
    f2: Sequence[str],
    n_boot: int,
    n_perm: int,
    seed: int,
) -> dict[str, float]:
    """S against the residual of `model` on `pixels`, all three given per pair (f1, f2).

    Returns slope and intercept of the model's fit, r_model_pixels (Pearson r of the
    model's metric with the pixels'), r (the partial correlation: Pearson r of S's residual
    with the model's), its feature_ci_low/high (`refit_bootstrap_ci`) and mantel_p (partial
    Mantel test, features permuted), semipartial_r (Pearson r of S with the model's
    residual) and n_pairs (pairs finite in all three).
    """
    s, model, pixels = (np.asarray(v, float) for v in (s, model, pixels))
    ok = np.isfinite(s) & np.isfinite(model) & np.isfinite(pixels)
    s, model, pixels = (np.where(ok, v, np.nan) for v in (s, model, pixels))
    resid, slope, intercept = least_squares_residual(model, pixels)
    resid_s, *_ = least_squares_residual(s, pixels)
    nan = float("nan")
    out = {"slope": slope, "intercept": intercept, "r_model_pixels": nan, "r": nan}
    out["semipartial_r"] = nan
    out |= {"feature_ci_low": nan, "feature_ci_high": nan, "mantel_p": nan}
    out["n_pairs"] = int(ok.sum())
    if ok.sum() < 3 or not np.isfinite(slope):
        return out
    out["r_model_pixels"] = float(np.corrcoef(model[ok], pixels[ok])[0, 1])
    if np.ptp(resid[ok]) > 0 and np.ptp(s[ok]) > 0:
        out["semipartial_r"] = float(np.corrcoef(s[ok], resid[ok])[0, 1])
    if np.ptp(resid[ok]) > 0 and np.ptp(resid_s[ok]) > 0:
        out["r"] = float(np.corrcoef(resid_s[ok], resid[ok])[0, 1])
    table = pd.DataFrame(
        {"f1": list(f1), "f2": list(f2), "S": s, "M": model, "P": pixels}
        | {"resid": resid, "resid_s": resid_s}
    )
    mat = {k: pairs_to_matrix(table, k, features) for k in ("S", "M", "P", "resid", "resid_s")}
    _, out["mantel_p"] = mantel_test(mat["resid_s"], mat["resid"], n_perm, seed)
    out["feature_ci_low"], out["feature_ci_high"] = refit_bootstrap_ci(
        mat["S"], mat["M"], mat["P"], n_boot, seed
    )
    return out


def beyond_pixels_table(
    superposition: pd.DataFrame,
    separability: pd.DataFrame,
    pixel_separability: pd.DataFrame,
    feature_kinds: dict[str, str],
    n_boot: int = 10000,
    n_perm: int = 9999,
    seed: int = 0,
) -> pd.DataFrame:
    """Per metric (D, M) x space x subset: S against the model's metric beyond the pixels.

    `pixels_*`: S against the pixel metric itself (dependence-aware), that is, how far
    the superposition score already tracks what the pixels separate; `r`,
    `feature_ci_*`, `mantel_p`: the partial correlation of S and the metric given the
    pixels, its interval and p (`residual_test`). Subsets as in
    `stats.correlation_table` ('all'; 'no_position'). Pairs missing in any table are
    dropped.
    """
    joined = attach_scores(superposition, separability)
    pix = pixel_separability.set_index(["f1", "f2", "space"])[["D", "M"]]
    pix = pix.rename(columns={"D": "D_pixels", "M": "M_pixels"})
    joined = joined.join(pix, on=["f1", "f2", "space"])
    kind1, kind2 = joined["f1"].map(feature_kinds), joined["f2"].map(feature_kinds)
    no_pos = ~(kind1.eq("position") | kind2.eq("position"))
    rows = []
    for metric in ("D", "M"):
        for space in pd.unique(joined["space"]):
            for subset in SUBSETS:
                cols = ["S", metric, f"{metric}_pixels"]
                keep = joined["space"].eq(space) & np.isfinite(joined[cols]).all(axis=1)
                if subset == "no_position":
                    keep &= no_pos
                pairs = joined[keep]
                used = set(pairs["f1"]) | set(pairs["f2"])
                features = [f for f in feature_kinds if f in used]
                s = pairs["S"].to_numpy(float)
                res = residual_test(
                    s,
                    pairs[metric].to_numpy(float),
                    pairs[f"{metric}_pixels"].to_numpy(float),
                    features,
                    pairs["f1"],
                    pairs["f2"],
                    n_boot,
                    n_perm,
                    seed,
                )
                table = pairs.rename(columns={f"{metric}_pixels": "P"})
                px = dependence_aware(
                    pairs_to_matrix(table, "S", features),
                    pairs_to_matrix(table, "P", features),
                    n_boot,
                    n_perm,
                    seed,
                )
                rows.append(
                    {
                        "metric": metric,
                        "space": space,
                        "subset": subset,
                        "pixels_r": px["r"],
                        "pixels_ci_low": px["feature_ci_low"],
                        "pixels_ci_high": px["feature_ci_high"],
                        "pixels_mantel_p": px["mantel_p"],
                        **res,
                        "n_boot": n_boot,
                        "n_perm": n_perm,
                    }
                )
    return pd.DataFrame(rows, columns=BEYOND_PIXELS_COLUMNS)
