"""The activation store: equal to a plain hooked forward pass, attributes, atomicity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_model
from PIL import Image

from vlmbinding.data.toyshapes import generate_dataset
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction import recording as act


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = tmp_path_factory.mktemp("imgs")
    table, _ = generate_dataset(out / "images", Vocabulary(), [1, 2, 3], 3, seed=0)
    return table["path"].tolist(), table["image_id"].tolist()


def plain_forward(model, paths, preprocess):
    """An independent reference: hooks straight on each block's MLP, one image at a time."""
    outs = []
    handles = [
        b.mlp.register_forward_hook(lambda m, i, o: outs.append(o.detach()))
        for b in model.visual.transformer.resblocks
    ]
    mlp, emb = [], []
    with torch.no_grad():
        for p in paths:
            outs.clear()
            e = model.encode_image(preprocess(Image.open(p).convert("RGB"))[None])
            mlp.append(torch.cat(outs, -1)[0].numpy())
            emb.append(e[0].numpy())
    for h in handles:
        h.remove()
    return np.stack(mlp), np.stack(emb)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_store_equals_a_plain_hooked_forward_pass(tmp_path, images, dtype):
    paths, ids = images
    loaded = tiny_model()
    out = tmp_path / "a.zarr"
    act.extract_activations(loaded, paths, ids, out, batch_size=4, dtype=dtype, model_name="t")
    root = act.open_store(out)
    ref_mlp, ref_emb = plain_forward(loaded.model, paths, loaded.preprocess)
    mlp = root["mlp_out"][:]
    assert mlp.shape == (9, 17, 3 * 64) and mlp.dtype == np.dtype(dtype)
    assert root["embeddings"].dtype == np.float32
    if dtype == "float32":
        np.testing.assert_allclose(mlp, ref_mlp, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(root["embeddings"][:], ref_emb, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(mlp, ref_mlp.astype(np.float16))
    # per-layer reads: chunk = one layer of one batch
    assert root["mlp_out"].chunks == (4, 17, 64) and root["mlp_out"].shards is None
    assert root["image"][:].tolist() == ids
    np.testing.assert_array_equal(act.layer_slice(root, 1), mlp[:, :, 64:128])


def test_store_attributes_describe_it(tmp_path, images):
    paths, ids = images
    act.extract_activations(tiny_model(), paths, ids, tmp_path / "s.zarr", model_name="tiny-m")
    attrs = dict(act.open_store(tmp_path / "s.zarr").attrs)
    for key, value in {
        "model": "tiny-m",
        "layers": 3,
        "width": 64,
        "token_grid": [4, 4],
        "dtype": "float16",
        "preprocess": "model",
        "center_mlp_out": False,
        "image_ids": ids,
        "complete": True,
    }.items():
        assert attrs[key] == value, key
    for key in ("arch", "weights", "neuron_index", "token_order", "embeddings", "mlp_out"):
        assert key in attrs


def test_interrupted_extraction_leaves_no_store(tmp_path, images):
    paths, ids = images
    broken = list(paths[:5]) + [str(tmp_path / "missing.png")] + list(paths[6:])
    out = tmp_path / "x.zarr"
    with pytest.raises(FileNotFoundError):
        act.extract_activations(tiny_model(), broken, ids, out, batch_size=2)
    assert not out.exists()
    partial = tmp_path / "x.zarr.partial"
    assert not partial.exists()


def test_centered_outputs_have_zero_mean_and_reference_preprocessing_skips_normalisation(
    tmp_path, images
):
    paths, ids = images
    out = tmp_path / "c.zarr"
    act.extract_activations(
        tiny_model(), paths, ids, out, dtype="float32", center_mlp_out=True, preprocess="reference"
    )
    root = act.open_store(out)
    mlp = root["mlp_out"][:].reshape(9, 17, 3, 64)
    np.testing.assert_allclose(mlp.mean(-1), 0, atol=1e-5)
    assert root.attrs["preprocess"] == "reference"
    x = act.reference_preprocess(56)(Image.open(paths[0]))
    assert x.shape == (3, 56, 56) and x.min() >= 0 and x.max() <= 1 and x.max() == 1.0


@pytest.mark.parametrize("store", ["tokens", "reduced"])
def test_nan_weights_name_the_block_and_the_images(tmp_path, images, store):
    paths, ids = images
    loaded = tiny_model()
    with torch.no_grad():
        act.blocks(loaded.model)[1].mlp.c_fc.weight[0, 0] = float("nan")
    out = tmp_path / "nan.zarr"
    with pytest.raises(act.NonFiniteActivations) as err:
        act.extract_activations(loaded, paths, ids, out, batch_size=4, store=store)
    message = str(err.value)
    assert "non-finite values" in message and "block 1 (0-based)" in message
    assert f"images {ids[0]}, {ids[1]}" in message and "checkpoint" in message
    assert not out.exists() and not act.st.partial_path(out).exists()


def test_check_finite_names_the_embedding_and_passes_finite_batches():
    act.check_finite(np.ones((4, 3), dtype=bool), 0, ["a", "b", "c"])
    finite = np.ones((4, 3), dtype=bool)
    finite[3, 2] = False  # only the embedding of the third image
    with pytest.raises(act.NonFiniteActivations, match=r"image embedding, for images z\b"):
        act.check_finite(finite, 5, ["a"] * 7 + ["z"], "float32")
    finite[1:, :] = False
    with pytest.raises(act.NonFiniteActivations, match="block 1 .* and 1 later block.*float16"):
        act.check_finite(finite, 0, ["a", "b", "c"], "float16")
