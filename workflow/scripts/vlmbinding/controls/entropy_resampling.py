"""The entropy statistics' uncertainty over images: half samples of the image set.

A neuron's entropy is computed from its top-k images (METHOD.md 3), so the median entropy
over neurons and the share of neurons under a threshold are statistics of the *image set*:
another draw of images gives other top images and other affinities. The unit resampled
here is the image. Two features make the plain bootstrap fail (its percentile interval
covered 0% of the large-population value in a simulation with n = 400, k = 20):

- the plug-in entropy of affinities from k images is biased (downward, by several
  standard errors at k = 20), and a bootstrap sample, with its repeated images, is more
  biased still;
- neither the bias nor the spread shrinks at the textbook rates (bias ~ k^-1.2 and sd ~
  n^-0.8 in the simulation, not 1/k and 1/sqrt(n)).

So the interval is a half-sample one (McCarthy 1969; subsampling, Politis & Romano 1994):
subsamples of m ~ n/2 images drawn without replacement, each neuron's entropy recomputed
from its top round(k/2) images among them (the same top fraction k/n: the same statistic
at half the size), and the subsamples' spread, rescaled to n, reflected around the full
sample's value. Its target is the statistic's expectation at the study's design (n images,
top k): what another image set of the same size would give on average, the quantity the
twins are measured at too, so that their prediction interval and this within-model
uncertainty add up. The plug-in bias relative to infinitely many images is estimated
(a diagnostic, `half_sample_interval`'s bias) but not removed: removing it with an
estimated rate widened the estimator's spread more than twofold in simulation. Measured
(tests/controls/test_entropy_resampling.py, 200 image sets, n = 200, k = 10): coverage 99%
(median), 99.5% (share), 99% (difference): conservative, not too narrow.
Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from vlmbinding.analysis.neurons import entropy_bits

LEVEL = 0.95
HALVES_COLUMNS = ["draw", "n_images", "m", "top_k", "threshold", "median", "share"]


def half_sample_size(n_images: int, top_k: int) -> tuple[int, int]:
    """(m, k_m): k_m = round(top_k / 2) top images among m = round(n_images k_m / top_k)
    images, so k_m / m is the full sample's top fraction (m = n/2 for an even top_k)."""
    k_m = int(round(top_k / 2))
    m = int(round(n_images * k_m / top_k))
    if not 1 <= k_m < top_k or not k_m <= m < n_images:
        raise ValueError(
            f"top_k={top_k} of {n_images} images has no half sample: the entropy's image "
            "interval needs analysis.top_k >= 2"
        )
    return m, k_m


def image_subsamples(n_images: int, m: int, n_draws: int, seed: int) -> np.ndarray:
    """[n_draws, m] image indices: each row m of the n images drawn without replacement
    (numpy default_rng(seed)). The same seed gives the same images to every model that ran
    on the same images in the same order, so differences between models are paired."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n_draws, n_images)), axis=1)[:, :m]


def subsample_entropies(
    acts: np.ndarray, presence: np.ndarray, rows: np.ndarray, k: int
) -> np.ndarray:
    """[draw, unit] entropy (bits) of each neuron from its top k images among each row's
    images. `acts` [image, unit] (reduced over tokens), `presence` [image, feature],
    `rows` [draw, m] image indices (`image_subsamples`). Ties are broken arbitrarily (the
    neuron table's stable order is not kept: affinities only count features)."""
    acts = np.asarray(acts)
    out = np.empty((len(rows), acts.shape[1]))
    for j, idx in enumerate(rows):
        sub = acts[idx]
        top = idx[np.argpartition(-sub, k - 1, axis=0)[:k]]  # [k, unit] image indices
        aff = presence[top].sum(axis=0, dtype=np.int64) / k  # [unit, feature]
        out[j] = entropy_bits(aff)
    return out


def entropy_statistics(entropies: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Per row of [row, unit] entropies: the median over neurons (NaN entropies dropped)
    and the share of neurons under `threshold` bits (among those with an entropy)."""
    e = np.atleast_2d(np.asarray(entropies, float))
    finite = np.isfinite(e)
    with np.errstate(invalid="ignore"):
        share = (np.where(finite, e, np.inf) < threshold).sum(1) / finite.sum(1)
    return {"median": np.nanmedian(e, axis=1), "share": share}


def half_sample_interval(
    observed: float, halves: np.ndarray, n: int, m: int, level: float = LEVEL
) -> dict[str, float]:
    """Interval of a statistic of n images from its values on subsamples of m images drawn
    without replacement (the unit: the image; `halves`, one value per subsample).

    The subsamples' deviations from their mean, scaled by sqrt(m / (n - m)) (1 for m = n/2:
    a subsample of half the images varies around the full sample's value as much as the
    full sample varies around its expectation, for a statistic with the usual 1/n variance;
    for a faster rate, as the entropy's in simulation, the interval is conservative), are
    reflected around `observed`. Returns estimate (`observed`), ci_low, ci_high, sd (the
    rescaled subsample sd) and bias (mean of the subsamples minus `observed`: the plug-in
    bias at n under a 1/k rate, a diagnostic; not subtracted).
    """
    halves = np.asarray(halves, float)
    halves = halves[np.isfinite(halves)]
    nan = float("nan")
    if len(halves) < 2 or not np.isfinite(observed):
        return {"estimate": nan, "ci_low": nan, "ci_high": nan, "sd": nan, "bias": nan}
    scale = np.sqrt(m / (n - m))
    dev = halves - halves.mean()
    low_q, high_q = np.percentile(dev, [50 * (1 - level), 50 * (1 + level)])
    return {
        "estimate": float(observed),
        "ci_low": float(observed - scale * high_q),
        "ci_high": float(observed - scale * low_q),
        "sd": float(scale * dev.std(ddof=1)),
        "bias": float((halves.mean() - observed) * m / (n - m)),
    }


def half_sample_table(
    acts_by_layer: Iterable[np.ndarray],
    presence: np.ndarray,
    top_k: int,
    threshold: float,
    n_draws: int,
    seed: int,
) -> pd.DataFrame:
    """The median entropy and the share under `threshold` bits over all neurons of the
    given layers, on the full image set (draw -1, top `top_k`) and on `n_draws` half
    samples (draws 0.., `half_sample_size`, `image_subsamples(seed)`: the unit is the
    image; the same seed draws the same images for every model on the same image list).

    In a half sample the share is counted under `threshold` moved by the half samples'
    mean shift of the median (their mean median minus the full sample's): the top k/2
    lowers every entropy, and the share then counts the same part of the entropy
    distribution as the full sample's share (without the move, the share's interval
    covered 90% in simulation; with it, 100%). `acts_by_layer`: [image, unit] activations
    reduced over tokens, one array per layer; `presence` [image, feature]. Columns
    HALVES_COLUMNS.
    """
    n = presence.shape[0]
    m, k_m = half_sample_size(n, top_k)
    rows = image_subsamples(n, m, n_draws, seed)
    full, halves = [], []
    for acts in acts_by_layer:  # one layer at a time: only the entropies are kept
        full.append(subsample_entropies(acts, presence, np.arange(n)[None], top_k))
        halves.append(subsample_entropies(acts, presence, rows, k_m))
    if not full:
        raise ValueError("the entropy's half samples need at least one layer")
    full, halves = np.concatenate(full, axis=1), np.concatenate(halves, axis=1)
    obs = entropy_statistics(full, threshold)
    med = entropy_statistics(halves, threshold)["median"]
    shift = float(np.nanmean(med) - obs["median"][0]) if np.isfinite(med).any() else 0.0
    share = entropy_statistics(halves, threshold + shift)["share"]
    return pd.DataFrame(
        {
            "draw": np.arange(-1, n_draws),
            "n_images": n,
            "m": np.r_[n, np.full(n_draws, m)],
            "top_k": np.r_[top_k, np.full(n_draws, k_m)],
            "threshold": threshold,
            "median": np.r_[obs["median"], med],
            "share": np.r_[obs["share"], share],
        },
        columns=HALVES_COLUMNS,
    )


def half_sample_row(trained: pd.DataFrame, random: pd.DataFrame, value: str) -> dict:
    """A sanity row's numbers for `value` (median or share) from two models' half-sample
    tables (`half_sample_table`, same images and seed: the draws are paired): each
    model's value with its `half_sample_interval`, the difference trained - random with
    the interval of the paired differences draw by draw (the unit: the image)."""
    t, r = (x.sort_values("draw").set_index("draw") for x in (trained, random))
    if not t.index.equals(r.index) or int(t["n_images"].iloc[0]) != int(r["n_images"].iloc[0]):
        raise ValueError("the two half-sample tables were not drawn on the same images")
    n, m = int(t["n_images"].iloc[0]), int(t.loc[t.index >= 0, "m"].iloc[0])
    halves = t.index >= 0
    ti = half_sample_interval(t.loc[-1, value], t.loc[halves, value].to_numpy(), n, m)
    ri = half_sample_interval(r.loc[-1, value], r.loc[halves, value].to_numpy(), n, m)
    diff = (t[value] - r[value]).to_numpy()
    di = half_sample_interval(diff[0], diff[1:], n, m)
    note = (
        f"images resampled: {int(halves.sum())} half samples of {m} of {n} images "
        f"(top {int(t.loc[halves, 'top_k'].iloc[0])} of {int(t.loc[-1, 'top_k'])})"
    )
    if value == "median":
        note += (
            f"; plug-in bias at n (not removed): trained {ti['bias']:+.3g}, twin {ri['bias']:+.3g}"
        )
    return {
        "trained": ti["estimate"],
        "trained_ci_low": ti["ci_low"],
        "trained_ci_high": ti["ci_high"],
        "random": ri["estimate"],
        "random_ci_low": ri["ci_low"],
        "random_ci_high": ri["ci_high"],
        "difference": di["estimate"],
        "difference_ci_low": di["ci_low"],
        "difference_ci_high": di["ci_high"],
        "note": note,
    }
