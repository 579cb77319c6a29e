"""The sanity table's rows for the measures of sharing: trained model against its twins.

For r(overlap z, D) and r(overlap z, M): the same row as r(S, D) and r(S, M)
(`sanity_rows.correlation_row`: each model's dependence-aware r, its feature-bootstrap
interval and Mantel p from its sharing_correlation table, the difference trained minus twin
with a feature-bootstrap interval, the same feature draws for both models), and, where the
pixel baseline ran, the trained model's overlap z against the pixels' D or M (features
resampled). Rows against several twins are combined as the S rows are
(`sanity_rows.twin_table`: the twins' prediction interval). Only the rows of the
requested measure, basis and layers are read, so a sharing table with other measures or
bases is fine. `sanity_keys` lists the rows the sanity table carries: the overlap in each
basis that ran (neurons; the autoencoder's), and with the encoding geometry its
interference and neuron sharing per block. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis.correlation import SUBSETS, attach_scores, pairs_to_matrix
from vlmbinding.analysis.resampling import feature_bootstrap_ci
from vlmbinding.controls.sanity_rows import (
    SUBSET_WORDS,
    correlation_row,
    subset_features,
    twin_table,
)

MEASURE_WORDS = {
    "overlap": "overlap z",
    "conjunctive": "conjunctive z",
    "separate": "separate z",
    "interference": "iota z",
    "neuron_sharing": "omega z",
}
BASIS_WORDS = {"neurons": "", "sae": " (autoencoder basis)"}
SANITY_BASES = ("neurons", "sae")  # the bases whose overlap rows the sanity table carries
GEOMETRY_MEASURES = ("neuron_sharing", "interference")  # per block, when the geometry ran


def sanity_bases(sharing: pd.DataFrame) -> list[str]:
    """The bases of `sharing` (a sharing.parquet) with overlap rows, in SANITY_BASES order:
    the sanity table has the overlap's rows for each (the neuron basis always first)."""
    present = set(sharing.loc[sharing["measure"].eq("overlap"), "basis"])
    return [b for b in SANITY_BASES if b in present]


def sanity_keys(sharing: pd.DataFrame) -> list[tuple[str, str, str | None]]:
    """(measure, basis, layers) of the rows the sanity table carries for `sharing` (a
    sharing.parquet): the overlap in each basis of SANITY_BASES that ran (layers None: the
    basis's one pool), then the geometry's measures (GEOMETRY_MEASURES) per block, blocks
    ascending, when the table has them."""
    keys: list[tuple[str, str, str | None]] = [("overlap", b, None) for b in sanity_bases(sharing)]
    for measure in GEOMETRY_MEASURES:
        rows = sharing[sharing["measure"].eq(measure) & sharing["basis"].eq("neurons")]
        for layers in sorted(set(rows["layers"].astype(str)), key=_block_order):
            keys.append((measure, "neurons", layers))
    return keys


def _block_order(layers: str) -> tuple[int, ...]:
    return tuple(int(b) for b in layers.split(",") if b.strip().lstrip("-").isdigit())


def _of(table: pd.DataFrame, measure, basis, layers) -> pd.Series:
    """Rows of `measure` in `basis` (and of block set `layers`, unless None)."""
    keep = table["measure"].eq(measure) & table["basis"].eq(basis)
    if layers is not None:
        keep &= table["layers"].astype(str).eq(str(layers))
    return keep


def _pick(
    table: pd.DataFrame, measure, basis, score, metric, space, subset, layers=None
) -> pd.Series:
    hit = table[
        _of(table, measure, basis, layers)
        & table["score"].eq(score)
        & table["metric"].eq(metric)
        & table["space"].eq(space)
        & table["subset"].eq(subset)
    ]
    if len(hit) != 1:
        where = "" if layers is None else f" (layers {layers})"
        raise ValueError(
            f"expected one sharing_correlation row for {measure}/{basis}/{score}/{metric}/"
            f"{space}/{subset}{where}, found {len(hit)}"
        )
    return hit.iloc[0]


def _matrices(sharing, separability, measure, basis, score, space, metric, features, layers=None):
    """[F, F] matrices of the measure's score (non-finite z as missing) and of the metric."""
    rows = sharing[_of(sharing, measure, basis, layers)]
    joined = attach_scores(rows.rename(columns={score: "S"}), separability)
    joined = joined[joined["space"].eq(space)]
    joined = joined.assign(S=joined["S"].where(np.isfinite(joined["S"].astype(float))))
    return pairs_to_matrix(joined, "S", features), pairs_to_matrix(joined, metric, features)


def _pixels(trained, measure, basis, score, space, metric, features, n_boot, seed, layers=None):
    """(r, low, high) of the trained model's score against the pixels' metric, or NaNs."""
    table = trained.get("pixel_separability")
    if table is None:
        return (np.nan, np.nan, np.nan)
    a, b = _matrices(
        trained["sharing"], table, measure, basis, score, space, metric, features, layers
    )
    iu = np.triu_indices(len(features), k=1)
    ok = np.isfinite(a[iu]) & np.isfinite(b[iu])
    if ok.sum() < 3 or np.ptp(a[iu][ok]) == 0 or np.ptp(b[iu][ok]) == 0:
        return (np.nan, np.nan, np.nan)
    r = float(np.corrcoef(a[iu][ok], b[iu][ok])[0, 1])
    return (r, *feature_bootstrap_ci(a, b, n_boot, seed))


def sharing_rows_against(
    trained: dict,
    random: dict,
    feature_kinds: dict[str, str],
    space: str = "full",
    n_boot: int = 10000,
    seed: int = 0,
    measure: str = "overlap",
    basis: str = "neurons",
    score: str = "z",
    layers: str | None = None,
) -> list[dict]:
    """The rows of one measure against one twin (before the verdicts), D and M per subset.

    `trained` and `random` hold each model's sharing, sharing_correlation and separability
    tables; `trained` may hold pixel_separability (the pixel baseline's table), which fills
    the pixels columns with r(trained measure, pixel D or M). `layers` picks one block set
    of a measure with rows per block (the geometry's; the statistic names the block), None
    a measure with one pool.
    """
    rows = []
    for metric in ("D", "M"):
        for subset in SUBSETS:
            features = subset_features(feature_kinds, subset)
            args = (measure, basis, score, metric, space, subset, layers)
            ct = _pick(trained["sharing_correlation"], *args)
            cr = _pick(random["sharing_correlation"], *args)
            mt, mr = (
                _matrices(
                    m["sharing"],
                    m["separability"],
                    measure,
                    basis,
                    score,
                    space,
                    metric,
                    features,
                    layers,
                )  # fmt: skip
                for m in (trained, random)
            )
            pixels = _pixels(
                trained, measure, basis, score, space, metric, features, n_boot, seed, layers
            )
            words = MEASURE_WORDS.get(measure, measure)
            where = "" if layers is None else f", block {layers}"
            statistic = f"r({words}, {metric}), {SUBSET_WORDS[subset]}{BASIS_WORDS[basis]}{where}"
            rows.append(correlation_row(statistic, ct, cr, mt, mr, n_boot, seed, pixels))
    return rows


def sharing_sanity_rows(
    trained: dict,
    random: dict | Sequence[dict],
    feature_kinds: dict[str, str],
    space: str = "full",
    n_boot: int = 10000,
    seed: int = 0,
    measure: str = "overlap",
    basis: str = "neurons",
    score: str = "z",
    layers: str | None = None,
) -> pd.DataFrame:
    """Rows of the sanity table (SANITY_COLUMNS, verdicts included) for one measure, against
    one twin or every twin of a list (combined by `sanity_rows.twin_table`, as the S rows)."""
    twins = [random] if isinstance(random, dict) else list(random)
    settings = {"measure": measure, "basis": basis, "score": score, "layers": layers}
    return twin_table(
        [
            sharing_rows_against(trained, t, feature_kinds, space, n_boot, seed, **settings)
            for t in twins
        ]
    )
