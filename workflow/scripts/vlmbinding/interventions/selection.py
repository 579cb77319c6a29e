"""Pair-ratio neuron selection (`select: pair_ratio`), the analysed pairs, per-pair effects.

For a pair (f1, f2), a selected feature neuron's pair ratio is
(a_f1 + a_f2) / sum_f a_f (METHOD.md section 4); `select: pair_ratio` ablates the neurons
with the highest ratio. That ranks a neuron that fires for f1 alone first for every pair
with f1, so it ablates f1's neurons rather than neurons f1 and f2 share; the default,
`select: shared`, is in `shared`. Controls are in `controls`, the statistics over pairs in
`inference`, the forward passes in `ablation`, the loop over pairs in `stage`. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# The measures recomputed under an ablation; a column `d<measure>` holds after - before.
MEASURES = ("D", "M", "D_pca", "M_pca", "binding")


def pair_ratios(feature_neurons: pd.DataFrame, features: Sequence[str], f1: str, f2: str):
    """float64 [neuron]: (a_f1 + a_f2) / sum_f a_f of each selected neuron (NaN if no affinity)."""
    aff = feature_neurons[list(features)].to_numpy(dtype=np.float64)
    col = {f: j for j, f in enumerate(features)}
    with np.errstate(divide="ignore", invalid="ignore"):
        return (aff[:, col[f1]] + aff[:, col[f2]]) / aff.sum(axis=1)


def pair_neurons(
    feature_neurons: pd.DataFrame,
    features: Sequence[str],
    f1: str,
    f2: str,
    n: int,
    threshold: float | None = None,
) -> pd.DataFrame:
    """The pair's neurons: layer, unit, ratio, highest ratio first.

    The top `n` selected feature neurons by pair ratio, or, when `threshold` is given, all
    of them whose ratio exceeds it. A neuron with ratio 0 (or none) never carries the pair.
    Ties go to the lower layer, then the lower unit.
    """
    ratio = pair_ratios(feature_neurons, features, f1, f2)
    table = pd.DataFrame(
        {
            "layer": feature_neurons["layer"].to_numpy(np.int64),
            "unit": feature_neurons["unit"].to_numpy(np.int64),
            "ratio": ratio,
        }
    )
    table = table[np.isfinite(table["ratio"]) & (table["ratio"] > 0)]
    table = table.sort_values(["ratio", "layer", "unit"], ascending=[False, True, True])
    table = table[table["ratio"] > threshold] if threshold is not None else table.head(n)
    return table.reset_index(drop=True)


def by_layer(neurons: pd.DataFrame) -> dict[int, np.ndarray]:
    """layer -> sorted unit indices (the form `ablation` takes)."""
    return {
        int(layer): np.sort(group["unit"].to_numpy(np.int64))
        for layer, group in neurons.groupby("layer", sort=True)
    }


def choose_pairs(superposition: pd.DataFrame, how, seed: int) -> pd.DataFrame:
    """The analysed pairs: all of them, or `how` = n: the top and bottom quarter by S and a
    seeded sample of the rest (f1, f2, S, in S order, highest first)."""
    table = superposition[["f1", "f2", "S"]].sort_values("S", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    if how == "all" or int(how) >= len(table):
        return table
    n = int(how)
    edge = max(1, n // 4)
    chosen = set(range(edge)) | set(range(len(table) - edge, len(table)))
    rest = np.setdiff1d(np.arange(len(table)), sorted(chosen))
    k = max(0, n - len(chosen))
    chosen |= set(np.random.default_rng(seed).choice(rest, size=min(k, len(rest)), replace=False))
    return table.iloc[sorted(chosen)].reset_index(drop=True)


def empirical_p(own: float, controls: np.ndarray) -> float:
    """P-value of the own effect against the control draws: (1 + #{|c| >= |own|}) / (K + 1).

    Two-sided in size ("moves the measure more than random neurons do"). The unit
    resampled is the control draw: under the null the pair's neurons are one more draw of
    the same layers, so the own effect's rank among K + 1 is uniform and p is valid (its
    smallest value is 1 / (K + 1)). NaN without controls or a finite own effect.
    """
    controls = np.asarray(controls, dtype=np.float64)
    controls = controls[np.isfinite(controls)]
    if not np.isfinite(own) or len(controls) == 0:
        return float("nan")
    return float((1 + np.count_nonzero(np.abs(controls) >= abs(own))) / (len(controls) + 1))


def z_score(own: float, controls: np.ndarray) -> float:
    """(own - mean(controls)) / sd(controls) (ddof 1); NaN with < 2 controls or sd 0."""
    controls = np.asarray(controls, dtype=np.float64)
    controls = controls[np.isfinite(controls)]
    if len(controls) < 2 or not np.isfinite(own):
        return float("nan")
    sd = controls.std(ddof=1)
    return float((own - controls.mean()) / sd) if sd > 0 else float("nan")


def effect_columns(measure: str, own: float, controls: Sequence[float]) -> dict[str, float]:
    """d<m>, d<m>_control_mean, _control_sd, _control_abs (mean |effect| of the draws), _z, _p
    of one measure of one pair."""
    c = np.asarray(controls, dtype=np.float64)
    finite = c[np.isfinite(c)]
    return {
        f"d{measure}": float(own),
        f"d{measure}_control_mean": float(finite.mean()) if len(finite) else np.nan,
        f"d{measure}_control_sd": float(finite.std(ddof=1)) if len(finite) > 1 else np.nan,
        f"d{measure}_control_abs": float(np.abs(finite).mean()) if len(finite) else np.nan,
        f"d{measure}_z": z_score(own, c),
        f"d{measure}_p": empirical_p(own, c),
    }
