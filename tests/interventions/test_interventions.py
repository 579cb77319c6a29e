"""Neuron interventions: hooks, batched ablation, pair-ratio neurons, per-pair p-values.

Shared-neuron selection, controls and the feature-level statistics: test_intervention_stats.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import tiny_model
from scipy import stats

from vlmbinding.interventions import ablation as ab
from vlmbinding.interventions import selection as iv

N_LAYERS, WIDTH, TOKENS = 3, 64, 17  # helpers.TINY_CFG: 56 px / 14 px patches -> 16 + CLS


@pytest.fixture(scope="module")
def setup():
    loaded = tiny_model(seed=3)
    model = loaded.model.eval()
    torch.manual_seed(0)
    images = torch.randn(10, 3, 56, 56)
    with torch.no_grad():
        stored = model.encode_image(images)
    means = np.random.default_rng(0).normal(size=(TOKENS, N_LAYERS * WIDTH)).astype(np.float32)
    return model, images, stored, means


def hand_made_forward(model, images, replace: dict[int, dict[int, torch.Tensor]]):
    """Every block written out; replace[layer][unit] = [token] values of that MLP output."""
    visual = model.visual
    x = visual._embeds(images)
    for i, block in enumerate(visual.transformer.resblocks):
        x = x + block.attention(block.ln_1(x))
        mlp = block.mlp(block.ln_2(x)).clone()
        for unit, value in replace.get(i, {}).items():
            mlp[:, :, unit] = value[None, :]
        x = x + mlp
    pooled = visual.ln_post(x)[:, 0]
    return pooled @ visual.proj


def run(model, images, conditions, rows, values, cache_layers=(0,), cls_only=None, bs=7):
    with torch.no_grad():
        cache, _ = ab.residual_cache(model.visual, images, range(N_LAYERS), 4, "cpu")
    cache = {k: v for k, v in cache.items() if k in cache_layers}
    with ab.Ablator(model, values) as ablator:
        return ab.embed_under_ablation(model, ablator, cache, conditions, rows, bs, cls_only)


def test_no_neurons_ablated_reproduces_the_stored_embeddings_exactly(setup):
    model, images, stored, means = setup
    values = ab.ablation_values("mean", N_LAYERS, WIDTH, means, TOKENS)
    rows = [np.arange(10)]
    (full,) = run(model, images, [{}], rows, values, cache_layers=(0,), cls_only=False, bs=10)
    assert np.array_equal(full, stored.numpy())
    # Through the cache, from any layer, and with the CLS-only last block: equal to rounding.
    (cls,) = run(model, images, [{}], rows, values, cache_layers=(0, 1, 2), cls_only=True)
    np.testing.assert_allclose(cls, stored.numpy(), rtol=1e-5, atol=1e-5)
    # The cache's own unablated pass is the stored embedding.
    _, emb = ab.residual_cache(model.visual, images, [0], 10, "cpu")
    assert torch.equal(emb, stored)


@pytest.mark.parametrize("how", ["mean", "zero"])
def test_ablating_one_neuron_equals_a_hand_made_forward_pass(setup, how):
    model, images, _, means = setup
    layer, unit = 1, 5
    values = ab.ablation_values(how, N_LAYERS, WIDTH, means if how == "mean" else None, TOKENS)
    expected = hand_made_forward(model, images, {layer: {unit: values[layer][:, unit]}})
    for cls_only in (False, True):
        (got,) = run(
            model, images, [{layer: np.array([unit])}], [np.arange(10)], values, (0, 1), cls_only
        )
        np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    # and it changes the embedding
    assert not np.allclose(got, model.encode_image(images).detach().numpy(), atol=1e-4)


def _block_outputs_with(model, images, values, listed):
    """Each block's output (after ls_2) for `images` with the `listed` units replaced by
    `values` through the Ablator's hooks, and the masks the Ablator used."""
    seen = {}

    def record(layer):
        def hook(_m, _i, out):
            seen[layer] = out.detach().clone()

        return hook

    with ab.Ablator(model, values) as ablator:
        handles = [b.ls_2.register_forward_hook(record(i)) for i, b in enumerate(ab.blocks(model))]
        masks = ab.condition_masks([listed], N_LAYERS, WIDTH)[[0] * len(images)]
        ablator.masks = {layer: masks[:, layer] for layer in listed}
        with torch.no_grad():
            model.encode_image(images)
        for h in handles:
            h.remove()
    return seen, masks


def test_several_layers_at_once_hit_exactly_the_listed_units(setup):
    model, images, _, means = setup
    listed = {0: np.array([1, 7]), 2: np.array([3])}
    values = ab.ablation_values("mean", N_LAYERS, WIDTH, means, TOKENS)
    seen, masks = _block_outputs_with(model, images[:4], values, listed)
    for layer, units in listed.items():  # in the running model: the listed units hold the means
        for unit in units:
            assert torch.equal(seen[layer][:, :, unit], values[layer][None, :, unit].expand(4, -1))
    # the replacement alone: exactly the listed units of the listed layers, all tokens
    out = torch.randn(4, TOKENS, WIDTH)
    for layer in range(N_LAYERS):
        mask = masks[:, layer]
        new = ab.replace_units(out, mask, values[layer])
        changed = (new != out).any(dim=(0, 1)).nonzero().flatten().numpy()
        np.testing.assert_array_equal(changed, listed.get(layer, []))
        for unit in listed.get(layer, []):
            assert torch.equal(new[:, :, unit], values[layer][None, :, unit].expand(4, -1))


def test_hooks_replace_only_listed_units_in_the_running_model(setup):
    model, images, _, means = setup
    listed = {0: np.array([1, 7]), 2: np.array([3])}
    values = ab.ablation_values("zero", N_LAYERS, WIDTH, None, TOKENS)
    seen, _ = _block_outputs_with(model, images[:3], values, listed)
    for layer in range(N_LAYERS):
        zero_units = (seen[layer] == 0).all(dim=(0, 1)).nonzero().flatten().numpy()
        np.testing.assert_array_equal(zero_units, listed.get(layer, []))


def test_batched_conditions_equal_separate_runs(setup):
    model, images, _, means = setup
    values = ab.ablation_values("mean", N_LAYERS, WIDTH, means, TOKENS)
    conditions = [{1: np.array([2])}, {2: np.array([4, 9])}, {0: np.array([0]), 2: np.array([1])}]
    rows = [np.arange(10), np.array([1, 4, 8]), np.array([0, 9])]
    together = run(model, images, conditions, rows, values, (0, 1, 2), bs=5)
    for c in range(3):
        (alone,) = run(model, images, [conditions[c]], [rows[c]], values, (0,), bs=10)
        np.testing.assert_allclose(together[c], alone, rtol=1e-5, atol=1e-5)


def feature_table(rng, n=40, features=("a", "b", "c", "d")):
    aff = rng.uniform(size=(n, len(features)))
    aff[rng.uniform(size=aff.shape) < 0.3] = 0
    return pd.DataFrame(
        {
            "layer": rng.integers(0, 3, n),
            "unit": rng.permutation(64)[:n],
            **dict(zip(features, aff.T)),
        }
    )


def test_pair_neurons_are_the_top_ratio_neurons_or_those_over_the_threshold():
    rng = np.random.default_rng(1)
    table = feature_table(rng)
    ratio = iv.pair_ratios(table, list("abcd"), "a", "c")
    top = iv.pair_neurons(table, list("abcd"), "a", "c", 5)
    assert len(top) == 5 and np.all(np.diff(top["ratio"]) <= 0)
    assert top["ratio"].min() >= np.sort(ratio[np.isfinite(ratio)])[-5]
    over = iv.pair_neurons(table, list("abcd"), "a", "c", 5, threshold=0.4)
    assert (over["ratio"] > 0.4).all() and len(over) == int(np.nansum(ratio > 0.4))


def test_empirical_p_is_calibrated_under_exchangeability_and_has_power():
    k = 19
    ps = []
    for seed in range(200):
        x = np.random.default_rng(seed).normal(size=k + 1)  # own is one more draw
        ps.append(iv.empirical_p(x[0], x[1:]))
    # discrete uniform on {1/20, ..., 1}: compare with its CDF, leniently
    assert stats.kstest(np.array(ps) - 0.5 / (k + 1), "uniform").pvalue > 0.001
    assert iv.empirical_p(10.0, np.random.default_rng(0).normal(size=k)) == 1 / (k + 1)
    assert np.isnan(iv.z_score(1.0, [0.5]))


def test_choose_pairs_keeps_top_and_bottom_by_S_and_a_seeded_sample():
    table = pd.DataFrame({"f1": list("abcdefghij"), "f2": list("klmnopqrst"), "S": np.arange(10.0)})
    assert len(iv.choose_pairs(table, "all", 0)) == 10
    chosen = iv.choose_pairs(table, 6, 0)
    assert len(chosen) == 6 and {9.0, 0.0} <= set(chosen["S"])
    assert chosen.equals(iv.choose_pairs(table, 6, 0))
