"""Interventions on towers that are not open_clip's ViT (timm trunks, transformers vision
towers): full forward passes with hooks where the extraction records, checked against hooks
written by hand on the library's own modules; a vision-only tower gets D and M, no binding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import save_clip_vision, tiny_timm_model

from vlmbinding.extraction import recording as act
from vlmbinding.interventions import ablation as ab
from vlmbinding.interventions import controls as ctl
from vlmbinding.interventions import full_pass as fp
from vlmbinding.interventions import inference as inf
from vlmbinding.interventions import stage
from vlmbinding.interventions.measures import no_trials
from vlmbinding.models import towers
from vlmbinding.models.applicability import NEEDS_TEXT

pytest.importorskip("timm")
pytest.importorskip("transformers")

LAYER, UNITS = 1, np.array([3, 17])


@pytest.fixture(scope="module")
def vision_only(tmp_path_factory):
    from vlmbinding.models.loading import load_entry

    folder = save_clip_vision(tmp_path_factory.mktemp("clip_vision"))
    return load_entry({"name": "eyes", "arch": "transformers", "weights": folder}, None, "cpu")


def tower(kind, vision_only):
    return vision_only if kind == "transformers" else tiny_timm_model(kind)


def setup_of(loaded, n=6, seed=0):
    model = loaded.model.eval()
    g = loaded.geometry
    n_layers, width, tokens = len(towers.vision_blocks(model)), g["width"], g["tokens"]
    torch.manual_seed(seed)
    images = torch.randn(n, 3, g["image_size"], g["image_size"])
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(tokens, n_layers * width)).astype(np.float32)
    values = ab.ablation_values("mean", n_layers, width, means, tokens)
    return model, images, values


def by_hand(model, images, layer, units, value):
    """The embedding with `units` of `layer`'s recorded MLP output set to `value` [token,
    unit], hooked directly on the library's module: timm's `ls2`, transformers' `mlp`; an
    EVA block's output corrected by (value - gamma_2 * mlp output) on those units."""
    family = towers.tower_family(model)
    block = towers.vision_blocks(model)[layer]
    u = torch.as_tensor(units)
    handles = []
    if family == "timm-eva":
        seen = {}

        def read(_m, _i, out):
            seen["mlp"] = out

        def correct(_m, _i, out):
            new = out.clone()
            recorded = seen["mlp"][:, :, u] * block.gamma_2[u]
            new[:, :, u] = out[:, :, u] + value[None] - recorded
            return new

        handles += [block.mlp.register_forward_hook(read), block.register_forward_hook(correct)]
    else:
        module = block.ls2 if family == "timm-vit" else block.mlp

        def replace(_m, _i, out):
            new = out.clone()
            new[:, :, u] = value[None].to(out.dtype)
            return new

        handles.append(module.register_forward_hook(replace))
    try:
        with torch.no_grad():
            return model.encode_image(images).float().numpy()
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("kind", ["registers", "eva02", "transformers"])
def test_generic_hooks_reproduce_the_embeddings_and_equal_hooks_by_hand(kind, vision_only):
    model, images, values = setup_of(tower(kind, vision_only))
    rows = [np.arange(len(images))]
    stored = act.forward_batch(model, images)[1].numpy()  # what the extraction stores
    with fp.HookAblator(model, values) as ablator:
        (none,) = fp.embed_under_ablation(model, ablator, images, [{}], rows, 4)
        (got,) = fp.embed_under_ablation(model, ablator, images, [{LAYER: UNITS}], rows, 4)
    np.testing.assert_allclose(none, stored, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        fp.embed_images(model, images, 4, "cpu").numpy(), stored, rtol=1e-5, atol=1e-6
    )
    expected = by_hand(model, images, LAYER, UNITS, values[LAYER][:, UNITS])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, stored, atol=1e-4)  # the ablation does something
    # the extraction's own recording sees the means at exactly the ablated units
    with fp.HookAblator(model, values) as ablator, act.recording_mlp_outputs(model) as rec:
        masks = ab.condition_masks([{LAYER: UNITS}], len(values), values[0].shape[1])
        ablator.masks = {LAYER: masks[[0] * len(images), LAYER]}
        with torch.no_grad():
            model.encode_image(images)
    torch.testing.assert_close(
        rec[LAYER][:, :, UNITS], values[LAYER][None, :, UNITS].expand(len(images), -1, -1)
    )


def test_batched_conditions_equal_separate_runs_without_a_cache(vision_only):
    model, images, values = setup_of(vision_only)
    conditions = [{0: np.array([1])}, {1: np.array([4, 9])}, {0: np.array([2]), 1: np.array([5])}]
    rows = [np.arange(6), np.array([1, 4]), np.array([0, 5])]
    with fp.HookAblator(model, values) as ablator:
        together = fp.embed_under_ablation(model, ablator, images, conditions, rows, 4)
        for c in range(3):
            (alone,) = fp.embed_under_ablation(
                model, ablator, images, [conditions[c]], [rows[c]], 9
            )
            np.testing.assert_allclose(together[c], alone, rtol=1e-5, atol=1e-6)


def test_a_vision_only_tower_gets_d_and_m_and_no_binding(vision_only, caplog):
    model, _, values = setup_of(vision_only)
    n, features = 32, ["a", "b", "c", "d"]
    torch.manual_seed(1)
    images = torch.randn(n, 3, 64, 64)
    presence = np.random.default_rng(2).uniform(size=(n, 4)) < 0.5
    stored = fp.embed_images(model, images, 8, "cpu").numpy()
    pairs = pd.DataFrame({"f1": ["a", "c", "a"], "f2": ["b", "d", "c"], "S": [0.1, 0.5, 0.9]})
    width = values[0].shape[1]
    chosen = {"a": 0, "b": 1, "c": 2, "d": 3}

    def select(f1, f2):
        return {"own": {1: np.array([chosen[f1], 10 + chosen[f2]])}}

    settings = stage.Settings(select="pair_ratio", control_draws=3, batch_size=16)
    strata = ctl.neuron_strata(2, width, "layers")
    with fp.HookAblator(model, values) as ablator:
        effects, _ = stage.run_interventions(
            model,
            ablator,
            images,
            stored,
            presence,
            features,
            pairs,
            select,
            no_trials(stored.shape[1]),
            ctl.StratumIndex(strata),
            settings,
            fp.embed_under_ablation,
        )
    assert len(effects) == 3 and (effects["n_neurons"] == 2).all()
    for m in ("dD", "dM", "dD_pca", "dM_pca", "dD_control_mean", "dM_others_mean"):
        assert np.isfinite(effects[m]).all(), m
    binding = [c for c in effects if c.startswith("dbinding") or c.startswith("binding")]
    assert binding and effects[binding].isna().all().all()
    summary = stage.binding_not_applicable(
        inf.summarise_effects(effects, features, 50, 20, 0, covariate="S")
    )
    rows = summary[summary["measure"] == "dbinding"]
    assert len(rows) and (rows["note"] == NEEDS_TEXT).all() and rows["n_pairs"].eq(0).all()
    assert (summary[summary["measure"] != "dbinding"]["note"] != NEEDS_TEXT).all()
