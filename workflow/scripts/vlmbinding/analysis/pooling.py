"""Pooling r(S, D) and r(S, M) over seeds, counting the error the seeds share once.

Replicates of one base model (training or dataset seeds) are measured on the same
features, and training seeds on the same images too. Each replicate's feature-bootstrap
error comes mostly from *which features* were sampled, an error all seeds share: a
meta-analysis that weights seeds by those errors as if independent (DerSimonian-Laird,
`cross_model.random_effects`) divides it by sqrt(k) and gives too narrow an interval.

Here one bootstrap resamples both units at once: in each draw the features (with
replacement, the same draw for every seed: the pairs among them are rebuilt in every
replicate) and the seeds (k of the k replicates, with replacement). The pooled r is
tanh of the mean Fisher z over seeds (seeds are exchangeable: equal weights); its interval
the percentile interval of the draws, taken as the hull with the interval of the
features-only bootstrap (every seed kept, features drawn), so it is never narrower than the
shared-feature error alone. The spread between seeds is reported on its own: the sd of r
over seeds and the t interval of their mean (the unit: the seed).

The entropy statistics (median neuron entropy, share under the threshold) are pooled the
same way (`pooled_entropy_over_seeds`), with the image as the shared unit in place of the
feature: each replicate's half samples of the images (`controls.entropy_resampling`) are
drawn from n_images and analysis.seed alone, so half sample j is the same images for every
replicate on one dataset, and draw j is used jointly across seeds.

Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from vlmbinding.analysis.correlation import pairs_to_matrix
from vlmbinding.analysis.resampling import feature_resamples, resampled_pairs, rowwise_correlation
from vlmbinding.controls.entropy_resampling import half_sample_interval

LEVEL = 0.95
_R_MAX = 1 - 1e-12
SHARED_COLUMNS = [
    "base",
    "measure",
    "basis",
    "layers",
    "metric",
    "k",
    "r_pooled",
    "ci_low",
    "ci_high",
    "feature_ci_low",
    "feature_ci_high",
    "r_mean",
    "r_sd",
    "seed_ci_low",
    "seed_ci_high",
    "r_replicates",
]

ENTROPY_COLUMNS = [
    "base",
    "measure",
    "k",
    "n_images",
    "pooled",
    "ci_low",
    "ci_high",
    "image_ci_low",
    "image_ci_high",
    "mean",
    "sd",
    "seed_ci_low",
    "seed_ci_high",
    "replicates",
]


def _z(r):
    return np.arctanh(np.clip(np.asarray(r, float), -_R_MAX, _R_MAX))


def _percentiles(x: np.ndarray, level: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if not len(x):
        return float("nan"), float("nan")
    low, high = np.percentile(x, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def pooled_over_seeds(
    replicates: Sequence[tuple[np.ndarray, np.ndarray]],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> dict:
    """r(S, x) pooled over seeds, with one bootstrap that draws features and seeds.

    `replicates`: per seed, its [F, F] pair matrices of S and x over the *same* F features
    (NaN for a missing pair). Units resampled: the features (one draw shared by all
    seeds, `resampling.feature_resamples`) and the seeds (k drawn with replacement), both
    with numpy default_rng(seed). Returns k, r_pooled (tanh of the mean Fisher z of the
    seeds' r), ci_low/ci_high (the two-unit percentile interval, widened to contain the
    features-only one), feature_ci_low/high (features drawn, every seed kept: the
    shared-feature error alone), r_mean, r_sd (over seeds, ddof 1), seed_ci_low/high
    (Student t interval of the mean r over seeds, k - 1 df; NaN for k < 2), r_replicates.
    """
    reps = [(np.asarray(s, float), np.asarray(x, float)) for s, x in replicates]
    k = len(reps)
    if not k:
        raise ValueError("pooling needs at least one replicate")
    f = reps[0][0].shape[0]
    if any(s.shape != (f, f) or x.shape != (f, f) for s, x in reps):
        raise ValueError("every replicate needs [F, F] matrices over the same F features")
    rng = np.random.default_rng(seed)
    draws = feature_resamples(f, n_boot, rng)
    full = np.arange(f)[None]
    r = np.array([rowwise_correlation(*resampled_pairs(s, x, full))[0] for s, x in reps])
    z_boot = np.stack([_z(rowwise_correlation(*resampled_pairs(s, x, draws))) for s, x in reps])
    # z_boot [k, n_boot]: seed j's Fisher z under feature draw b
    features_only = np.tanh(np.nanmean(z_boot, axis=0))
    pick = rng.integers(0, k, (n_boot, k))  # the seeds drawn in each resample
    both = np.tanh(np.nanmean(z_boot[pick, np.arange(n_boot)[:, None]], axis=1))
    f_low, f_high = _percentiles(features_only, level)
    b_low, b_high = _percentiles(both, level)
    finite = r[np.isfinite(r)]
    mean = float(finite.mean()) if len(finite) else float("nan")
    sd = float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")
    half = (
        stats.t.ppf(0.5 + level / 2, len(finite) - 1) * sd / np.sqrt(len(finite))
        if len(finite) > 1
        else float("nan")
    )
    return {
        "k": k,
        "r_pooled": float(np.tanh(_z(finite).mean())) if len(finite) else float("nan"),
        "ci_low": float(np.fmin(b_low, f_low)),
        "ci_high": float(np.fmax(b_high, f_high)),
        "feature_ci_low": f_low,
        "feature_ci_high": f_high,
        "r_mean": mean,
        "r_sd": sd,
        "seed_ci_low": mean - half,
        "seed_ci_high": mean + half,
        "r_replicates": ",".join(f"{v:.3f}" for v in r),
    }


def pool_replicate_pairs(
    pairs: Mapping[str, Sequence[pd.DataFrame]],
    n_boot: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = ("D", "M"),
    measure: str = "S",
    basis: str = "neurons",
    layers: str = "",
) -> pd.DataFrame:
    """One row per base model and metric: `pooled_over_seeds` of its trained replicates.

    `pairs` maps a base model to its replicates' pair tables (f1, f2, S, D, M: the pairs
    `cross_model.pair_table` correlates; for a measure of sharing, column S holds its
    score, `cross_model.sharing_pair_table`). The features are those every replicate has a
    pair of, in first-seen order; pairs are matched by their features. `measure` names the
    score in the `measure` column, `basis` and `layers` (a block set; empty for S, whose
    pool is the analysis's) where it was measured. Units resampled: features (one draw for
    all seeds) and seeds, as in `pooled_over_seeds`. Columns SHARED_COLUMNS.
    """
    rows = []
    for base, tables in pairs.items():
        tables = list(tables)
        features: list[str] = []
        for t in tables:
            for f in pd.concat([t["f1"], t["f2"]]):
                if f not in features:
                    features.append(f)
        for metric in metrics:
            reps = [(pairs_to_matrix(t, "S", features), pairs_to_matrix(t, metric, features))
                    for t in tables]  # fmt: skip
            key = {"base": base, "measure": measure, "basis": basis, "layers": layers}
            key["metric"] = metric
            rows.append(key | pooled_over_seeds(reps, n_boot, seed))
    return pd.DataFrame(rows, columns=SHARED_COLUMNS)


def _seed_spread(values: np.ndarray, level: float) -> dict:
    """Mean, sd (ddof 1) and Student t interval (k - 1 df) of per-seed values (the unit:
    the seed; NaN values dropped, NaN sd and interval for fewer than 2)."""
    finite = values[np.isfinite(values)]
    nan = float("nan")
    mean = float(finite.mean()) if len(finite) else nan
    if len(finite) < 2:
        return {"mean": mean, "sd": nan, "seed_ci_low": nan, "seed_ci_high": nan}
    sd = float(finite.std(ddof=1))
    half = stats.t.ppf(0.5 + level / 2, len(finite) - 1) * sd / np.sqrt(len(finite))
    return {"mean": mean, "sd": sd, "seed_ci_low": mean - half, "seed_ci_high": mean + half}


def pooled_entropy_over_seeds(
    halves: Sequence[pd.DataFrame],
    value: str,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> dict:
    """An entropy statistic (`value`: median or share) pooled over seeds, with one
    resampling that draws the images and the seeds.

    `halves`: per seed, its half-sample table (`entropy_resampling.half_sample_table`:
    draw -1 the full image set, draws 0.. half samples), all with the same n_images, m,
    top_k, threshold and draws. Units resampled: the images (half sample j, drawn from
    n_images and the seed alone, is the same images for every replicate on one dataset:
    draw j is used jointly across seeds, so the shared image error counts once) and the
    seeds (k of the k replicates with replacement, numpy default_rng(seed)). The pooled
    value is the mean over seeds of each seed's full-sample value. Each replicate's half
    sample deviates from its mean by d_ij, rescaled to n (`half_sample_interval`); a draw
    b picks seeds P_b and one half sample j_b, and the pooled value moves by the mean over
    P_b of (full value + d_ij) minus the pooled value; these moves are reflected around the
    pooled value. ci_low/ci_high: that interval widened to contain image_ci_low/high (every
    seed kept, half samples drawn: the image error alone). mean, sd, seed_ci_low/high: the
    spread between seeds on its own (Student t, k - 1 df). For training seeds (one
    dataset) the image interval is the shared error; for dataset seeds the half samples
    are of other images and the interval is conservative (the image error is counted in
    the seeds' spread too).
    """
    tables = [t.sort_values("draw").set_index("draw") for t in halves]
    if not tables:
        raise ValueError("pooling the entropy needs at least one replicate's half samples")
    first = tables[0]
    for t in tables[1:]:
        same = t.index.equals(first.index) and all(
            t[c].equals(first[c]) for c in ("n_images", "m", "top_k", "threshold")
        )
        if not same:
            raise ValueError(
                "the replicates' entropy half samples were not drawn alike (n_images, m, "
                "top_k, threshold or draws differ): rerun resample_entropy with one config"
            )
    n, m = int(first["n_images"].iloc[0]), int(first.loc[first.index >= 0, "m"].iloc[0])
    full = np.array([float(t.loc[-1, value]) for t in tables])
    h = np.stack([t.loc[t.index >= 0, value].to_numpy(float) for t in tables])  # [k, J]
    k, n_draws = h.shape
    pooled = float(np.nanmean(full)) if np.isfinite(full).any() else float("nan")
    images = half_sample_interval(pooled, np.nanmean(h, axis=0), n, m, level)
    dev = np.sqrt(m / (n - m)) * (h - np.nanmean(h, axis=1, keepdims=True))
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, k, (n_boot, k))
    j = rng.integers(0, n_draws, n_boot)
    moves = np.nanmean(full[pick] + dev[pick, j[:, None]], axis=1) - pooled
    low_q, high_q = _percentiles(moves, level)
    return {
        "k": k,
        "n_images": n,
        "pooled": pooled,
        "ci_low": float(np.fmin(pooled - high_q, images["ci_low"])),
        "ci_high": float(np.fmax(pooled - low_q, images["ci_high"])),
        "image_ci_low": images["ci_low"],
        "image_ci_high": images["ci_high"],
        **_seed_spread(full, level),
        "replicates": ",".join(f"{v:.4g}" for v in full),
    }


def pool_replicate_entropy(
    halves: Mapping[str, Sequence[pd.DataFrame]], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Two rows per base model: its replicates' median entropy and share under the
    threshold, pooled over seeds.

    Measures "median entropy" and "share under <t> bits": `pooled_entropy_over_seeds` of
    the trained replicates' half-sample tables (`halves` maps a base to them). Units
    resampled: the images (one half sample for all seeds) and the seeds. Columns
    ENTROPY_COLUMNS."""
    rows = []
    for base, tables in halves.items():
        tables = list(tables)
        threshold = float(tables[0]["threshold"].iloc[0])
        for value, measure in (("median", "median entropy"),
                               ("share", f"share under {threshold:g} bits")):  # fmt: skip
            pooled = pooled_entropy_over_seeds(tables, value, n_boot, seed)
            rows.append({"base": base, "measure": measure} | pooled)
    return pd.DataFrame(rows, columns=ENTROPY_COLUMNS)
