"""One builder for the sanity table's correlation rows, whatever the score: the study's S or
a measure of sharing (the overlap z, ...), and one way of combining the rows over twins.

A correlation row sets the trained model's dependence-aware r (its correlation table's
Mantel r, feature-level interval and Mantel p) beside its twin's, with the difference
trained minus twin and its interval, features resampled (the same feature draws for both
models: their pairs share features). `twin_table` turns the rows against each twin into
the table: `twins.combine_twin_rows` (a prediction interval over twins when there are
several) and `verdicts.verdict`. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vlmbinding.controls.sanity_resampling import (
    _row,
    feature_bootstrap_difference,
    resampled_correlation,
)
from vlmbinding.controls.twins import combine_twin_rows
from vlmbinding.controls.verdicts import verdict

SANITY_COLUMNS = [
    "statistic",
    "unit",
    "kind",
    "trained",
    "trained_ci_low",
    "trained_ci_high",
    "random",
    "random_ci_low",
    "random_ci_high",
    "pixels",
    "pixels_ci_low",
    "pixels_ci_high",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "trained_mantel_p",
    "random_mantel_p",
    "trained_mde_r",
    "n_twins",
    "random_sd",
    "survives",
    "verdict",
    "note",
]
SUBSET_WORDS = {"all": "all pairs", "no_position": "pairs without a position"}
_NAN3 = (float("nan"),) * 3


def subset_features(feature_kinds: dict[str, str], subset: str) -> list[str]:
    """The features of a subset of pairs, in vocabulary order."""
    if subset == "no_position":
        return [f for f, k in feature_kinds.items() if k != "position"]
    return list(feature_kinds)


def correlation_row(
    statistic: str,
    trained: pd.Series,
    random: pd.Series,
    trained_matrices: Sequence[np.ndarray],
    random_matrices: Sequence[np.ndarray],
    n_boot: int,
    seed: int,
    pixels: Sequence[float] = _NAN3,
) -> dict:
    """One correlation row of the sanity table (kind 'correlation', unit features).

    `trained`, `random`: each model's row of its correlation table (mantel_r,
    feature_ci_low/high: the feature-level interval, mantel_p and, when computed, mde_r);
    `*_matrices`: the [F, F] matrices (score, metric) over the same features, whose
    difference of Pearson r gets a feature-bootstrap interval (features resampled, the
    same draws for both models; numpy default_rng(seed)). `pixels`: (r, low, high) of the
    score against the pixel baseline's metric, NaN when there is none. Verdict columns are
    left to `twin_table`.
    """
    d_ci = feature_bootstrap_difference(
        resampled_correlation, trained_matrices, random_matrices, n_boot, seed
    )
    return {
        "statistic": statistic,
        "unit": "features",
        "kind": "correlation",
        **_row(
            float(trained["mantel_r"]),
            (float(trained["feature_ci_low"]), float(trained["feature_ci_high"])),
            float(random["mantel_r"]),
            (float(random["feature_ci_low"]), float(random["feature_ci_high"])),
            float(trained["mantel_r"] - random["mantel_r"]),
            d_ci,
        ),
        "pixels": float(pixels[0]),
        "pixels_ci_low": float(pixels[1]),
        "pixels_ci_high": float(pixels[2]),
        "trained_mantel_p": float(trained["mantel_p"]),
        "random_mantel_p": float(random["mantel_p"]),
        "trained_mde_r": float(trained.get("mde_r", np.nan)),
    }


def fill_defaults(row: dict) -> dict:
    """The row with the optional columns (pixels, Mantel p, mde_r, note) filled in."""
    for key in ("pixels", "pixels_ci_low", "pixels_ci_high", "trained_mantel_p"):
        row.setdefault(key, float("nan"))
    row.setdefault("random_mantel_p", float("nan"))
    row.setdefault("trained_mde_r", float("nan"))
    row.setdefault("note", "")
    return row


def twin_table(per_twin: Sequence[Sequence[dict]]) -> pd.DataFrame:
    """The sanity table (SANITY_COLUMNS) from the rows against each twin.

    `per_twin[j]` lists the rows of the trained model against twin j, the same statistics
    in the same order for every twin (an error names the first that differs). Each
    statistic's rows are combined by `twins.combine_twin_rows` (the twin is the unit of
    the prediction interval) and judged by `verdicts.verdict`.
    """
    if not per_twin:
        raise ValueError("the sanity table needs at least one random-weights twin")
    first = [r["statistic"] for r in per_twin[0]]
    for j, rows in enumerate(per_twin[1:], start=1):
        other = [r["statistic"] for r in rows]
        if other != first:
            extra = sorted(set(first) ^ set(other)) or "the order"
            raise ValueError(f"the rows against twin {j} differ from twin 0's: {extra}")
    rows = [combine_twin_rows([fill_defaults(r) for r in same]) for same in zip(*per_twin)]
    for row in rows:
        row["survives"], row["verdict"] = verdict(row)
    return pd.DataFrame(rows, columns=SANITY_COLUMNS)
