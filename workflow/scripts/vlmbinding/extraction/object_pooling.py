"""What a reduced store keeps for the encoding geometry: each object's pooled patch vector.

The encoding geometry (`vlmbinding.analysis.geometry`, measure 2 of sharing) needs, per
block, one vector per object: the mean over the patch tokens inside the object's box of
(token activation minus that patch position's mean over all images). The mean is linear,
mean_box(x - mu) = mean_box(x) - mean_box(mu), so a reduced store need not hold the tokens:
per block of `layers` (sharing.geometry's blocks) it keeps

  object_patch_mean [object, pooled_unit]  float32: each object's mean over its box's patch
                    tokens of the storage-dtype values (float32 accumulation), rows in the
                    objects table's row order
  patch_mean        [patch, pooled_unit]   float64: each patch position's mean over all images
  object_image      [object]               the image id of each object (checks the table)

with pooled_unit = i * width + unit, i the block's index in the store attribute
`object_pooling.layers`. The reader (`pooled_object_vectors`) subtracts the box mean of
`patch_mean`, which gives `analysis.geometry.object_vectors` of a tokens store to float
rounding. The extraction holds one batch's objects and the per-position sums: memory and
disk O(objects x width) per block, not O(tokens).

Torch-free at import (torch only inside `device_outputs`, which the extraction calls).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from vlmbinding.extraction import store as st

POOLED = "object_patch_mean"
PATCH_MEAN = "patch_mean"
OBJECT_IMAGE = "object_image"
PREFIX = "objects/"  # keys of one batch's device outputs that ObjectPooling.write takes
NOTE = (
    "object_patch_mean: each object's mean over the patch tokens in its box (objects table "
    "row order); patch_mean: each patch position's mean over all images; geometry's object "
    "vector = object_patch_mean - mean over the box of patch_mean; pooled_unit = i * width + "
    "unit, i the block's index in layers"
)


def masks_digest(masks: np.ndarray) -> str:
    """sha256 of a boolean [object, patch] mask matrix (its shape included)."""
    masks = np.asarray(masks, dtype=bool)
    h = hashlib.sha256(str(masks.shape).encode())
    h.update(np.packbits(masks).tobytes())
    return h.hexdigest()


def box_weights(masks: np.ndarray) -> np.ndarray:
    """float64 [object, patch]: each object's mask divided by its number of patches."""
    masks = np.asarray(masks, dtype=np.float64)
    n = masks.sum(axis=1, keepdims=True)
    if (n == 0).any():
        raise ValueError(f"objects with no patch in their box: rows {np.flatnonzero(n == 0)[:5]}")
    return masks / n


class ObjectPooling:
    """The pooling of one extraction: which objects sit in which store row, their box weights
    and the blocks pooled. `device_outputs` computes a batch's pooled vectors and per-position
    sums on the model's device; `write` (the store's writer thread) writes the vectors and
    accumulates the sums; `finish` writes the per-position means and returns the attribute.
    Nothing is random."""

    def __init__(self, masks, image_rows, object_images, layers, n_images: int, crop=None):
        self.masks = np.asarray(masks, dtype=bool)
        self.rows = np.asarray(image_rows, dtype=np.int64)
        self.object_images = [str(i) for i in object_images]
        self.layers = [int(x) for x in layers]
        self.n_images, self.crop = int(n_images), crop
        if not self.layers:
            raise ValueError("object pooling: no block to pool (sharing.geometry.layers)")
        if self.masks.ndim != 2 or len({len(self.masks), len(self.rows), len(object_images)}) > 1:
            raise ValueError("object pooling: masks, image rows and image ids differ in length")
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= self.n_images):
            raise ValueError("object pooling: an object's image row is outside the store")
        self.weights = box_weights(self.masks)
        self.order = np.argsort(self.rows, kind="stable")
        self.sorted_rows = self.rows[self.order]
        self.sums: np.ndarray | None = None
        self.seen = 0

    def batch_objects(self, start: int, stop: int) -> np.ndarray:
        """The object rows (ascending) whose image is in store rows [start, stop)."""
        lo, hi = np.searchsorted(self.sorted_rows, [start, stop])
        return np.sort(self.order[lo:hi])

    def most_per_batch(self, batch: int) -> int:
        """The most objects any batch of `batch` images holds (the padded batch height)."""
        counts = np.bincount(self.rows // max(batch, 1), minlength=1)
        return max(1, int(counts.max()) if len(counts) else 1)

    def create(self, root, batch: int, width: int, codec: str = "none", level: int = 0):
        """The three arrays in an open store group (`store.create_store`)."""
        n, n_patch = self.masks.shape
        units = len(self.layers) * width
        per_chunk = max(1, min(n, -(-batch * n // max(self.n_images, 1))))
        self.width, self.batch = width, batch
        self.height = self.most_per_batch(batch)
        specs = {
            POOLED: ((n, units), (per_chunk, width), "float32", ["object", "pooled_unit"]),
            PATCH_MEAN: ((n_patch, units), (n_patch, width), "float64", ["patch", "pooled_unit"]),
        }
        for name, (shape, chunks, dtype, dims) in specs.items():
            root.create_array(
                name,
                shape=shape,
                chunks=chunks,
                dtype=dtype,
                compressors=st.codecs_for(codec, level, np.dtype(dtype).itemsize),
                fill_value=np.nan,
                dimension_names=dims,
                config={"write_empty_chunks": True},
            )
        ids = root.create_array(
            OBJECT_IMAGE,
            shape=(n,),
            dtype=np.dtypes.StringDType(),
            chunks=(max(n, 1),),
            compressors=st.codecs_for("zstd", 1, 1),
            dimension_names=["object"],
            config={"write_empty_chunks": True},
        )
        ids[:] = np.asarray(self.object_images, dtype=np.dtypes.StringDType())

    def device_outputs(self, layers: list, start: int, n_prefix: int) -> dict:
        """One batch on the model's device, from its per-block outputs [B, token, width] in
        the storage dtype: `objects/pooled` float32 [height, pooled_unit] (the batch's objects
        in ascending row order, zero rows after them: a fixed shape, so host buffers are
        reused) and `objects/sums` float32 [patch, pooled_unit] (sum over the batch's images;
        `write` adds the batches in float64)."""
        import torch

        parts = [layers[b][:, n_prefix:] for b in self.layers]  # [B, patch, width]
        n_img, n_patch = parts[0].shape[:2]
        if n_patch != self.masks.shape[1]:
            raise ValueError(
                f"object pooling: {self.masks.shape[1]} patches, tokens hold {n_patch}"
            )
        idx = self.batch_objects(start, start + n_img)
        # the box weights as a sparse [height, image * patch] matrix: O(objects x width) work
        obj, patch = np.nonzero(self.masks[idx])
        cols = (self.rows[idx][obj] - start) * n_patch + patch
        w = (
            torch.sparse_coo_tensor(
                torch.from_numpy(np.stack([obj, cols])),
                torch.from_numpy(self.weights[idx][obj, patch].astype(np.float32)),
                (self.height, n_img * n_patch),
                check_invariants=False,  # valid by construction
            )
            .coalesce()
            .to(parts[0].device)
        )
        pooled, sums = [], []
        for x in parts:  # one float32 copy per block serves both
            x = x.float()
            pooled.append(torch.sparse.mm(w, x.reshape(n_img * n_patch, -1)))
            sums.append(x.sum(dim=0))  # over <= batch images; batches add up in float64
        return {f"{PREFIX}pooled": torch.cat(pooled, dim=-1), f"{PREFIX}sums": torch.cat(sums, -1)}

    def write(self, arrays: dict, start: int, batch: dict) -> dict:
        """Write a batch's pooled vectors (host copies of `device_outputs`) into the store's
        `arrays`, add its sums; returns the batch without them."""
        batch = dict(batch)
        pooled, sums = batch.pop(f"{PREFIX}pooled"), batch.pop(f"{PREFIX}sums")
        n_img = len(batch["embeddings"])
        idx = self.batch_objects(start, start + n_img)
        self.sums = np.array(sums, np.float64) if self.sums is None else self.sums + sums
        self.seen += n_img
        if len(idx) and idx[-1] - idx[0] + 1 == len(idx):
            arrays[POOLED][idx[0] : idx[-1] + 1] = pooled[: len(idx)]
        elif len(idx):
            arrays[POOLED].oindex[idx, :] = pooled[: len(idx)]
        return batch

    def finish(self, root) -> dict:
        """Write the per-position means; the store attribute `object_pooling`."""
        if self.seen != self.n_images or self.sums is None:
            raise RuntimeError(f"object pooling saw {self.seen} of {self.n_images} images")
        root[PATCH_MEAN][:] = self.sums / self.n_images
        return {
            "object_pooling": {
                "layers": self.layers,
                "n_objects": len(self.rows),
                "crop": self.crop,
                "masks_sha256": masks_digest(self.masks),
                "note": NOTE,
            }
        }


def pooling_for(objects: pd.DataFrame, images: pd.DataFrame, layers, crop: bool, canvas, grid):
    """The ObjectPooling of the objects table over the images table's rows (store order):
    the same masks `measure_geometry` builds (`geometry_stage.object_masks`)."""
    from vlmbinding.analysis.geometry_stage import image_sizes, object_image_rows, object_masks

    objects = objects.reset_index(drop=True)
    ids = images["image_id"].astype(str).tolist()
    masks = object_masks(objects, image_sizes(images, *canvas), crop, list(grid))
    rows = object_image_rows(objects, ids)
    return ObjectPooling(masks, rows, objects["image_id"], layers, len(ids), crop=crop)


def check_pooled_objects(root, objects: pd.DataFrame, masks: np.ndarray) -> dict:
    """The store's `object_pooling` attribute, after checking that it pooled these objects
    with these masks; a StoreError naming the store and the fix otherwise."""
    where = st.store_path(root)
    info = root.attrs.get("object_pooling")
    if not info:
        raise st.StoreError(
            f"{where} is a reduced store without pooled object vectors (written while "
            "sharing.geometry was off); delete it and rerun the workflow with "
            "sharing.geometry.enabled (or use activations.store: tokens)"
        )
    stored = [str(i) for i in st.read(root, OBJECT_IMAGE)]
    if stored != objects["image_id"].astype(str).tolist():
        raise st.StoreError(f"{where}: its pooled objects are not the objects table's; {st.FIX}")
    if info["masks_sha256"] != masks_digest(masks):
        raise st.StoreError(
            f"{where}: its objects were pooled over other patches (boxes, crop or grid "
            f"changed); {st.FIX}"
        )
    return info


def pooled_object_vectors(root, layer: int, masks: np.ndarray) -> np.ndarray:
    """float64 [object, unit] of one block from a reduced store: each object's box mean
    minus the box mean of the per-position means (= `geometry.object_vectors` of the tokens).
    A block the store did not pool is a StoreError naming it and the pooled blocks."""
    layers = [int(x) for x in root.attrs["object_pooling"]["layers"]]
    if int(layer) not in layers:
        raise st.StoreError(
            f"{st.store_path(root)}: block {layer} was not pooled (pooled blocks {layers}: "
            f"sharing.geometry.layers when it was written); {st.FIX}"
        )
    width = int(root.attrs["width"])
    cols = slice(layers.index(int(layer)) * width, (layers.index(int(layer)) + 1) * width)
    raw = st.read(root, POOLED, (slice(None), cols)).astype(np.float64)
    mu = st.read(root, PATCH_MEAN, (slice(None), cols))
    if not (np.isfinite(raw).all() and np.isfinite(mu).all()):
        raise ValueError(f"block {layer}: the pooled object vectors hold non-finite values")
    return raw - box_weights(masks) @ mu


def object_vector_reader(
    root, objects: pd.DataFrame, image_ids: Sequence[str], masks: np.ndarray
) -> Callable[[int], np.ndarray]:
    """layer -> float64 [object, unit], the geometry's object vectors from either store mode:
    the patch tokens of a tokens store (`geometry.object_vectors`), the pooled vectors of a
    reduced one (`pooled_object_vectors`)."""
    from vlmbinding.analysis.geometry import object_vectors
    from vlmbinding.analysis.geometry_stage import object_image_rows

    if root.attrs.get("mode", "tokens") == "tokens":
        rows = object_image_rows(objects.reset_index(drop=True), image_ids)
        prefix = st.n_prefix_tokens(root)
        return lambda layer: object_vectors(st.layer_slice(root, layer)[:, prefix:], rows, masks)
    check_pooled_objects(root, objects.reset_index(drop=True), masks)
    return lambda layer: pooled_object_vectors(root, layer, masks)
