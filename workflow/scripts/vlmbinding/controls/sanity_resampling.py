"""The resampling behind the sanity table's intervals: neurons, images and features, each the
unit its statistic depends on."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis.resampling import feature_resamples, resampled_pairs, rowwise_correlation
from vlmbinding.controls.beyond_pixels import resampled_partial_correlation

LEVEL = 0.95
_TAILS = [50 * (1 - LEVEL), 50 * (1 + LEVEL)]


def _interval(samples: np.ndarray) -> tuple[float, float]:
    samples = np.asarray(samples, float)
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return float("nan"), float("nan")
    low, high = np.percentile(samples, _TAILS)
    return float(low), float(high)


def _row(t, t_ci, r, r_ci, d, d_ci) -> dict[str, float]:
    return {
        "trained": t,
        "trained_ci_low": t_ci[0],
        "trained_ci_high": t_ci[1],
        "random": r,
        "random_ci_low": r_ci[0],
        "random_ci_high": r_ci[1],
        "difference": d,
        "difference_ci_low": d_ci[0],
        "difference_ci_high": d_ci[1],
    }


def neuron_bootstrap(
    trained: np.ndarray,
    random: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    n_boot: int,
    seed: int,
) -> dict[str, float]:
    """A neuron statistic of each model and their difference, neurons resampled.

    `statistic` maps [rows, n] resampled entropies to one value per row. Each model's
    neurons are drawn with replacement on their own (numpy default_rng(seed)).
    """
    rng = np.random.default_rng(seed)
    t, r = np.asarray(trained, float), np.asarray(random, float)
    bt = statistic(t[rng.integers(0, len(t), (n_boot, len(t)))])
    br = statistic(r[rng.integers(0, len(r), (n_boot, len(r)))])
    obs_t, obs_r = float(statistic(t[None])[0]), float(statistic(r[None])[0])
    return _row(obs_t, _interval(bt), obs_r, _interval(br), obs_t - obs_r, _interval(bt - br))


def image_bootstrap(per_image: pd.DataFrame, n_boot: int, seed: int) -> dict[str, float]:
    """A mean over items (trials, maps) of both models and its difference, images resampled.

    `per_image` has, per image present for both models, sum_trained and n_trained, sum_random
    and n_random (the item values summed, and their count). The statistic is the item mean
    sum / n; a resample draws images with replacement (numpy default_rng(seed)), the same
    images for both models, so the difference is paired.
    """
    rng = np.random.default_rng(seed)
    cols = ["sum_trained", "n_trained", "sum_random", "n_random"]
    st, nt, sr, nr = (per_image[c].to_numpy(float) for c in cols)
    draws = rng.integers(0, len(st), (n_boot, len(st)))
    with np.errstate(invalid="ignore", divide="ignore"):
        bt = st[draws].sum(1) / nt[draws].sum(1)
        br = sr[draws].sum(1) / nr[draws].sum(1)
        obs_t, obs_r = st.sum() / nt.sum(), sr.sum() / nr.sum()
    return _row(
        float(obs_t),
        _interval(bt),
        float(obs_r),
        _interval(br),
        float(obs_t - obs_r),
        _interval(bt - br),
    )


def _per_image(trained: pd.DataFrame, random: pd.DataFrame, value: str) -> pd.DataFrame:
    def agg(df):
        return df.groupby("image_id")[value].agg(["sum", "size"]).astype(float)

    t, r = agg(trained).add_suffix("_t"), agg(random).add_suffix("_r")
    both = t.join(r, how="inner")
    return pd.DataFrame(
        {
            "sum_trained": both["sum_t"],
            "n_trained": both["size_t"],
            "sum_random": both["sum_r"],
            "n_random": both["size_r"],
        }
    )


def feature_bootstrap_difference(
    statistic: Callable[[np.ndarray], np.ndarray],
    trained: Sequence[np.ndarray],
    random: Sequence[np.ndarray],
    n_boot: int,
    seed: int,
) -> tuple[float, float]:
    """Interval of statistic(trained) - statistic(random), features resampled, same draws.

    `trained`, `random`: the [F, F] pair matrices a statistic needs (S first), over the
    same features. `statistic` takes the draws [n_boot, F] and the matrices and returns
    one value per draw.
    """
    draws = feature_resamples(trained[0].shape[0], n_boot, np.random.default_rng(seed))
    return _interval(statistic(draws, *trained) - statistic(draws, *random))


def resampled_correlation(draws, s, x) -> np.ndarray:
    """Pearson r of S and x over all pairs among each row of drawn features."""
    return rowwise_correlation(*resampled_pairs(s, x, draws))


def resampled_residual_correlation(draws, s, model, pixels) -> np.ndarray:
    """The partial r(S, model | pixels) in each draw of features, both fits redone
    (`beyond_pixels.resampled_partial_correlation`: the quantity the beyond-pixels table
    estimates, tests and bootstraps)."""
    return resampled_partial_correlation(draws, s, model, pixels)
