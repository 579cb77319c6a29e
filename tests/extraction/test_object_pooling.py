"""A reduced store's pooled object vectors: equal to the geometry's object vectors of the
tokens (planted tokens, and a real extraction of both modes), and the errors that name the
store, the block and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import zarr
from helpers import tiny_model

from vlmbinding.analysis.geometry import object_vectors
from vlmbinding.analysis.geometry_stage import geometry_part, image_sizes, object_masks
from vlmbinding.data.toyshapes import Canvas, generate_dataset, sample_scenes
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction import object_pooling as op
from vlmbinding.extraction import recording as act
from vlmbinding.extraction.store import StoreError

VOCAB = Vocabulary()
GRID = (6, 6)
CELLS = {"TL": (0, 0), "TR": (0, 4), "M": (2, 2), "BL": (4, 0), "BR": (4, 4)}


def _objects(images_per_count: int, seed: int = 0) -> pd.DataFrame:
    """Toy scenes on a 90 x 90 canvas, each position's box 2 x 2 patches of a 6 x 6 grid;
    rows shuffled, so one image's objects are not adjacent in the table."""
    objects = sample_scenes(VOCAB, [1, 2, 3], images_per_count, seed=seed)
    rc = np.array([CELLS[p] for p in objects["position"]])
    objects = objects.assign(
        x0=rc[:, 1] * 15, x1=rc[:, 1] * 15 + 30, y0=rc[:, 0] * 15, y1=rc[:, 0] * 15 + 30
    )
    return objects.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _tokens(objects, ids, masks, n_layers=3, width=40, prefix=1, seed=0):
    """float16 [layer][image, prefix + patch, unit]: features written on their objects'
    patches, a large offset per patch position, noise (the values a float16 store holds)."""
    rng = np.random.default_rng(seed)
    rows = objects["image_id"].map({i: n for n, i in enumerate(ids)}).to_numpy()
    labels = np.stack([objects[k].eq(v) for k, v in _feature_columns()], axis=1).astype(float)
    layers = []
    for _ in range(n_layers):
        acts = rng.standard_normal((len(ids), prefix + GRID[0] * GRID[1], width))
        acts[:, prefix:] += 20.0 * rng.standard_normal((1, GRID[0] * GRID[1], width))
        obj = labels @ rng.standard_normal((labels.shape[1], width))
        for o, row in enumerate(rows):
            acts[row, prefix:][masks[o]] += obj[o]
        layers.append(acts.astype(np.float16))
    return rows, layers


def _feature_columns():
    return [("shape", s) for s in VOCAB.shapes] + [("color", c) for c in VOCAB.colors]


def _pool(root, pooling, layers, batch, prefix=1):
    """Run the pooling as the extraction does, batch by batch (torch on the CPU)."""
    width = layers[0].shape[2]
    pooling.create(root, batch, width)
    arrays = dict(root.arrays())
    for start in range(0, len(layers[0]), batch):
        part = [torch.from_numpy(x[start : start + batch]) for x in layers]
        out = {k: v.numpy() for k, v in pooling.device_outputs(part, start, prefix).items()}
        rest = pooling.write(arrays, start, {**out, "embeddings": np.zeros((len(part[0]), 2))})
        assert set(rest) == {"embeddings"}
    root.attrs.update({**pooling.finish(root), "width": width, "mode": "reduced"})
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    objects = _objects(20)
    ids = list(dict.fromkeys(objects["image_id"]))
    sizes = image_sizes(pd.DataFrame({"image_id": ids}), 90, 90)
    masks = object_masks(objects, sizes, False, GRID)
    rows, layers = _tokens(objects, ids, masks)
    pooling = op.ObjectPooling(masks, rows, objects["image_id"], [0, 2], len(ids))
    root = zarr.open_group(str(tmp_path_factory.mktemp("pool") / "s.zarr"), mode="w")
    return objects, ids, masks, rows, layers, _pool(root, pooling, layers, batch=7)


def test_pooled_vectors_equal_the_token_vectors(planted):
    objects, ids, masks, rows, layers, root = planted
    assert root[op.POOLED].shape == (len(objects), 2 * 40)
    assert root[op.PATCH_MEAN].shape == (36, 2 * 40)
    for layer in (0, 2):
        want = object_vectors(layers[layer][:, 1:], rows, masks)
        got = op.pooled_object_vectors(root, layer, masks)
        scale = np.abs(layers[layer]).max()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale)
        assert np.abs(want).max() > 1  # the features, not only rounding, are compared


def test_the_geometry_table_is_the_same_from_either_store(planted):
    objects, ids, masks, rows, layers, root = planted
    features = [v for _, v in _feature_columns()]
    kwargs = dict(n_null=19, seed=3, min_objects=4)
    tokens = geometry_part(
        lambda b: layers[b][:, 1:], [0, 2], objects, ids, features, masks, **kwargs
    )
    reader = op.object_vector_reader(root, objects, ids, masks)
    reduced = geometry_part(
        None, [0, 2], objects, ids, features, masks, read_vectors=reader, **kwargs
    )
    pd.testing.assert_frame_equal(
        reduced.drop(columns=["value", "null_mean", "null_sd", "z", "p"]),
        tokens.drop(columns=["value", "null_mean", "null_sd", "z", "p"]),
    )
    for col in ("value", "null_mean", "null_sd", "z"):
        np.testing.assert_allclose(reduced[col], tokens[col], rtol=1e-6, atol=1e-7, err_msg=col)


def test_a_batch_writes_only_its_own_images_objects(planted):
    objects, ids, masks, rows, *_ = planted
    pooling = op.ObjectPooling(masks, rows, objects["image_id"], [0], len(ids))
    got = pooling.batch_objects(7, 14)
    assert list(got) == sorted(np.flatnonzero((rows >= 7) & (rows < 14)))
    assert pooling.most_per_batch(7) >= max(np.bincount(rows // 7))


def test_reading_names_the_block_the_table_and_the_store(planted):
    objects, ids, masks, rows, layers, root = planted
    with pytest.raises(StoreError, match=r"block 1 was not pooled \(pooled blocks \[0, 2\]"):
        op.pooled_object_vectors(root, 1, masks)
    with pytest.raises(StoreError, match="not the objects table's"):
        op.check_pooled_objects(root, objects.iloc[::-1], masks)
    moved = masks.copy()
    moved[0] = np.roll(moved[0], 1)
    with pytest.raises(StoreError, match="pooled over other patches"):
        op.check_pooled_objects(root, objects, moved)
    bare = zarr.open_group(str(op.st.store_path(root)) + "-bare", mode="w")
    bare.attrs.update({"mode": "reduced"})
    with pytest.raises(StoreError, match="without pooled object vectors.*sharing.geometry"):
        op.object_vector_reader(bare, objects, ids, masks)


def test_an_object_outside_the_store_is_refused():
    masks = np.ones((2, 4), bool)
    with pytest.raises(ValueError, match="outside the store"):
        op.ObjectPooling(masks, [0, 5], ["a", "b"], [0], n_images=3)


def test_a_real_extraction_gives_the_same_vectors_in_both_modes(tmp_path):
    """The tiny model over 9 drawn images: a tokens store, and a reduced store that pools
    blocks 0 and 2 in batches of 4 (one image's objects are not adjacent in the table)."""
    canvas = Canvas()
    images, objects = generate_dataset(tmp_path / "img", VOCAB, [1, 2, 3], 3, 1, supersample=1)
    objects = objects.sample(frac=1.0, random_state=0).reset_index(drop=True)
    paths, ids = images["path"].tolist(), images["image_id"].tolist()
    pooling = op.pooling_for(objects, images, [0, 2], True, (canvas.width, canvas.height), [4, 4])
    loaded = tiny_model()
    tok = act.extract_activations(loaded, paths, ids, tmp_path / "t.zarr", batch_size=4)
    red = act.extract_activations(
        loaded, paths, ids, tmp_path / "r.zarr", batch_size=4, store="reduced", pooling=pooling
    )
    tok, red = act.open_store(tok), act.open_store(red)
    assert red.attrs["object_pooling"]["layers"] == [0, 2] and "mlp_mean" in red
    masks = pooling.masks
    read_tok = op.object_vector_reader(tok, objects, ids, masks)
    read_red = op.object_vector_reader(red, objects, ids, masks)
    for layer in (0, 2):
        want, got = read_tok(layer), read_red(layer)
        assert want.shape == (len(objects), 64)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    with pytest.raises(StoreError, match="block 1 was not pooled"):
        read_red(1)
