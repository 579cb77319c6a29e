"""The random-weights twin: derived entries, and a model with the parent's geometry
and none of its weights, reproducible from its seed."""

from __future__ import annotations

import copy
import json

import open_clip
import pytest
import torch
from helpers import TINY_CFG

from vlmbinding.models import loading as models
from vlmbinding.models.architectures import architecture_config
from vlmbinding.workflow.entries import (
    extra_twin,
    identity,
    model_entries,
    random_twin_of,
    random_twins_of,
    twin_name,
)

TOY = {"name": "toy", "arch": "toy-vit", "weights": "toy", "model_cfg": {}}


def test_every_config_entry_gets_a_twin_after_it():
    config = {
        "models": [TOY, {"name": "vit", "arch": "ViT-B-32", "weights": "openai"}],
        "controls": {"random_weights": True, "seed": 7},
    }
    entries = model_entries(config)
    assert [e["name"] for e in entries] == [
        "toy",
        "toy/controls/random",
        "vit",
        "vit/controls/random",
    ]
    twin = entries[3]
    assert twin == {
        "name": "vit/controls/random",
        "arch": "ViT-B-32",
        "weights": "random",
        "twin_of": "openai",
        "base": "vit",
        "role": "random",
        "seed": 7,
    }
    assert entries[0]["role"] == "trained" and entries[0]["base"] == "toy"
    assert random_twin_of(entries, "toy") == twin_name("toy") == "toy/controls/random"
    assert random_twin_of(entries, "toy/controls/random") is None


def test_one_switch_turns_twins_off_and_an_entry_can_override_it():
    off = {"models": [TOY], "controls": {"random_weights": False}}
    assert [e["name"] for e in model_entries(off)] == ["toy"]
    assert random_twin_of(model_entries(off), "toy") is None
    one_on = {"models": [{**TOY, "random_twin": True}], "controls": {"random_weights": False}}
    assert [e["name"] for e in model_entries(one_on)] == ["toy", "toy/controls/random"]
    one_off = {"models": [{**TOY, "random_twin": False}], "controls": {}}
    assert [e["name"] for e in model_entries(one_off)] == ["toy"]
    # the default is on
    assert len(model_entries({"models": [TOY]})) == 2


def _twin(seed: int, **extra) -> dict:
    return {
        **TOY,
        "name": "toy/controls/random",
        "weights": "random",
        "twin_of": "toy",
        "seed": seed,
        **extra,
    }


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_the_twin_of_a_toy_model_is_the_toy_model_before_training():
    cfg = architecture_config("toy-vit", models.DEFAULT_ARCH_DIR)
    torch.manual_seed(3)  # what train_toy_model does before building the model
    before = models.from_config(cfg, "toy-vit", "toy")
    twin = models.load_entry(_twin(3), None, "cpu")
    a, b = _params(before.model), _params(twin.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert twin.geometry == before.geometry and twin.weights == "random"


def test_same_seed_same_twin_other_seed_other_twin():
    a = _params(models.random_model(_twin(0)).model)
    b = _params(models.random_model(_twin(0)).model)
    c = _params(models.random_model(_twin(1)).model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # every randomly initialised tensor differs (LayerNorm's ones and zeros do not)
    random_init = [k for k in a if a[k].ndim >= 2]
    assert random_init and all(not torch.equal(a[k], c[k]) for k in random_init)


def test_the_twin_has_the_trained_models_geometry_and_none_of_its_weights(tmp_path):
    # a "trained" toy model: the toy init, then every parameter moved (as training does)
    cfg = architecture_config("toy-vit", models.DEFAULT_ARCH_DIR)
    torch.manual_seed(0)
    trained = models.from_config(cfg, "toy-vit", "toy")
    with torch.no_grad():
        for p in trained.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    models.save_checkpoint(trained.model, cfg, tmp_path / "checkpoint.pt")
    loaded = models.load_entry(TOY, str(tmp_path / "checkpoint.pt"), "cpu")
    twin = models.load_entry(_twin(0), None, "cpu")
    assert twin.geometry == loaded.geometry
    assert twin.model_cfg == loaded.model_cfg
    a, b = _params(loaded.model), _params(twin.model)
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape for k in a)
    assert not any(torch.equal(a[k], b[k]) for k in a)
    # the same preprocessing: the same tensor from the same image
    from PIL import Image

    image = Image.new("RGB", (80, 70), (200, 30, 60))
    assert torch.equal(loaded.preprocess(image), twin.preprocess(image))


def test_a_tag_twin_follows_the_tags_activation_and_preprocessing(tmp_path, monkeypatch):
    # an open_clip architecture with a tag trained with QuickGELU and its own mean/std,
    # without any download: the tag's metadata is all the twin reads
    cfg_dir = tmp_path / "cfgs"
    cfg_dir.mkdir()
    (cfg_dir / "Tiny-Twin.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(cfg_dir)
    tag = {"quick_gelu": True, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    monkeypatch.setattr(models, "tag_config", lambda arch, weights: copy.deepcopy(tag))
    entry = {
        "name": "t/controls/random",
        "arch": "Tiny-Twin",
        "weights": "random",
        "twin_of": "sometag",
        "seed": 0,
    }
    twin = models.random_model(entry, arch_dir=cfg_dir)
    assert models.uses_quick_gelu(twin.model)
    from PIL import Image

    x = twin.preprocess(Image.new("RGB", (56, 56), (255, 0, 0)))
    assert torch.allclose(x[:, 0, 0], torch.tensor([2.0, -2.0, -2.0]))


def test_a_twin_of_a_hugging_face_text_tower_is_refused_with_the_fix(tmp_path):
    cfg_dir = tmp_path / "cfgs"
    cfg_dir.mkdir()
    hf = copy.deepcopy(TINY_CFG)
    hf["text_cfg"] = {"hf_model_name": "xlm-roberta-base"}
    (cfg_dir / "Tiny-HF.json").write_text(json.dumps(hf))
    entry = {
        "name": "h/controls/random",
        "arch": "Tiny-HF",
        "weights": "random",
        "twin_of": "x.pt",
        "seed": 0,
    }
    with pytest.raises(models.WeightsUnavailable, match="random_twin: false"):
        models.random_model(entry, arch_dir=cfg_dir)


def test_the_switch_does_not_change_the_models_own_entry():
    entries = model_entries({"models": [{**TOY, "random_twin": None}], "controls": {}})
    assert entries[0] == {**TOY, "base": "toy", "role": "trained"}


def test_several_twins_one_seed_each():
    config = {"models": [TOY], "controls": {"random_weights": True, "seed": 4, "random_twins": 3}}
    entries = model_entries(config)
    names = ["toy", "toy/controls/random", "toy/controls/random-1", "toy/controls/random-2"]
    assert [e["name"] for e in entries] == names
    assert [e.get("seed") for e in entries[1:]] == [4, 5, 6]
    assert random_twins_of(entries, "toy") == names[1:]
    assert random_twin_of(entries, "toy") == "toy/controls/random"
    assert [extra_twin(e) for e in entries] == [False, False, True, True]
    # the twin's index is not part of what identifies its results; its seed is
    assert "twin" not in identity(entries[2], config) and identity(entries[2], config)["seed"] == 5
    with pytest.raises(ValueError, match="random_twins"):
        model_entries({**config, "controls": {"random_twins": 0}})
