"""The sharing stage's tables: the measures of sharing per pair, and their correlations.

What the workflow writes for every model (`results/<model>/sharing.parquet` and
`sharing_correlation.parquet`) from the measures of `sharing` (co-tuned neuron overlap)
and `conjunctions` (conjunctive versus separate coding of the shared neurons):

* `sharing_table`: one row per pair and measure, in one basis (`neurons` today; an
  autoencoder's latents, `sae`, give the same table from their latent activations), with
  the contract columns f1, f2, measure, basis, layers, value, null_mean, null_sd, z, p.
  A NaN anywhere in value, z or p is an error naming the measure and the pairs.
* `sharing_correlation_table`: each measure's value and z against D and M (and binding
  accuracy) with exactly the statistics the workflow reports for S
  (`correlation.correlation_table`: features as the unit, Mantel p, feature-bootstrap
  interval), plus the additive R^2 of the measure (`sharing.additive_r2`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .conjunctions import conjunction_coding, conjunction_presence
from .correlation import CORRELATION_COLUMNS, correlation_table
from .sharing import additive_r2, neuron_overlap

log = logging.getLogger(__name__)

SHARING_COLUMNS = [
    "f1",
    "f2",
    "measure",
    "basis",
    "layers",
    "value",
    "null_mean",
    "null_sd",
    "z",
    "p",
]
BASES = ("neurons", "sae")
SCORES = ("value", "z")
SHARING_CORRELATION_COLUMNS = [
    "measure",
    "basis",
    "layers",
    "score",
    *CORRELATION_COLUMNS,
    "additive_r2",
]


def layers_label(layers: Sequence[int]) -> str:
    """The layer pool as the `layers` column writes it: block indices joined by ','."""
    return ",".join(str(int(b)) for b in layers)


def pool_activations(read_layer: Callable[[int], np.ndarray], layers: Sequence[int]) -> np.ndarray:
    """float32 [image, neuron] of a layer pool: each block's reduced [image, width] side by
    side, in `layers` order. A block with non-finite activations is an error naming it."""
    if not len(layers):
        raise ValueError("the layer pool is empty (analysis.layers)")
    blocks = []
    for layer in layers:
        acts = np.asarray(read_layer(int(layer)), dtype=np.float32)
        bad = int((~np.isfinite(acts)).any(axis=0).sum())
        if bad:
            raise ValueError(f"layer {layer}: {bad} neurons have non-finite activations")
        blocks.append(acts)
    return np.concatenate(blocks, axis=1)


def object_counts(objects: pd.DataFrame, image_ids: Sequence[str]) -> np.ndarray:
    """int64 [image]: the number of objects of each image, in `image_ids` order."""
    counts = objects.groupby(objects["image_id"].astype(str)).size()
    missing = [i for i in image_ids if i not in counts.index]
    if missing:
        raise ValueError(f"images without objects in the objects table: {missing[:5]}")
    return counts.loc[list(image_ids)].to_numpy(dtype=np.int64)


def check_sharing(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the contract columns in order; an error naming the measure and pairs
    of any row whose value, z or p is NaN, or whose basis is unknown."""
    missing = [c for c in SHARING_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the sharing table lacks the column(s) {missing}")
    unknown = sorted(set(table["basis"]) - set(BASES))
    if unknown:
        raise ValueError(f"basis {unknown} is not one of {BASES}")
    bad = table[table[["value", "z", "p"]].isna().any(axis=1)]
    if len(bad):
        named = [(r.measure, r.f1, r.f2) for r in bad.itertuples()][:10]
        raise ValueError(f"NaN value, z or p in {len(bad)} sharing row(s), e.g. {named}")
    infinite = table[np.isinf(table["z"].to_numpy(float))]
    if len(infinite):
        log.warning(
            "z = +-inf (a null without spread) for %s",
            [(r.measure, r.f1, r.f2) for r in infinite.itertuples()][:10],
        )
    return table[SHARING_COLUMNS].reset_index(drop=True)


def combine_sharing(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The parts of a model's sharing table (named by their file) stacked, contract-checked.

    Each part is one measure's or one basis's rows (`sharing_table` for the neuron basis);
    a pair measured twice in the same measure, basis and layers is an error naming the
    parts, so two parts can never silently stand for one row.
    """
    if not parts:
        raise ValueError("no part of the sharing table to gather")
    tables = [check_sharing(t).assign(_part=name) for name, t in parts.items()]
    table = pd.concat(tables, ignore_index=True)
    key = ["measure", "basis", "layers", "f1", "f2"]
    twice = table[table.duplicated(key, keep=False)]
    if len(twice):
        raise ValueError(
            f"{len(twice)} sharing rows appear in more than one part: "
            f"{sorted(set(twice['_part']))}, e.g. {twice[key].iloc[0].tolist()}"
        )
    return check_sharing(table.drop(columns="_part"))


def sharing_table(
    activations: np.ndarray,
    presence: np.ndarray,
    features: Sequence[str],
    n_objects: np.ndarray,
    *,
    layers: str,
    basis: str = "neurons",
    objects: pd.DataFrame | None = None,
    image_ids: Sequence[str] | None = None,
    colors: Sequence[str] = (),
    shapes: Sequence[str] = (),
    m: int | None = None,
    n_null: int = 1000,
    seed: int = 0,
    decorrelate: bool = True,
    conjunctions: bool = True,
) -> pd.DataFrame:
    """Every measure of sharing of every pair in one basis, as `results/<model>/sharing.parquet`.

    `activations` [image, unit] of the pool (neurons, or latents for basis 'sae'),
    `presence`, `features` and `n_objects` as `sharing.neuron_overlap`; `layers` is the
    pool's label (`layers_label`). measure 'overlap' (every pair: |A_f1 & A_f2| against
    the curveball null, the unit permuted a unit's membership between two features);
    with `conjunctions`, 'conjunctive' and 'separate' for every colour x shape pair
    (`conjunctions.conjunction_coding`, needs `objects`, `image_ids`, `colors`, `shapes`;
    conjunctive's null permutes which images bind the colour to the shape). m, n_null,
    seed and decorrelate are passed to both.
    """
    if basis not in BASES:
        raise ValueError(f"basis={basis!r} is not one of {BASES}")
    shared = {"m": m, "n_null": n_null, "seed": seed, "decorrelate": decorrelate}
    overlap = neuron_overlap(activations, presence, features, n_objects, **shared)
    parts = [overlap.assign(measure="overlap")]
    if conjunctions:
        if objects is None or image_ids is None:
            raise ValueError("conjunction coding needs the objects table and the image ids")
        conj = conjunction_presence(objects, image_ids, colors, shapes)
        coding = conjunction_coding(
            activations, presence, features, n_objects, conj, colors, shapes, **shared
        )
        parts.append(coding.rename(columns={"coding": "measure"}))
    table = pd.concat(parts, ignore_index=True).assign(basis=basis, layers=layers)
    return check_sharing(table)


def stage_sharing_table(
    activations: np.ndarray,
    presence: np.ndarray,
    vocab,
    objects: pd.DataFrame,
    image_ids: Sequence[str],
    *,
    layers: Sequence[int],
    basis: str,
    sharing: dict,
    m: int | None,
    context: str,
) -> pd.DataFrame:
    """`sharing_table` as the stage's rules call it, in one basis of one layer pool.

    The vocabulary (`data.vocab.Vocabulary`) gives the features, colours and shapes; the
    objects table the images' object counts (`object_counts`) and the conjunctions;
    `sharing` is the config's sharing block as `workflow.params.sharing_params` passes it
    (n_null, seed, decorrelate, conjunctions); `m` the tuned-set size of this basis
    (sharing.m, or sharing.sae.m for the autoencoder basis); `layers` the pool's blocks.
    A ValueError (too small a pool, a feature without images, ...) is raised again
    prefixed with `context` (the model, pool and key, as the rule names them).
    """
    try:
        return sharing_table(
            activations,
            presence,
            vocab.features,
            object_counts(objects, image_ids),
            layers=layers_label(layers),
            basis=basis,
            objects=objects,
            image_ids=image_ids,
            colors=vocab.colors,
            shapes=vocab.shapes,
            m=m,
            n_null=sharing["n_null"],
            seed=sharing["seed"],
            decorrelate=sharing["decorrelate"],
            conjunctions=sharing["conjunctions"],
        )
    except ValueError as e:
        raise ValueError(f"{context}: {e}") from e


def _bipartite(pairs: pd.DataFrame, feature_kinds: dict[str, str]) -> bool:
    """Whether every pair joins two kinds (colour x shape): then features are permuted and
    resampled within their kind, so the null keeps the set of pairs."""
    return bool((pairs["f1"].map(feature_kinds) != pairs["f2"].map(feature_kinds)).all())


def sharing_correlation_table(
    sharing: pd.DataFrame,
    separability: pd.DataFrame,
    feature_kinds: dict[str, str],
    *,
    per_pair: pd.DataFrame | None = None,
    n_boot: int = 10000,
    n_perm: int = 9999,
    seed: int = 0,
    power_sims: int = 200,
) -> pd.DataFrame:
    """Each measure's value and z against D and M, with the statistics the workflow uses for S.

    One `correlation.correlation_table` per (measure, basis, layers, score), score 'value'
    or 'z' standing in for S (a measure per block, as the geometry's, gives a row set per
    block; `layers` says which): Mantel r and p (features permuted), the feature-bootstrap interval
    (features resampled) and the conditional pair-level numbers. A measure defined only on
    pairs of two kinds (conjunctive, separate: colour x shape) permutes and resamples
    features within their kind. With `per_pair` (binding/accuracy_per_pair.parquet: f1,
    f2, accuracy), also against binding accuracy (space 'binding', within kind, as
    `correlate_binding`); a measure with no pair in common with it (colour x shape) is
    skipped there, with a log line. additive_r2: the R^2 of the best g(f1) + g(f2) fit of
    the score (`sharing.additive_r2`; S gives 1). mde_r from `power_sims` simulated data
    sets per row (`correlation.correlation_table`).
    """
    rows = []
    settings = {"n_boot": n_boot, "n_perm": n_perm, "seed": seed, "power_sims": power_sims}
    targets = score_targets(sharing, ["measure", "basis", "layers"], separability, per_pair)
    for (measure, basis, layers), group, score, target, binding in targets:
        scores = group[["f1", "f2", score]].rename(columns={score: "S"})
        if not binding:
            within = _bipartite(group, feature_kinds)
            part = correlation_table(scores, target, feature_kinds, within_kind=within, **settings)
        elif set(_pairs(target)) & set(_pairs(scores)):
            part = correlation_table(
                scores, target, feature_kinds, metrics=["accuracy"], within_kind=True, **settings
            )
        else:
            log.info(
                "%s (%s, layers %s): no pair in common with binding accuracy",
                measure,
                basis,
                layers,
            )
            continue
        rows.append(
            part.assign(
                measure=measure,
                basis=basis,
                layers=layers,
                score=score,
                additive_r2=additive_r2(scores, "S"),
            )
        )
    return pd.concat(rows, ignore_index=True)[SHARING_CORRELATION_COLUMNS]


def score_targets(
    sharing: pd.DataFrame,
    keys: Sequence[str],
    separability: pd.DataFrame,
    per_pair: pd.DataFrame | None = None,
):
    """The loop of every table that sets a sharing score against D, M and binding.

    Yields (key, group, score, target, binding): for each group of `sharing` by `keys`
    (in the table's order; key a tuple), each score in SCORES ('value', 'z'), and each
    target table: `separability` (binding False), then with `per_pair` binding accuracy
    as space 'binding' (binding True: a measure of pairs of one kind, so features are
    permuted and resampled within their kind). `sharing_correlation_table` and
    `geometry_beyond.geometry_beyond_table` run it.
    """
    targets = [(separability, False)]
    if per_pair is not None:
        targets.append((per_pair.assign(space="binding"), True))
    for key, group in sharing.groupby(list(keys), sort=False):
        for score in SCORES:
            for target, binding in targets:
                yield key, group, score, target, binding


def _pairs(table: pd.DataFrame) -> list[tuple[str, str]]:
    return [tuple(sorted((str(a), str(b)))) for a, b in zip(table["f1"], table["f2"])]
