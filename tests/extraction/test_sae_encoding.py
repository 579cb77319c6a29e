"""The autoencoder basis with a reduced store: the analysed images' latents recomputed by
the model equal those encoded and reduced from a tokens store (every reduction, prefix
tokens dropped as the store drops them), and the latents file refuses what does not match."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("overcomplete") is None:
    pytest.skip("make venv installs overcomplete==0.3.0 (--no-deps)", allow_module_level=True)

from helpers import tiny_model, tiny_timm_model  # noqa: E402

from vlmbinding.analysis.sae import train_topk_sae  # noqa: E402
from vlmbinding.analysis.sae_tokens import sae_pool_by_seed  # noqa: E402
from vlmbinding.data.toyshapes import generate_dataset  # noqa: E402
from vlmbinding.data.vocab import Vocabulary  # noqa: E402
from vlmbinding.extraction import recording as act  # noqa: E402
from vlmbinding.extraction import sae_encoding as enc  # noqa: E402
from vlmbinding.extraction.store import n_prefix_tokens  # noqa: E402

SEEDS = [0, 1]
BATCH = 4  # the store's batch size, as the rule uses activations.batch_size for both
TINY_SAE = dict(expansion=2, k=4, epochs=2, lr=1e-2, batch_size=32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = tmp_path_factory.mktemp("imgs")
    table, _ = generate_dataset(out / "images", Vocabulary(), [1, 2, 3], 3, seed=0)
    return table["path"].tolist(), table["image_id"].tolist()


def store_and_dictionaries(loaded, images, folder, layers):
    """A float16 tokens store of the images and tiny dictionaries trained on its tokens."""
    paths, ids = images
    out = folder / "a.zarr"
    act.extract_activations(loaded, paths, ids, out, batch_size=BATCH, model_name="t")
    root = act.open_store(out)
    dictionaries = {}
    for layer in layers:
        tokens = act.layer_slice(root, layer).astype(np.float32)
        for seed in SEEDS:
            dictionaries[layer, seed], _ = train_topk_sae(
                tokens.reshape(-1, tokens.shape[-1]), seed=seed, name=f"layer {layer}", **TINY_SAE
            )
    return root, dictionaries


@pytest.fixture(scope="module", params=["open_clip", "registers"])
def model_store(request, images, tmp_path_factory):
    """The tiny open_clip ViT (1 prefix token, 3 blocks) and a timm ViT with 4 registers
    (5 prefix tokens, 2 blocks)."""
    loaded = tiny_model() if request.param == "open_clip" else tiny_timm_model("registers")
    layers = [0, 2] if request.param == "open_clip" else [1, 0]  # any order: kept as given
    root, dictionaries = store_and_dictionaries(
        loaded, images, tmp_path_factory.mktemp(request.param), layers
    )
    return loaded, root, dictionaries, layers


@pytest.mark.parametrize("how, tokens", [("mean", "all"), ("max", "patches"), ("mean", "patches")])
def test_recomputed_latents_equal_those_from_a_tokens_store(images, model_store, how, tokens):
    loaded, root, dictionaries, layers = model_store
    paths, _ = images
    assert n_prefix_tokens(root) == loaded.geometry["n_prefix_tokens"]
    from_store = sae_pool_by_seed(
        lambda layer: act.layer_slice(root, layer),
        lambda layer, seed: dictionaries[layer, seed],
        layers,
        SEEDS,
        how=how,
        tokens=tokens,
        n_prefix=n_prefix_tokens(root),
    )
    recomputed = enc.model_latents(
        loaded,
        paths,
        layers,
        SEEDS,
        lambda layer, seed: dictionaries[layer, seed],
        how=how,
        tokens=tokens,
        batch_size=BATCH,
        dtype="float16",
    )
    assert sorted(recomputed) == SEEDS
    for seed in SEEDS:
        ref = from_store[seed]
        assert recomputed[seed].shape == ref.shape == (9, len(layers) * 2 * 64)
        assert recomputed[seed].dtype == np.float32 and (ref > 0).mean() > 0.02
        np.testing.assert_allclose(recomputed[seed], ref, rtol=1e-5, atol=1e-6)
    # the reduction matters: over all tokens it differs from over the patches
    if tokens == "patches":
        other = enc.model_latents(
            loaded, paths, layers, [0], lambda lay, s: dictionaries[lay, s], how=how
        )
        assert not np.allclose(other[0], recomputed[0])


def test_progress_is_logged_per_batch(images, model_store, caplog):
    loaded, _, dictionaries, layers = model_store
    paths, _ = images
    with caplog.at_level("INFO", logger=enc.__name__):
        enc.model_latents(loaded, paths, layers, [0], lambda lay, s: dictionaries[lay, s])
    assert "batch 1/1: 9/9 images" in caplog.text


def test_a_dictionary_of_another_width_is_an_error_naming_the_layer(images, model_store):
    loaded, _, dictionaries, layers = model_store
    narrow, _ = train_topk_sae(np.random.default_rng(0).normal(size=(200, 8)), **TINY_SAE)
    with pytest.raises(ValueError, match=rf"layer {layers[0]}, SAE seed 0: .* 8 units"):
        enc.model_latents(loaded, images[0][:2], layers, [0], lambda lay, s: narrow)


def test_the_latents_file_round_trips_and_refuses_other_images(tmp_path):
    rng = np.random.default_rng(0)
    latents = {0: rng.random((3, 5), dtype=np.float32), 2: rng.random((3, 5), dtype=np.float32)}
    meta = {"image_ids": ["a", "b", "c"], "layers": [1, 3], "how": "mean", "tokens": "all"}
    path = tmp_path / "latents.npz"
    enc.save_latents(path, latents, meta)
    back = enc.load_latents(path, [0, 2], meta)
    for seed in (0, 2):
        np.testing.assert_array_equal(back[seed], latents[seed])
    with pytest.raises(ValueError, match="its image_ids is"):
        enc.load_latents(path, [0], {**meta, "image_ids": ["a", "c", "b"]})
    with pytest.raises(ValueError, match="its tokens is 'all', expected 'patches'"):
        enc.load_latents(path, [0], {**meta, "tokens": "patches"})
    with pytest.raises(ValueError, match=r"SAE seeds \[1\]"):
        enc.load_latents(path, [0, 1], meta)


def test_the_memory_estimate_counts_every_seeds_latent_pool():
    # ViT-L/14, 50,000 images, 4 layers of 4,096 latents, 3 seeds
    assert enc.latents_mem_mb(50_000, 4 * 4096, 3) == 9831
    sae = {"expansion": 4, "seeds": [0, 1, 2]}
    assert enc.sae_latents_mb(sae, {"width": 1024}, [20, 21, 22, 23], 50_000) == 9831
