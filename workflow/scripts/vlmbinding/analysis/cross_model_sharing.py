"""The measures of sharing in the cross-model view: every sharing row, per model and pooled.

The sharing table (`results/<model>/sharing.parquet`) holds one set of pair rows per
(measure, basis, layers): the overlap (and conjunctive, separate) in the neuron basis and,
when they ran, in the autoencoder basis, and the encoding geometry's interference and
neuron sharing per block. The cross-model view carries every one of them:

* `sharing_correlation_rows`: per model, each key's r with D and M (the statistics of
  sharing_correlation.parquet: feature-bootstrap interval, Mantel p with features
  permuted), one row per key and metric, naming measure, basis and layers;
* `sharing_pairs_by_key` and `pool_sharing_replicates`: per base model, each key's r
  pooled over the trained replicates with features and seeds resampled together
  (`pooling.pool_replicate_pairs`), so the error of which features were sampled, shared by
  every seed, counts once;
* `sharing_summary`: the wide r_<prefix>_D/M columns of models.tsv (the neuron-basis
  overlap's, which the comparison figure draws).

Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

Key = tuple[str, str, str]  # (measure, basis, layers)
SHARING_SUMMARY_COLUMNS = [
    "model",
    "measure",
    "basis",
    "layers",
    "score",
    "metric",
    "space",
    "subset",
    "pearson_r",
    "feature_ci_low",
    "feature_ci_high",
    "mantel_p",
    "n_pairs",
]
# the order of the measures in the tables: the overlap first (the figures read its rows)
MEASURE_ORDER = ("overlap", "conjunctive", "separate", "neuron_sharing", "interference")
BASIS_ORDER = ("neurons", "sae")


def _row(correlation: pd.DataFrame, metric: str, space: str, subset: str) -> pd.Series | None:
    hit = correlation[
        (correlation["metric"] == metric)
        & (correlation["space"] == space)
        & (correlation["subset"] == subset)
    ]
    return hit.iloc[0] if len(hit) else None


def sharing_keys(table: pd.DataFrame) -> list[Key]:
    """The (measure, basis, layers) of a sharing or sharing_correlation table, ordered by
    measure (MEASURE_ORDER, then others), basis (neurons, sae) and block (ascending)."""
    keys = {
        (str(m), str(b), str(blk))
        for m, b, blk in table[["measure", "basis", "layers"]].itertuples(index=False)
    }

    def rank(key: Key):
        m, b, blk = key
        mr = MEASURE_ORDER.index(m) if m in MEASURE_ORDER else len(MEASURE_ORDER)
        br = BASIS_ORDER.index(b) if b in BASIS_ORDER else len(BASIS_ORDER)
        blocks = tuple(int(x) for x in blk.split(",") if x.strip().lstrip("-").isdigit())
        return (mr, m, br, b, blocks, blk)

    return sorted(keys, key=rank)


def sharing_correlation_rows(
    model: str,
    sharing_correlation: pd.DataFrame,
    space: str = "full",
    subset: str = "no_position",
    score: str = "z",
    metrics: Sequence[str] = ("D", "M"),
) -> pd.DataFrame:
    """One row per (measure, basis, layers) and metric of a model's sharing_correlation
    table: its `score`'s r with the metric in `space` over `subset` (pearson_r, the
    feature-bootstrap interval, the Mantel p with features permuted, n_pairs), as
    SHARING_SUMMARY_COLUMNS. A measure with no pair in `subset` (none today) is left out."""
    rows = []
    table = sharing_correlation[sharing_correlation["score"].eq(score)]
    for measure, basis, layers in sharing_keys(table):
        mine = table[
            table["measure"].eq(measure)
            & table["basis"].eq(basis)
            & table["layers"].astype(str).eq(layers)
        ]
        for metric in metrics:
            row = _row(mine, metric, space, subset)
            if row is None:
                continue
            rows.append(
                {"model": model, "measure": measure, "basis": basis, "layers": layers}
                | {"score": score, "metric": metric, "space": space, "subset": subset}
                | {c: row[c] for c in SHARING_SUMMARY_COLUMNS[8:]}
            )
    return pd.DataFrame(rows, columns=SHARING_SUMMARY_COLUMNS)


def sharing_pairs_by_key(
    sharing: pd.DataFrame,
    separability: pd.DataFrame,
    feature_kinds: dict[str, str],
    space: str = "full",
    subset: str = "no_position",
    score: str = "z",
) -> dict[Key, pd.DataFrame]:
    """Per (measure, basis, layers) of a model's sharing table: its pair table (f1, f2, S,
    D, M; `sharing_pair_table` with S the key's `score`), for pooling over replicates."""
    return {
        key: sharing_pair_table(
            sharing,
            separability,
            feature_kinds,
            space,
            subset,
            measure=key[0],
            basis=key[1],
            score=score,
            layers=key[2],
        )  # fmt: skip
        for key in sharing_keys(sharing)
    }


def pool_sharing_replicates(
    pairs: Mapping[str, Sequence[Mapping[Key, pd.DataFrame]]],
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Every measure of sharing pooled over each base model's trained replicates.

    `pairs` maps a base model to its replicates' `sharing_pairs_by_key`. For each key
    (measure, basis, layers) `pooling.pool_replicate_pairs`: the features drawn once for
    every seed (the pairs among them rebuilt in each) and the seeds drawn with replacement,
    so the shared feature error counts once; the same `seed` for every key. Every replicate
    of a base must have the same keys (an error names a missing one). Columns
    `pooling.SHARED_COLUMNS`, keys in `sharing_keys` order within each base.
    """
    from vlmbinding.analysis.pooling import SHARED_COLUMNS, pool_replicate_pairs

    parts = []
    for base, replicates in pairs.items():
        replicates = list(replicates)
        keys = list(replicates[0]) if replicates else []
        for j, rep in enumerate(replicates):
            if set(rep) != set(keys):
                missing = sorted(set(keys) ^ set(rep))
                raise ValueError(
                    f"replicate {j} of {base!r} has other sharing rows than the first "
                    f"(measure, basis, layers differing: {missing}); rerun them with one config"
                )
        for measure, basis, layers in keys:
            tables = [rep[(measure, basis, layers)] for rep in replicates]
            parts.append(
                pool_replicate_pairs(
                    {base: tables}, n_boot, seed, measure=measure, basis=basis, layers=layers
                )
            )
    if not parts:
        return pd.DataFrame(columns=SHARED_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SHARED_COLUMNS]


def sharing_pair_table(
    sharing: pd.DataFrame,
    separability: pd.DataFrame,
    feature_kinds: dict[str, str],
    space: str = "full",
    subset: str = "no_position",
    measure: str = "overlap",
    basis: str = "neurons",
    score: str = "z",
    layers: str | None = None,
) -> pd.DataFrame:
    """The pairs of `pair_table` with a measure of sharing's score as S (f1, f2, S, D, M).

    Only the sharing table's rows of `measure`, `basis` and block set `layers` (None: the
    measure's only one) are read (other measures, bases and blocks are left alone); a
    non-finite score (a null without spread) leaves its pair out, as the sharing
    correlations do. A measure with rows for several block sets needs `layers`.
    """
    from vlmbinding.analysis.correlation import attach_scores
    from vlmbinding.analysis.specification import subset_pairs

    rows = sharing[sharing["measure"].eq(measure) & sharing["basis"].eq(basis)]
    if layers is not None:
        rows = rows[rows["layers"].astype(str).eq(str(layers))]
    if rows.empty:
        where = "" if layers is None else f", layers {layers!r}"
        raise ValueError(
            f"the sharing table has no rows of measure {measure!r}, basis {basis!r}{where}"
        )
    if layers is None and rows["layers"].nunique() > 1:
        raise ValueError(
            f"measure {measure!r} ({basis}) has rows for layers {sorted(set(rows['layers']))}: "
            "name one"
        )
    joined = attach_scores(rows[["f1", "f2", score]].rename(columns={score: "S"}), separability)
    pairs = subset_pairs(joined, "M", space, subset, feature_kinds)
    pairs = pairs[np.isfinite(pairs[["S", "D", "M"]].astype(float)).all(axis=1)]
    return pairs[["f1", "f2", "S", "D", "M"]]


def sharing_summary(
    sharing_correlation: pd.DataFrame | None,
    space: str = "full",
    subset: str = "no_position",
    measure: str = "overlap",
    basis: str = "neurons",
    score: str = "z",
    prefix: str = "overlap",
) -> dict:
    """r of a measure of sharing with D and M for the cross-model table, beside S's.

    From the model's sharing_correlation table (the statistics used for S: features the
    unit of the bootstrap interval and of the Mantel permutation), its rows of `measure`,
    `basis` and `score` in `space` over `subset`: r_<prefix>_D, _low, _high (the
    feature-bootstrap interval), _mantel_p, and the same for M. NaN without the table.
    """
    out = {}
    table = None
    if sharing_correlation is not None:
        keep = (
            sharing_correlation["measure"].eq(measure)
            & sharing_correlation["basis"].eq(basis)
            & sharing_correlation["score"].eq(score)
        )
        table = sharing_correlation[keep]
    for metric in ("D", "M"):
        row = _row(table, metric, space, subset) if table is not None else None
        for key, col in (
            ("", "pearson_r"),
            ("_low", "feature_ci_low"),
            ("_high", "feature_ci_high"),
            ("_mantel_p", "mantel_p"),
        ):
            out[f"r_{prefix}_{metric}{key}"] = float(row[col]) if row is not None else np.nan
    return out
