"""The sparse-autoencoder basis (issue 22, measure 3): planted directions are recovered, the
latent basis shares less than a mixing neuron basis, failures name the layer, and the
dictionary survives a safetensors round trip."""

from __future__ import annotations

import importlib.util
import json
import logging

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")
if importlib.util.find_spec("overcomplete") is None:  # its __init__ fails to import: look only
    pytest.skip("make venv installs overcomplete==0.3.0 (--no-deps)", allow_module_level=True)

from vlmbinding.analysis import (
    sae,  # noqa: E402
    sae_tokens,  # noqa: E402
)

N_SOURCES, WIDTH = 32, 32
# Small and fast (about a second a training run on one core), enough to recover the sources.
FAST = dict(expansion=2, k=3, epochs=10, lr=1e-2, batch_size=64)


def planted_sources(n=2000, n_sources=N_SOURCES, width=WIDTH, max_active=3, seed=0):
    """Tokens [n, width] = sparse non-negative source amounts [n, source] @ unit directions.

    Each token has 1..max_active sources at amounts U(0.5, 1.5); the directions are random
    unit vectors (dense in the units: every unit mixes every source).
    """
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n_sources, width))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    amounts = np.zeros((n, n_sources))
    for i in range(n):
        active = rng.choice(n_sources, rng.integers(1, max_active + 1), replace=False)
        amounts[i, active] = rng.uniform(0.5, 1.5, len(active))
    return (amounts @ directions).astype(np.float32), amounts, directions


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: one thread is fastest, and steady on a machine shared with other jobs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def planted():
    tokens, amounts, directions = planted_sources()
    dictionary, training = sae.train_topk_sae(tokens, seed=0, name="layer 3", **FAST)
    return tokens, amounts, directions, dictionary, training


def best_cosines(directions, atoms):
    """For each planted direction, its largest cosine with any decoder atom."""
    return (directions @ atoms.T).max(axis=1)


def test_the_autoencoder_recovers_the_planted_directions(planted):
    _, _, directions, dictionary, training = planted
    cos = best_cosines(directions, dictionary.atoms())
    assert (cos > 0.9).mean() >= 0.9, np.sort(cos)
    assert dictionary.meta["fvu"] < 0.1
    assert 0 <= dictionary.meta["dead_fraction"] < 1
    assert list(training.columns) == ["step", "loss", "fvu", "dead_fraction"]
    assert len(training) == FAST["epochs"] and training["step"].is_monotonic_increasing
    assert training["fvu"].iloc[-1] < training["fvu"].iloc[0]


def test_a_seed_gives_the_same_dictionary_and_another_seed_a_different_one():
    tokens, _, _ = planted_sources(n=400)
    short = {**FAST, "epochs": 2}
    one, curve = sae.train_topk_sae(tokens, seed=0, **short)
    again, curve_again = sae.train_topk_sae(tokens, seed=0, **short)
    np.testing.assert_array_equal(again.atoms(), one.atoms())
    np.testing.assert_array_equal(curve_again.to_numpy(), curve.to_numpy())
    other, _ = sae.train_topk_sae(tokens, seed=1, **short)
    assert not np.array_equal(other.atoms(), one.atoms())


def tuning(activations, presence):
    """Correlation [unit, feature] of each unit's activation with each feature's presence."""
    a = activations - activations.mean(axis=0)
    p = presence - presence.mean(axis=0)
    cov = a.T @ p
    norm = np.outer(np.linalg.norm(a, axis=0), np.linalg.norm(p, axis=0))
    return np.divide(cov, norm, out=np.zeros_like(cov), where=norm > 0)


def shared_units(activations, presence, m, floor=0.1):
    """Sum over feature pairs of |A_f1 ∩ A_f2|, A_f = the m units most correlated with f's
    presence that correlate above `floor` (a small local version of the overlap count; the
    floor keeps untuned units, correlation about 0, out of the count)."""
    corr = tuning(activations, presence)
    top = np.argsort(-corr, axis=0, kind="stable")[:m]  # [m, feature]
    member = np.zeros(corr.shape, dtype=int)
    for f in range(presence.shape[1]):
        member[top[:, f][corr[top[:, f], f] > floor], f] = 1
    overlap = member.T @ member  # [feature, feature]
    return int(np.triu(overlap, k=1).sum())


def test_the_latent_basis_shares_less_than_the_neuron_basis_that_mixes_the_sources(planted):
    tokens, amounts, _, dictionary, _ = planted
    presence = (amounts > 0).astype(float)  # the features: which sources a token has
    latents = sae.encode(dictionary, tokens)
    assert latents.shape == (len(tokens), dictionary.n_latents)
    assert ((latents > 0).sum(axis=1) <= FAST["k"]).all()
    # Each feature's best latent is its own source's; its best neuron a mixture.
    assert np.median(tuning(latents, presence).max(axis=0)) > 0.8
    assert np.median(tuning(tokens, presence).max(axis=0)) < 0.5
    for m in (1, 3):
        neurons, sparse = shared_units(tokens, presence, m), shared_units(latents, presence, m)
        assert neurons >= 5 and sparse <= neurons / 10, (m, neurons, sparse)


def test_pooling_reduces_the_latents_over_each_images_tokens_like_the_neurons(planted):
    tokens, _, _, dictionary, _ = planted
    mlp_out = tokens[:1998].reshape(37, 54, WIDTH)  # 37 images of 54 tokens
    pooled = sae_tokens.sae_pool_activations(mlp_out, dictionary, batch_images=5)
    expected = sae.encode(dictionary, tokens[:1998]).reshape(37, 54, -1).mean(axis=1)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    patches = sae_tokens.sae_pool_activations(mlp_out, dictionary, tokens="patches", how="max")
    expected = sae.encode(dictionary, tokens[:1998]).reshape(37, 54, -1)[:, 1:].max(axis=1)
    np.testing.assert_allclose(patches, expected, rtol=1e-5, atol=1e-6)


def test_the_dictionary_survives_a_safetensors_round_trip(planted, tmp_path):
    tokens, _, _, dictionary, training = planted
    sae.save_dictionary(tmp_path / "layer_3", dictionary, {"model": "toy-clip"})
    assert {p.name for p in (tmp_path / "layer_3").iterdir()} == {
        "dictionary.safetensors",
        "dictionary.json",
        "training.tsv",
    }
    meta = json.loads((tmp_path / "layer_3" / "dictionary.json").read_text())
    assert meta["model"] == "toy-clip" and meta["layer"] == "layer 3"
    assert {"expansion", "k", "seed", "fvu", "dead_fraction"} <= set(meta)
    loaded = sae.load_dictionary(tmp_path / "layer_3")
    # Loading renormalises the atoms (overcomplete's eval()), a rounding-level change.
    np.testing.assert_allclose(loaded.atoms(), dictionary.atoms(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(loaded.mean, dictionary.mean)
    np.testing.assert_array_equal(sae.encode(loaded, tokens), sae.encode(dictionary, tokens))
    np.testing.assert_allclose(loaded.training.to_numpy(), training.to_numpy())


def test_nan_tokens_give_an_error_naming_the_layer():
    tokens, _, _ = planted_sources(n=400)
    tokens[7, 3] = np.nan
    with pytest.raises(ValueError, match="layer 5: 1 of the"):
        sae.train_topk_sae(tokens, name="layer 5", **FAST)


def test_a_diverging_loss_gives_an_error_naming_the_layer():
    tokens, _, _ = planted_sources(n=400)
    with pytest.raises(FloatingPointError, match="layer 2: the sparse autoencoder's loss is"):
        sae.train_topk_sae(tokens, name="layer 2", **{**FAST, "lr": 1e20})


def test_all_dead_latents_give_an_error_naming_the_layer():
    constant = np.ones((400, WIDTH), dtype=np.float32)
    with pytest.raises(RuntimeError, match="layer 4: every one of the 64 latents"):
        sae.train_topk_sae(constant, name="layer 4", **FAST)


def test_many_dead_latents_are_logged(caplog):
    tokens, _, _ = planted_sources(n=400, n_sources=2, max_active=1)  # 2 sources, 64 latents
    with caplog.at_level(logging.WARNING, logger="vlmbinding.analysis.sae"):
        dictionary, _ = sae.train_topk_sae(tokens, name="layer 1", dead_warn=0.2, **FAST)
    assert dictionary.meta["dead_fraction"] > 0.2
    assert "layer 1:" in caplog.text and "latents are dead" in caplog.text


def test_sampled_tokens_are_a_seeded_sample_without_replacement():
    mlp_out = np.arange(6 * 5 * 2, dtype=np.float32).reshape(6, 5, 2)
    a = sae_tokens.sample_tokens(mlp_out, 7, seed=3, batch_images=4)
    np.testing.assert_array_equal(a, sae_tokens.sample_tokens(mlp_out, 7, seed=3))
    assert a.shape == (7, 2) and len({tuple(r) for r in a}) == 7
    assert set(a[:, 0].tolist()) <= set(mlp_out[..., 0].ravel().tolist())
    assert sae_tokens.sample_tokens(mlp_out, 100, seed=0).shape == (30, 2)


def test_importing_the_module_does_not_import_torch():
    import subprocess
    import sys

    from conftest import REPO

    code = (
        f"import sys; sys.path.insert(0, {str(REPO / 'workflow' / 'scripts')!r}); "
        "import vlmbinding.analysis.sae; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_pool_by_seed_puts_each_layers_latents_side_by_side(planted):
    tokens, *_, dictionary, _ = planted
    mlp_out = tokens[:600].reshape(20, 30, WIDTH)
    layers = {4: mlp_out, 7: mlp_out[:, ::-1] * 2}
    pools = sae_tokens.sae_pool_by_seed(
        layers.__getitem__, lambda layer, seed: dictionary, [7, 4], [0, 5], tokens="patches"
    )
    assert sorted(pools) == [0, 5]
    one = [sae_tokens.sae_pool_activations(layers[x], dictionary, tokens="patches") for x in (7, 4)]
    np.testing.assert_array_equal(pools[5], np.concatenate(one, axis=1))
    assert pools[0].shape == (20, 2 * dictionary.n_latents)


def test_the_batch_loader_draws_the_batches_a_shuffled_tensor_dataloader_draws():
    import torch

    x = torch.arange(1000 * 3, dtype=torch.float32).reshape(1000, 3)
    fast = sae._batch_loader(x, 64, seed=7)
    plain = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(7),
    )
    for _ in range(3):  # epochs: the random stream carries on identically
        got, want = list(fast), list(plain)
        assert len(got) == len(want) == 16
        assert all(torch.equal(a[0], b[0]) for a, b in zip(got, want, strict=True))
