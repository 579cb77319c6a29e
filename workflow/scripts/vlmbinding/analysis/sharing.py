"""Do two features share neurons? Co-tuned neuron overlap with a degree-preserving null.

Issue 22, measure 1. The study's superposition score is additive, S(f1, f2) = P(f1) +
P(f2) (METHOD.md section 4; `neurons.superposition_scores`), so it cannot say whether two
features are carried by the *same* neurons. This measure can:

1. Tuning (`tuning.neuron_tuning`): every neuron's t value for every feature, from one joint
   regression on all features' presence plus the object count, decorrelated by default
   (without that, the design's correlated estimation errors alone make overlap: on the
   paper's 500 images pure-noise neurons give z near +5 for (green, BR) and -2.7 for
   (circle, triangle); see `tuning`).
2. Tuned sets (`tuned_sets`): A_f = the m neurons with the largest t for f (positive
   tuning), m the same for every feature.
3. Overlap C(f1, f2) = |A_f1 & A_f2|, against a null that randomises the neuron x feature
   membership matrix keeping every neuron's number of features and every feature's m
   (curveball trades, `curveball.null_overlaps`). The unit permuted is a neuron's membership
   between two features.

With equal margins (every feature has m neurons) nothing is left for an additive term to
pick up: the null mean of a pair depends only on how the pool's degrees are spread, the
same for every pair, so what varies between pairs is the pair's own sharing
(`additive_r2` reports how additive a table of pair values is).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .curveball import null_overlaps
from .tuning import neuron_tuning

log = logging.getLogger(__name__)

OVERLAP_COLUMNS = ["f1", "f2", "value", "null_mean", "null_sd", "z", "p"]
# Share of the pool in each feature's tuned set by default (see default_m).
DEFAULT_M_FRACTION = 0.02


def default_m(n_neurons: int) -> int:
    """The default tuned-set size m for a pool of n neurons: max(2% of n, ceil(sqrt(n))).

    2% makes A_f the tail of the tuning distribution (for a Gaussian-noise pool, t above
    about 2.05), a share that stays the same as pools grow (492 of ViT-L/14's 24,576 MLP
    output neurons; 205 of its last 10 layers). The sqrt(n) floor keeps the chance overlap
    of two sets, m^2 / n, at one neuron or more in small pools (a toy model's 512 neurons
    get 23 rather than 10), so the count has a null distribution that is not all zeros.
    """
    if n_neurons < 1:
        raise ValueError("the layer pool has no neurons")
    return min(
        n_neurons, max(round(DEFAULT_M_FRACTION * n_neurons), math.ceil(math.sqrt(n_neurons)))
    )


def tuned_sets(t: np.ndarray, m: int, features: Sequence[str] | None = None) -> np.ndarray:
    """Boolean membership [neuron, feature]: the m neurons with the largest t per feature.

    Positive tuning only (largest t, not largest |t|). Ties go to the lower neuron index
    (a stable sort), so the sets are deterministic. Errors name the key `m` when the pool
    is smaller than m, and the feature when its t values are not all finite numbers
    (NaN: a feature present in every image).
    """
    n_neurons, n_feat = t.shape
    names = list(features) if features is not None else [f"feature {j}" for j in range(n_feat)]
    if not 1 <= m <= n_neurons:
        raise ValueError(
            f"m={m} (neurons per feature's tuned set) must be between 1 and the layer pool's "
            f"{n_neurons} neurons"
        )
    bad = [names[j] for j in range(n_feat) if np.isnan(t[:, j]).any()]
    if bad:
        raise ValueError(f"no tuning for feature(s) {bad} (present in every image?)")
    order = np.argsort(-t, axis=0, kind="stable")[:m]  # [m, feature]
    member = np.zeros((n_neurons, n_feat), dtype=bool)
    member[order, np.arange(n_feat)[None, :]] = True
    return member


def overlap_table(member: np.ndarray, features: Sequence[str], null: np.ndarray) -> pd.DataFrame:
    """Observed overlaps of every pair against null overlaps [draw, feature, feature].

    Pairs in feature order (f1 before f2, as `vocab.all_pairs`). z = (value - null_mean) /
    null_sd (sd with ddof 1); p is one-sided upper with the +1 correction,
    (1 + #{null >= value}) / (1 + n_null). A null with no spread gives z = 0 when the value
    equals its mean and +-inf otherwise, with a warning naming the pairs.
    """
    features = list(features)
    m = member.astype(np.float32)
    observed = np.rint(m.T @ m).astype(np.int64)
    i1, i2 = np.triu_indices(len(features), k=1)
    value = observed[i1, i2]
    draws = null[:, i1, i2].astype(np.float64)  # [draw, pair]
    mean = draws.mean(axis=0)
    sd = draws.std(axis=0, ddof=1) if len(draws) > 1 else np.zeros(len(i1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (value - mean) / sd
    flat = sd == 0
    if flat.any():
        z[flat & (value == mean)] = 0.0
        log.warning(
            "the null overlap has no spread for pairs %s: z is 0 or +-inf there",
            [(features[a], features[b]) for a, b in zip(i1[flat], i2[flat])],
        )
    p = (1 + (draws >= value[None, :]).sum(axis=0)) / (1 + len(draws))
    return pd.DataFrame(
        {
            "f1": [features[a] for a in i1],
            "f2": [features[b] for b in i2],
            "value": value,
            "null_mean": mean,
            "null_sd": sd,
            "z": z,
            "p": p,
        },
        columns=OVERLAP_COLUMNS,
    )


def neuron_overlap(
    activations: np.ndarray,
    presence: np.ndarray,
    features: Sequence[str],
    n_objects: np.ndarray,
    *,
    m: int | None = None,
    n_null: int = 1000,
    seed: int = 0,
    conjunctions: np.ndarray | None = None,
    decorrelate: bool = True,
) -> pd.DataFrame:
    """Co-tuned neuron overlap of every feature pair with its degree-preserving null.

    `activations` [image, neuron] (the pool's reduced activations), `presence` boolean
    [image, feature] with columns `features`, `n_objects` the images' object counts.
    m defaults to `default_m` of the pool; `n_null` curveball draws from one chain seeded
    by `seed` (which also fixes the tuning's decorrelation directions); `conjunctions`
    ([image, k] indicators) are fitted jointly as extra regressors, so features' tuning is
    net of them (to split shared neurons into conjunctive and separate coding, use
    `conjunctions.conjunction_coding`, which fits one conjunction at a time);
    `decorrelate=False` gives the plain OLS t values (see `tuning`: then the design's error
    correlations leak into the overlaps). Columns f1, f2, value (|A_f1 & A_f2|),
    null_mean, null_sd, z, p; one row per pair in feature order.
    """
    features = list(features)
    acts = np.asarray(activations)
    if acts.ndim != 2:
        raise ValueError(f"activations must be [image, neuron], got shape {acts.shape}")
    if np.shape(presence) != (acts.shape[0], len(features)):
        raise ValueError(
            f"presence has shape {np.shape(presence)}, expected ({acts.shape[0]}, "
            f"{len(features)}) = (images of activations, features)"
        )
    m = default_m(acts.shape[1]) if m is None else int(m)
    if not 1 <= m <= acts.shape[1]:
        raise ValueError(
            f"m={m} (sharing m, neurons per tuned set) must be between 1 and the layer "
            f"pool's {acts.shape[1]} neurons"
        )
    t = neuron_tuning(
        acts,
        presence,
        n_objects,
        conjunctions,
        features=features,
        decorrelate=decorrelate,
        seed=seed,
    )[:, : len(features)]
    member = tuned_sets(t, m, features)
    null = null_overlaps(member, n_null, seed)
    log.info("neuron overlap: %d neurons, m=%d, %d null draws", acts.shape[1], m, n_null)
    return overlap_table(member, features, null)


def additive_r2(pairs_table: pd.DataFrame, value_col: str) -> float:
    """R^2 of the best least-squares fit value(f1, f2) = g(f1) + g(f2) over the pairs.

    One free g per feature (the constant is absorbed in g). 1 means the pair values hold
    nothing beyond per-feature terms (S is exactly additive: METHOD.md section 4); a
    measure of sharing should fall well below. Rows with a non-finite value are left out
    (with a warning); a table whose values are all equal gives 1 (the fit is exact).
    """
    values = pairs_table[value_col].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        log.warning("additive fit of %s leaves out %d non-finite rows", value_col, (~finite).sum())
    table, values = pairs_table[finite], values[finite]
    feats = sorted(set(table["f1"]) | set(table["f2"]), key=str)
    col = {f: j for j, f in enumerate(feats)}
    design = np.zeros((len(table), len(feats)))
    rows = np.arange(len(table))
    design[rows, table["f1"].map(col).to_numpy()] += 1.0
    design[rows, table["f2"].map(col).to_numpy()] += 1.0
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    tss = float(((values - values.mean()) ** 2).sum())
    rss = float(((values - design @ coef) ** 2).sum())
    return 1.0 if tss == 0 else 1.0 - rss / tss
