"""Verdicts calibrated against seeds: the trained model against several random-weights twins.

One twin cannot tell "trained" from "another random seed": a statistic that differs from
one twin under neuron (or feature, or image) resampling may differ as much between two
random seeds. With k >= 2 twins (`controls.random_twins`), a statistic survives only when
the trained model's value falls outside the band that the twins predict for one more
random draw:

    twin mean ± sqrt( (t_{k-1} · sd · sqrt(1 + 1/k))^2 + h^2 )

the t-based 95% prediction interval for one more draw from the twins' distribution (the
unit is the twin: its seed is what varies), widened in quadrature by h, the half-width of
the trained model's own 95% interval (its within-model uncertainty, whatever unit that
interval resamples: neurons, features or images). When the trained model is just another
random draw, it falls outside the prediction interval 5% of the time (exactly, for
normally distributed statistics); the added h makes the band wider, so such a model
survives at most about that often (tests/controls/test_twins.py measures it over seeds).

Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95


def prediction_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The t-based prediction interval for one more draw: mean ± t_{k-1} sd sqrt(1 + 1/k).

    `values`: one statistic per twin (the unit is the twin); non-finite values are dropped.
    NaN, NaN for fewer than 2 values (no spread to predict from).
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    k = len(v)
    if k < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf((1 + level) / 2, k - 1) * v.std(ddof=1) * np.sqrt(1 + 1 / k)
    return float(v.mean() - half), float(v.mean() + half)


def twin_band(
    values: Sequence[float], within: float = 0.0, level: float = LEVEL
) -> tuple[float, float]:
    """The band a trained value must fall outside to survive: the prediction interval over
    twins (`prediction_interval`) with `within`, the half-width of the trained model's own
    interval, added in quadrature to its half-width. NaN, NaN for fewer than 2 twins."""
    low, high = prediction_interval(values, level)
    if not np.isfinite(low):
        return low, high
    within = float(within) if np.isfinite(within) else 0.0
    centre, half = (low + high) / 2, np.hypot((high - low) / 2, within)
    return float(centre - half), float(centre + half)


def outside_band(trained: float, values: Sequence[float], within: float = 0.0) -> bool:
    """Whether `trained` falls outside `twin_band(values, within)` (False with < 2 twins)."""
    low, high = twin_band(values, within)
    return bool(np.isfinite(low) and (trained < low or trained > high))


def combine_twin_rows(rows: Sequence[dict], level: float = LEVEL) -> dict:
    """One sanity row from the rows of the trained model against each twin (same statistic).

    With one twin the row is returned as it is (the difference's interval resamples the
    row's unit, against that one twin). With k >= 2: `random` is the twins' mean,
    `random_ci_low/high` the prediction interval for one more twin, `random_sd` their
    spread, `difference` trained minus the twins' mean, and `difference_ci_low/high` the
    difference ± the band's half-width (`twin_band`, the trained model's own interval
    added in quadrature), so the difference's interval excludes 0 exactly when the trained
    value falls outside the band. `random_mantel_p` is the twins' median. `n_twins` says k.
    """
    rows = list(rows)
    out = dict(rows[0])
    out["n_twins"] = len(rows)
    values = np.array([r["random"] for r in rows], float)
    finite = values[np.isfinite(values)]
    out["random_sd"] = float(finite.std(ddof=1)) if len(finite) >= 2 else float("nan")
    if len(rows) < 2:
        return out
    within = (out["trained_ci_high"] - out["trained_ci_low"]) / 2
    low, high = twin_band(values, within, level)
    mean = float(finite.mean()) if len(finite) else float("nan")
    out["random"] = mean
    if not np.isfinite(low):  # fewer than 2 twins with a value: nothing to predict from
        nan = float("nan")
        out.update(random_ci_low=nan, random_ci_high=nan, difference=nan)
        out.update(difference_ci_low=nan, difference_ci_high=nan)
        return out
    out["random_ci_low"], out["random_ci_high"] = prediction_interval(values, level)
    out["difference"] = out["trained"] - mean
    out["difference_ci_low"] = out["difference"] - (high - low) / 2
    out["difference_ci_high"] = out["difference"] + (high - low) / 2
    ps = np.array([r.get("random_mantel_p", np.nan) for r in rows], float)
    out["random_mantel_p"] = float(np.nanmedian(ps)) if np.isfinite(ps).any() else float("nan")
    notes = [r.get("note", "") for r in rows if r.get("note")]
    if notes:
        out["note"] = " | ".join(f"twin {j}: {n}" for j, n in enumerate(notes))
    return out
