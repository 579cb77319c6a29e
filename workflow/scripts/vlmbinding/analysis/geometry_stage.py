"""The geometry part of the sharing table: iota and omega per layer from the store.

Measure 2 of the sharing stage (`geometry`): for each block asked for
(`sharing.geometry.layers`), the patch tokens inside each object's box, each patch
position's mean over the images removed (`geometry.object_vectors`), give one vector per
object; `geometry.encoding_geometry` turns them into interference (iota) and neuron
sharing (omega) per pair, cross-fitted, with a null that permutes neurons within variance
bins. A reduced store holds each object's pooled patch vector instead of the tokens
(`extraction.object_pooling`); the vectors are the same. The rows follow the sharing
table's contract (`sharing_stage.SHARING_COLUMNS`): basis `neurons`, layers the block's
index, one block per row.

Torch-free: the store is read through a callable, so tests plant a store in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis.geometry import (
    encoding_geometry,
    object_labels,
    object_patch_masks,
    object_vectors,
)
from vlmbinding.analysis.sharing_stage import check_sharing
from vlmbinding.data.crop import boxes_in_region, seen_region

log = logging.getLogger(__name__)

GEOMETRY_MEASURES = ("interference", "neuron_sharing")


def image_sizes(images: pd.DataFrame, width: int, height: int) -> dict[str, tuple[int, int]]:
    """Image id -> (width, height): the images table's own columns (a user's dataset), or
    the generated canvas (`dataset.width`, `dataset.height`) for every image."""
    ids = images["image_id"].astype(str)
    if {"width", "height"} <= set(images.columns):
        sizes = zip(images["width"].astype(int), images["height"].astype(int))
        return dict(zip(ids, sizes))
    return dict.fromkeys(ids, (int(width), int(height)))


def object_masks(
    objects: pd.DataFrame,
    sizes: dict[str, tuple[int, int]],
    crop: bool,
    grid: Sequence[int],
) -> np.ndarray:
    """Boolean [object, patch] in the objects table's row order: the patches of the token
    grid whose centre lies in the object's box, the box taken into the region the model
    sees (`crop.seen_region`: the centre square with `crop`, else the whole image)."""
    objects = objects.reset_index(drop=True)
    masks = np.zeros((len(objects), int(grid[0]) * int(grid[1])), dtype=bool)
    ids = objects["image_id"].astype(str)
    missing = sorted(set(ids) - set(sizes))
    if missing:
        raise ValueError(f"objects of images without a size: {missing[:5]}")
    size_of = np.array([sizes[i] for i in ids], dtype=np.int64).reshape(-1, 2)
    for size in np.unique(size_of, axis=0):
        rows = np.flatnonzero((size_of == size).all(axis=1))
        region = seen_region(int(size[0]), int(size[1]), crop)
        boxes = boxes_in_region(objects.iloc[rows], region)[["x0", "y0", "x1", "y1"]]
        extent = (region[2] - region[0], region[3] - region[1])
        masks[rows] = object_patch_masks(boxes.to_numpy(float), extent, tuple(grid))
    return masks


def object_image_rows(objects: pd.DataFrame, image_ids: Sequence[str]) -> np.ndarray:
    """int [object]: the store row of each object's image (`image_ids` in store order)."""
    row = {str(i): n for n, i in enumerate(image_ids)}
    ids = objects["image_id"].astype(str)
    missing = sorted(set(ids) - set(row))
    if missing:
        raise ValueError(f"objects of images that are not in the store: {missing[:5]}")
    return ids.map(row).to_numpy(dtype=np.int64)


def check_feature_objects(
    labels: np.ndarray, features: Sequence[str], layer: int, min_objects: int
) -> None:
    """An error naming the feature and the layer if a feature is on fewer than
    `min_objects` objects, or missing from fewer: its encoding vector (a difference of
    means in each quarter of the images) could not be estimated."""
    have = np.asarray(labels, dtype=bool).sum(axis=0)
    n = len(labels)
    for name, k in zip(features, have):
        if k < min_objects or n - k < min_objects:
            raise ValueError(
                f"layer {layer}: feature {name!r} is on {k} of {n} objects; encoding geometry "
                f"needs at least {min_objects} objects with and without each feature "
                "(add images, or set sharing.geometry.enabled: false)"
            )


def geometry_part(
    read_patches: Callable[[int], np.ndarray] | None,
    layers: Sequence[int],
    objects: pd.DataFrame,
    image_ids: Sequence[str],
    features: Sequence[str],
    masks: np.ndarray,
    *,
    n_null: int = 200,
    n_bins: int = 10,
    seed: int = 0,
    min_objects: int = 8,
    read_vectors: Callable[[int], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Interference and neuron sharing of every pair at each block of `layers`.

    `read_patches(layer)` gives that block's patch tokens [image, patch, unit] in store
    order (`image_ids`), prefix tokens dropped; `objects` the objects table, `masks`
    [object, patch] from `object_masks` in its row order. `read_vectors(layer)`, instead of
    `read_patches`, gives the object vectors [object, unit] themselves (a reduced store's
    pooled vectors: `extraction.object_pooling.object_vector_reader`). Returns the sharing table's
    contract columns, one row per block, pair and measure (basis `neurons`, layers the
    block index as a string). The image groups and the null are seeded by `seed`, the same
    in every block; the unit permuted is the neuron (`geometry.encoding_geometry`). A
    feature with too few objects, or missing from a quarter of the images, is an error
    naming the feature and the layer.
    """
    objects = objects.reset_index(drop=True)
    labels = object_labels(objects, features)
    rows = object_image_rows(objects, image_ids)
    image_of_object = objects["image_id"].astype(str).to_numpy()
    parts = []
    for layer in layers:
        check_feature_objects(labels, features, int(layer), min_objects)
        if read_vectors is not None:
            vectors = read_vectors(int(layer))
        else:
            vectors = object_vectors(read_patches(int(layer)), rows, masks)
        if vectors.shape[0] != len(objects):
            raise ValueError(
                f"layer {layer}: {len(vectors)} object vectors, {len(objects)} objects"
            )
        try:
            table = encoding_geometry(
                vectors,
                labels,
                features,
                image_of_object,
                n_null=n_null,
                n_bins=n_bins,
                seed=seed,
            )
        except ValueError as e:
            raise ValueError(f"layer {layer}: {e}") from e
        log.info("layer %d: %d objects x %d units, %d null draws", layer, *vectors.shape, n_null)
        parts.append(table.assign(basis="neurons", layers=str(int(layer))))
    if not parts:
        raise ValueError("sharing.geometry.layers: no block to measure")
    return check_sharing(pd.concat(parts, ignore_index=True))
