"""Encoding geometry of features and the neurons it uses, cross-fitted (measure 2 of sharing).

From the patch tokens inside each object's box, one vector per object (`object_vectors`):
the mean over those patches of the layer's MLP output, after each patch position's mean
over all images is removed (so where an object sits on the grid does not masquerade as what
it is). A feature's encoding vector is the mean over the objects that have it minus the
mean over those that do not; in the toy-shapes data an object's colour, shape and position
are drawn independently, so the difference of means is an unbiased estimate of each
feature's own direction.

Everything is estimated twice, on two disjoint halves of the images, and every pair
statistic combines one feature's estimate from one half with the other's from the other
half ("cross-fitting"): the noise of two estimates from the same objects is correlated (a
red square adds to red's and to square's mean), the cross-fitted products are not.

- interference iota(f1, f2): the cross-fitted cosine of the two encoding vectors. At late
  layers this is close to what the embedding separability D measures.
- neuron sharing omega(f1, f2): the cosine of the two features' per-neuron energy profiles,
  high when two features load on the same neurons, whatever the signs. A profile's energy
  on neuron n is the product of two independent estimates, v_f[n] from one quarter of the
  images times v_f[n] from another: unbiased for v_f[n]^2, with noise of mean zero (the
  square of one estimate would add a noise floor that makes every two profiles overlap).
  f1's profile comes from quarters 1 and 2 and f2's from quarters 3 and 4, and the other
  way round, averaged: no two estimates in a product or a cosine share an image.

Null (both): the neurons of f2's vectors are permuted within bins of neuron variance
(quantiles of the per-neuron variance over objects), the same permutation in both halves.
A high-variance neuron loads on every feature, so the bins keep what is true of neurons
and lose only which neurons two features share. The unit permuted is the neuron.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from vlmbinding.data.vocab import all_pairs

log = logging.getLogger(__name__)


def object_patch_masks(
    boxes: np.ndarray, region_size: tuple[int, int], grid: tuple[int, int]
) -> np.ndarray:
    """Boolean [object, grid_h * grid_w]: the patches whose centre lies in the object's box.

    `boxes` [n, 4] are x0, y0, x1, y1 in the pixels of the region the model sees (see
    `vlmbinding.data.crop.boxes_in_region`), `region_size` its (width, height). An object
    smaller than one patch gets the patch that holds its box's centre, so no object has an
    empty mask. Patches are in row-major order, as the store's tokens after the prefix.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    width, height = region_size
    gh, gw = grid
    cy = (np.arange(gh) + 0.5) * height / gh
    cx = (np.arange(gw) + 0.5) * width / gw
    yy, xx = np.meshgrid(cy, cx, indexing="ij")
    yy, xx = yy.ravel(), xx.ravel()
    masks = (
        (xx[None] >= boxes[:, :1])
        & (xx[None] < boxes[:, 2:3])
        & (yy[None] >= boxes[:, 1:2])
        & (yy[None] < boxes[:, 3:4])
    )
    for i in np.flatnonzero(~masks.any(axis=1)):
        mx = (boxes[i, 0] + boxes[i, 2]) / 2
        my = (boxes[i, 1] + boxes[i, 3]) / 2
        col = min(int(mx * gw / width), gw - 1)
        row = min(int(my * gh / height), gh - 1)
        masks[i, row * gw + col] = True
    return masks


def object_vectors(patch_acts: np.ndarray, image_rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """float64 [object, unit]: each object's mean activation over its patches.

    `patch_acts` [image, patch, unit] are one layer's patch tokens (prefix tokens dropped);
    `image_rows` [object] the row of each object's image; `masks` [object, patch] from
    `object_patch_masks`. Each patch position's mean over the images is removed first.
    One image at a time in float64, so memory stays at the layer's own array.
    """
    acts = np.asarray(patch_acts)
    masks = np.asarray(masks, dtype=np.float64)
    rows = np.asarray(image_rows)
    if masks.shape != (len(rows), acts.shape[1]):
        raise ValueError(
            f"masks {masks.shape} do not match {len(rows)} objects x {acts.shape[1]} patches"
        )
    weights = masks / masks.sum(axis=1, keepdims=True)
    mean = np.zeros(acts.shape[1:])
    for img in acts:
        mean += img
    mean /= len(acts)
    if not np.isfinite(mean).all():
        raise ValueError("patch activations hold non-finite values")
    out = np.empty((len(rows), acts.shape[2]))
    for row in np.unique(rows):
        img = np.asarray(acts[row], dtype=np.float64)
        if not np.isfinite(img).all():
            raise ValueError(f"patch activations of image row {row} hold non-finite values")
        mine = rows == row
        out[mine] = weights[mine] @ (img - mean)
    return out


def _image_groups(image_of_object: np.ndarray, n_groups: int, seed: int) -> np.ndarray:
    """int [object]: the group (0..n_groups-1) of each object's image, images dealt at random."""
    images, inverse = np.unique(image_of_object, return_inverse=True)
    rng = np.random.default_rng(seed)
    group_of_image = np.empty(len(images), dtype=np.int64)
    group_of_image[rng.permutation(len(images))] = np.arange(len(images)) % n_groups
    return group_of_image[inverse]


def encoding_vectors(vectors: np.ndarray, labels: np.ndarray, features: Sequence[str]):
    """float64 [feature, unit]: mean over objects with the feature minus mean over the rest.

    Raises ValueError naming a feature that no object (or every object) of these has.
    """
    labels = np.asarray(labels, dtype=bool)
    out = np.empty((labels.shape[1], vectors.shape[1]))
    for j, name in enumerate(features):
        has = labels[:, j]
        if has.all() or not has.any():
            raise ValueError(
                f"feature {name!r} is on {'every' if has.all() else 'no'} object of a half "
                "of the images: its encoding vector cannot be estimated"
            )
        out[j] = vectors[has].mean(axis=0) - vectors[~has].mean(axis=0)
    return out


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[F, F] cosines of the rows of a with the rows of b (0 for a zero row)."""
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (a / na) @ (b / nb).T
    return np.nan_to_num(c)


def _cross_fitted(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """[F, F]: mean of cos(f1 in A, f2 in B) and cos(f1 in B, f2 in A), symmetric."""
    c = _cosines(va, vb)
    return (c + c.T) / 2


def variance_bins(vectors: np.ndarray, n_bins: int) -> np.ndarray:
    """int [unit]: each neuron's quantile bin of variance over the objects."""
    var = vectors.var(axis=0)
    n_bins = max(1, min(n_bins, len(var)))
    ranks = np.argsort(np.argsort(var, kind="stable"), kind="stable")
    return ranks * n_bins // len(var)


def _permute_within(bins: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation of the units that moves each unit only within its bin."""
    perm = np.arange(len(bins))
    for b in np.unique(bins):
        idx = np.flatnonzero(bins == b)
        perm[idx] = rng.permutation(idx)
    return perm


def encoding_geometry(
    vectors: np.ndarray,
    labels: np.ndarray,
    features: Sequence[str],
    image_of_object: np.ndarray,
    *,
    n_null: int = 200,
    n_bins: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Interference iota and neuron sharing omega of every feature pair, with their nulls.

    `vectors` [object, unit] from `object_vectors`; `labels` [object, feature] boolean (an
    object has its shape, colour and position); `image_of_object` [object] the image each
    object belongs to (the groups deal images, not objects). Returns one row per pair and
    measure (`interference`, `neuron_sharing`) with value, null_mean, null_sd, z and a
    one-sided upper p = (1 + #null >= value) / (1 + n_null); the unit permuted for the null
    is the neuron, within variance bins (module docstring). Seeded: the groups and the null.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    image_of_object = np.asarray(image_of_object)
    if n_null < 1:
        raise ValueError(f"n_null must be at least 1, not {n_null}")
    if len(np.unique(image_of_object)) < 8:
        raise ValueError("encoding geometry needs at least 8 images (four groups of two)")
    group = _image_groups(image_of_object, 4, seed)
    quarter = [
        encoding_vectors(vectors[group == g], labels[group == g], features) for g in range(4)
    ]
    va = (quarter[0] + quarter[1]) / 2  # interference: halves (quarters 1+2, 3+4)
    vb = (quarter[2] + quarter[3]) / 2
    ea = quarter[0] * quarter[1]  # energy profiles: a product of two independent estimates
    eb = quarter[2] * quarter[3]
    observed = {
        "interference": _cross_fitted(va, vb),
        "neuron_sharing": _cross_fitted(ea, eb),
    }
    bins = variance_bins(vectors, n_bins)
    rng = np.random.default_rng([seed, 1])
    null = {m: np.empty((n_null, len(features), len(features))) for m in observed}
    for d in range(n_null):
        perm = _permute_within(bins, rng)
        # permuting every feature's neurons by one permutation would change nothing: the
        # second feature's vectors are permuted, the first's kept
        ca = _cosines(va, vb[:, perm])
        cb = _cosines(vb, va[:, perm])
        null["interference"][d] = (ca + cb) / 2
        ca = _cosines(ea, eb[:, perm])
        cb = _cosines(eb, ea[:, perm])
        null["neuron_sharing"][d] = (ca + cb) / 2
    index = {f: i for i, f in enumerate(features)}
    rows = []
    for measure, obs in observed.items():
        for f1, f2 in all_pairs(list(features)):
            i, j = index[f1], index[f2]
            draws = (null[measure][:, i, j] + null[measure][:, j, i]) / 2
            value = float(obs[i, j])
            mean, sd = float(draws.mean()), float(draws.std(ddof=1)) if n_null > 1 else 0.0
            z = (value - mean) / sd if sd > 0 else np.sign(value - mean) * np.inf
            rows.append(
                {
                    "f1": f1,
                    "f2": f2,
                    "measure": measure,
                    "value": value,
                    "null_mean": mean,
                    "null_sd": sd,
                    "z": float(z),
                    "p": float((1 + np.sum(draws >= value)) / (1 + n_null)),
                }
            )
    return pd.DataFrame(rows)


def object_labels(objects: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Boolean [object, feature]: the object's own shape, colour and position."""
    values = objects[["shape", "color", "position"]].astype(str).to_numpy()
    return np.stack([(values == f).any(axis=1) for f in features], axis=1)
