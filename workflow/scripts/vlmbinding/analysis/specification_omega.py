"""The specification curve's `omega` measure: the encoding geometry's neuron sharing z.

For `robustness.measure` including `omega`, every layer pool of the grid gets the sharing
stage's neuron sharing omega (`geometry.encoding_geometry`: each object's mean patch vector
inside its box, the patch position's mean removed; one encoding vector per feature on each
quarter of the images; the cross-fitted overlap of two features' per-neuron energy
profiles; a null that permutes neurons within bins of their variance), computed over the
pool's neurons (every block's units side by side, as the overlap pools them), and its z is
correlated with D and M per space and subset exactly as S is
(`specification_overlap.overlap_specification_table`, measure 'omega').

Only the layer pool is a choice of this measure. top_k and n_neurons are S's (omega uses
every object and every neuron of the pool: the rows carry 0); reduce and tokens are not
either: the object vector is the mean over the patch tokens inside the object's box (the
rows carry reduce 'mean', tokens 'box'), since the CLS token and the patches outside the
box have no object to belong to, and a max over the box would not be the linear encoding
the difference of means estimates. The main analysis's specification is the pool of the
analysed blocks. Torch-free: the store is read through a callable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis.geometry import encoding_geometry, object_labels, object_vectors
from vlmbinding.analysis.geometry_stage import check_feature_objects, object_image_rows
from vlmbinding.analysis.sharing_stage import layers_label

log = logging.getLogger(__name__)

OMEGA_SPEC_COLUMNS = ["layers", "reduce", "tokens", "layer_indices", "f1", "f2", "value", "z"]
# what the object vector is (not choices of this measure): the mean over the box's patches
OMEGA_REDUCE, OMEGA_TOKENS = "mean", "box"


def omega_grid(
    read_patches: Callable[[int], np.ndarray],
    pools: Mapping[str, Sequence[int]],
    objects: pd.DataFrame,
    image_ids: Sequence[str],
    features: Sequence[str],
    masks: np.ndarray,
    *,
    n_null: int = 199,
    n_bins: int = 10,
    seed: int = 0,
    min_objects: int = 8,
) -> pd.DataFrame:
    """The neuron sharing omega (value, z) of every pair under every layer pool:
    OMEGA_SPEC_COLUMNS.

    `read_patches(layer)` gives a block's patch tokens [image, patch, unit] in store order
    (`image_ids`, prefix tokens dropped), read once per block; `objects` the objects table
    and `masks` [object, patch] its patches (`geometry_stage.object_masks`). A pool's object
    vectors are its blocks' side by side. `n_null` draws of the null (the unit permuted: the
    neuron, within `n_bins` variance bins of the pool), the quarters of the images and the
    null seeded by `seed`, the same for every pool. A feature on too few objects is an
    error naming it; a failing pool is an error naming the pool.
    """
    objects = objects.reset_index(drop=True)
    labels = object_labels(objects, features)
    rows = object_image_rows(objects, image_ids)
    image_of_object = objects["image_id"].astype(str).to_numpy()
    blocks = sorted({int(b) for pool in pools.values() for b in pool})
    if not blocks:
        raise ValueError("robustness.measure omega: no layer pool to measure")
    check_feature_objects(labels, features, blocks[0], min_objects)
    cache = {b: object_vectors(read_patches(b), rows, masks) for b in blocks}
    tables = []
    for label, pool in pools.items():
        vectors = np.hstack([cache[int(b)] for b in pool])
        try:
            table = encoding_geometry(
                vectors, labels, features, image_of_object,
                n_null=n_null, n_bins=n_bins, seed=seed,
            )  # fmt: skip
        except ValueError as e:
            raise ValueError(f"robustness.measure omega, layer pool {label!r}: {e}") from e
        table = table[table["measure"].eq("neuron_sharing")]
        tables.append(
            table.assign(
                layers=label,
                reduce=OMEGA_REDUCE,
                tokens=OMEGA_TOKENS,
                layer_indices=layers_label(pool),
            )[OMEGA_SPEC_COLUMNS]
        )
        log.info("omega specifications: pool %s, %d objects x %d units", label, *vectors.shape)
    return pd.concat(tables, ignore_index=True)
