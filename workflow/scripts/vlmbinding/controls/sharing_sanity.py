"""The sanity table's rows for the measures of sharing: trained model against its twin.

For r(overlap z, D) and r(overlap z, M): each model's dependence-aware r, its feature
bootstrap interval and Mantel p (from its sharing_correlation table), the difference
trained minus twin with a feature-bootstrap interval (the same feature draws for both
models: their pairs share features), and, where the pixel baseline ran, the trained
model's overlap z against the pixels' D or M (features resampled). The unit resampled is
the feature, as for S (`controls.sanity.correlation_rows`). Torch-free.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlmbinding.analysis.correlation import SUBSETS, attach_scores, pairs_to_matrix
from vlmbinding.analysis.resampling import feature_bootstrap_ci
from vlmbinding.controls.sanity import (
    SANITY_COLUMNS,
    SUBSET_WORDS,
    _row,
    feature_bootstrap_difference,
    resampled_correlation,
    subset_features,
)
from vlmbinding.controls.verdicts import verdict

MEASURE_WORDS = {"overlap": "overlap z", "conjunctive": "conjunctive z", "separate": "separate z"}


def _pick(table: pd.DataFrame, measure, basis, score, metric, space, subset) -> pd.Series:
    hit = table[
        table["measure"].eq(measure)
        & table["basis"].eq(basis)
        & table["score"].eq(score)
        & table["metric"].eq(metric)
        & table["space"].eq(space)
        & table["subset"].eq(subset)
    ]
    if len(hit) != 1:
        raise ValueError(
            f"expected one sharing_correlation row for {measure}/{basis}/{score}/{metric}/"
            f"{space}/{subset}, found {len(hit)}"
        )
    return hit.iloc[0]


def _matrices(sharing, separability, measure, basis, score, space, metric, features):
    """[F, F] matrices of the measure's score (non-finite z as missing) and of the metric."""
    rows = sharing[sharing["measure"].eq(measure) & sharing["basis"].eq(basis)]
    joined = attach_scores(rows.rename(columns={score: "S"}), separability)
    joined = joined[joined["space"].eq(space)]
    joined = joined.assign(S=joined["S"].where(np.isfinite(joined["S"].astype(float))))
    return pairs_to_matrix(joined, "S", features), pairs_to_matrix(joined, metric, features)


def sharing_sanity_rows(
    trained: dict,
    random: dict,
    feature_kinds: dict[str, str],
    space: str = "full",
    n_boot: int = 10000,
    seed: int = 0,
    measure: str = "overlap",
    basis: str = "neurons",
    score: str = "z",
) -> pd.DataFrame:
    """Rows of the sanity table (SANITY_COLUMNS, verdicts included) for one measure.

    `trained` and `random` hold each model's sharing, sharing_correlation and
    separability tables; `trained` may hold pixel_separability (the pixel baseline's
    table), which fills the pixels columns with r(trained measure, pixel D or M).
    """
    rows = []
    pixels_table = trained.get("pixel_separability")
    for metric in ("D", "M"):
        for subset in SUBSETS:
            features = subset_features(feature_kinds, subset)
            args = (measure, basis, score, metric, space, subset)
            ct = _pick(trained["sharing_correlation"], *args)
            cr = _pick(random["sharing_correlation"], *args)
            mt, mr = (
                _matrices(
                    m["sharing"], m["separability"], measure, basis, score, space, metric, features
                )
                for m in (trained, random)
            )
            d_ci = feature_bootstrap_difference(resampled_correlation, mt, mr, n_boot, seed)
            pixels = (np.nan, np.nan, np.nan)
            if pixels_table is not None:
                a, b = _matrices(
                    trained["sharing"], pixels_table, measure, basis, score, space, metric, features
                )
                iu = np.triu_indices(len(features), k=1)
                ok = np.isfinite(a[iu]) & np.isfinite(b[iu])
                if ok.sum() >= 3 and np.ptp(a[iu][ok]) > 0 and np.ptp(b[iu][ok]) > 0:
                    r = float(np.corrcoef(a[iu][ok], b[iu][ok])[0, 1])
                    pixels = (r, *feature_bootstrap_ci(a, b, n_boot, seed))
            row = {
                "statistic": f"r({MEASURE_WORDS.get(measure, measure)}, {metric}), "
                f"{SUBSET_WORDS[subset]}",
                "unit": "features",
                "kind": "correlation",
                **_row(
                    float(ct["mantel_r"]),
                    (ct["feature_ci_low"], ct["feature_ci_high"]),
                    float(cr["mantel_r"]),
                    (cr["feature_ci_low"], cr["feature_ci_high"]),
                    float(ct["mantel_r"] - cr["mantel_r"]),
                    d_ci,
                ),
                "pixels": float(pixels[0]),
                "pixels_ci_low": float(pixels[1]),
                "pixels_ci_high": float(pixels[2]),
                "trained_mantel_p": float(ct["mantel_p"]),
                "random_mantel_p": float(cr["mantel_p"]),
                "trained_mde_r": float(ct.get("mde_r", np.nan)),
                "n_twins": 1,
                "random_sd": np.nan,
                "note": "against the first twin",
            }
            row["survives"], row["verdict"] = verdict(row)
            rows.append(row)
    return pd.DataFrame(rows)[SANITY_COLUMNS]
