"""The geometry part of the sharing table from a planted tokens store: object vectors, the
rows per block, and the errors that name the feature and the layer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis.geometry import object_labels, object_vectors
from vlmbinding.analysis.geometry_stage import (
    geometry_part,
    image_sizes,
    object_image_rows,
    object_masks,
)
from vlmbinding.analysis.sharing_stage import SHARING_COLUMNS
from vlmbinding.data.toyshapes import sample_scenes
from vlmbinding.data.vocab import Vocabulary

VOCAB = Vocabulary()
FEATURES = VOCAB.features
GRID = (6, 6)
SIZE = (100, 90)  # wider than tall: the centre 90 x 90 square is what the model sees
# each position's box in the seen square, in image pixels (x offset 5): 2 x 2 patches each
CELLS = {"TL": (0, 0), "TR": (0, 4), "M": (2, 2), "BL": (4, 0), "BR": (4, 4)}


def _objects(images_per_count: int = 40, seed: int = 0) -> pd.DataFrame:
    objects = sample_scenes(VOCAB, [1, 2, 3, 4, 5], images_per_count, seed=seed)
    rc = np.array([CELLS[p] for p in objects["position"]])
    return objects.assign(
        x0=5 + rc[:, 1] * 15, x1=5 + rc[:, 1] * 15 + 30, y0=rc[:, 0] * 15, y1=rc[:, 0] * 15 + 30
    )


def _store(objects: pd.DataFrame, n_layers: int = 2, n_units: int = 400, seed: int = 0, noise=0.5):
    """Patch tokens [layer][image, patch, unit]: every patch of an object carries its
    features' directions; red and square write on the same neurons in layer 1 only; each
    patch position adds a fixed offset (where, not what); noise everywhere."""
    rng = np.random.default_rng(seed)
    ids = list(dict.fromkeys(objects["image_id"]))
    masks = object_masks(objects, image_sizes(pd.DataFrame({"image_id": ids}), *SIZE), True, GRID)
    rows = object_image_rows(objects, ids)
    labels = object_labels(objects, FEATURES).astype(float)
    layers, planted = [], []
    for layer in range(n_layers):
        directions = np.zeros((len(FEATURES), n_units))
        for j in range(len(FEATURES)):
            directions[j, 6 * j : 6 * j + 6] = rng.choice([-1.0, 1.0], size=6)
        if layer == 1:
            red, square = FEATURES.index("red"), FEATURES.index("square")
            units = np.flatnonzero(directions[red])
            directions[square] = 0
            directions[square, units] = np.array([1, 1, 1, -1, -1, -1.0]) * directions[red, units]
        obj = labels @ directions
        acts = noise * rng.standard_normal((len(ids), GRID[0] * GRID[1], n_units))
        acts += 3.0 * rng.standard_normal((1, GRID[0] * GRID[1], n_units))  # per position
        for o, row in enumerate(rows):
            acts[row, masks[o]] += obj[o]
        layers.append(acts.astype(np.float32))
        planted.append(obj)
    return ids, masks, layers, planted


def test_masks_follow_the_boxes_in_the_seen_square():
    objects = _objects(2)
    masks = object_masks(objects, dict.fromkeys(objects["image_id"], SIZE), True, GRID)
    for o, pos in enumerate(objects["position"]):
        r, c = CELLS[pos]
        grid = masks[o].reshape(GRID)
        assert grid[r : r + 2, c : c + 2].all() and grid.sum() == 4, pos


def test_image_sizes_come_from_the_table_when_it_has_them():
    images = pd.DataFrame({"image_id": ["a", "b"], "width": [10, 20], "height": [5, 6]})
    assert image_sizes(images, 64, 64) == {"a": (10, 5), "b": (20, 6)}
    assert image_sizes(images[["image_id"]], 64, 63) == {"a": (64, 63), "b": (64, 63)}


def test_object_vectors_from_a_planted_store_are_the_objects_less_their_positions_mean():
    objects = _objects(20)
    ids, masks, layers, planted = _store(objects, noise=0.0)
    vectors = object_vectors(layers[0], object_image_rows(objects, ids), masks)
    # noise-free, every object of a position covers the same patches: its vector is its
    # own features' sum less the mean over images of what sits there (the offset cancels)
    pos = objects["position"].to_numpy()
    at = {p: planted[0][pos == p].sum(axis=0) / len(ids) for p in CELLS}
    want = planted[0] - np.stack([at[p] for p in pos])
    np.testing.assert_allclose(vectors, want, atol=1e-4)


def test_the_part_has_rows_per_block_and_finds_the_planted_sharing_in_its_block():
    objects = _objects(40)
    ids, masks, layers, _ = _store(objects)
    table = geometry_part(
        lambda layer: layers[layer], [0, 1], objects, ids, FEATURES, masks, n_null=99, seed=0
    )
    assert list(table.columns) == SHARING_COLUMNS
    assert set(table["layers"]) == {"0", "1"} and (table["basis"] == "neurons").all()
    assert len(table) == 2 * 2 * 120 and not table[["value", "z", "p"]].isna().any().any()

    def row(layer):
        hit = table.query("measure == 'neuron_sharing' and layers == @layer")
        return hit[(hit.f1 == "square") & (hit.f2 == "red")].iloc[0]

    shared, other = row("1"), row("0")
    assert shared["value"] > 0.8 and shared["z"] > 4 and shared["p"] < 0.05
    assert abs(other["value"]) < 0.2 and abs(other["z"]) < 3


def test_too_few_objects_for_a_feature_names_the_feature_and_the_layer():
    objects = _objects(40)
    ids, masks, layers, _ = _store(objects, n_layers=1)
    keep = ~objects["color"].eq("pink") | (np.cumsum(objects["color"].eq("pink")) <= 3)
    few = objects[keep.to_numpy()].reset_index(drop=True)
    with pytest.raises(ValueError, match=r"layer 0: feature 'pink' is on 3 of"):
        geometry_part(
            lambda layer: layers[layer], [0], few, ids, FEATURES, masks[keep.to_numpy()], n_null=5
        )
    none = objects[~objects["color"].eq("pink").to_numpy()].reset_index(drop=True)
    with pytest.raises(ValueError, match=r"layer 0: feature 'pink' is on 0 of"):
        geometry_part(
            lambda layer: layers[layer],
            [0],
            none,
            ids,
            FEATURES,
            masks[~objects["color"].eq("pink").to_numpy()],
            n_null=5,
        )
