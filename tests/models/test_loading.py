"""Model loading: checkpoint files, QuickGELU for OpenAI weights, offline failures."""

from __future__ import annotations

import json
import time

import open_clip
import pytest
import torch
from helpers import TINY_CFG, tiny_model

from vlmbinding.extraction.recording import forward_batch
from vlmbinding.models import loading as models


def test_checkpoint_file_loads_by_path_with_identical_activations(tmp_path):
    loaded = tiny_model(seed=1)
    path = tmp_path / "tiny.pt"
    models.save_checkpoint(loaded.model, TINY_CFG, path)
    again = models.load_model("ignored", str(path), "cpu")
    x = torch.randn(2, 3, 56, 56)
    a_mlp, a_emb = forward_batch(loaded.model, x)
    b_mlp, b_emb = forward_batch(again.model, x)
    assert torch.equal(a_mlp, b_mlp) and torch.equal(a_emb, b_emb)
    assert again.geometry == {
        "layers": 3,
        "width": 64,
        "image_size": 56,
        "patch_size": 14,
        "grid": 4,
        "tokens": 17,
        "embed_dim": 32,
        "family": "open_clip-vit",
        "n_prefix_tokens": 1,
        "cls_token": True,
        "n_registers": 0,
        "pool": "tok",
    }


def test_plain_state_dict_of_an_open_clip_architecture_loads(tmp_path):
    # a user's fine-tuned checkpoint: just a state dict, architecture named in the config
    cfg_dir = tmp_path / "cfgs"
    cfg_dir.mkdir()
    (cfg_dir / "Tiny-QG.json").write_text(json.dumps({**TINY_CFG, "quick_gelu": True}))
    open_clip.add_model_config(cfg_dir)
    source = open_clip.create_model("Tiny-QG")
    torch.save({"state_dict": source.state_dict()}, tmp_path / "plain.pt")
    loaded = models.load_model("Tiny-QG", str(tmp_path / "plain.pt"), "cpu", arch_dir=cfg_dir)
    assert models.uses_quick_gelu(loaded.model)
    x = torch.randn(1, 3, 56, 56)
    assert torch.allclose(source.eval().encode_image(x), loaded.model.encode_image(x))


def test_openai_tags_get_quick_gelu(monkeypatch):
    # open_clip's own trap: plain 'ViT-B-32' + openai weights builds GELU and only warns
    assert open_clip.get_pretrained_cfg("ViT-B-32", "openai")["quick_gelu"] is True
    seen = {}

    def fake_create(arch, pretrained=None, force_quick_gelu=False, **kw):
        seen["quick_gelu"] = force_quick_gelu
        model = open_clip.CLIP(**TINY_CFG, quick_gelu=force_quick_gelu)
        return model, None, _transform(model)

    def _transform(model):
        return models.transform_for(model)

    monkeypatch.setattr(models, "tag_is_cached", lambda cfg, cache_dir=None: True)
    monkeypatch.setattr(open_clip, "create_model_and_transforms", fake_create)
    loaded = models.load_model("ViT-B-32", "openai", "cpu")
    assert seen["quick_gelu"] is True and models.uses_quick_gelu(loaded.model)
    assert loaded.quick_gelu
    loaded = models.load_model("ViT-B-32", "laion2b_s34b_b79k", "cpu")
    assert seen["quick_gelu"] is False and not models.uses_quick_gelu(loaded.model)


def test_uncached_tag_fails_fast_offline_with_advice(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)  # restored after
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "tag_is_cached", lambda cfg, cache_dir=None: False)
    start = time.time()
    with pytest.raises(models.WeightsUnavailable, match="weights: /path/to/checkpoint"):
        models.load_model("ViT-L-14", "openai", "cpu")
    with pytest.raises(models.WeightsUnavailable, match="not in the local cache"):
        models.load_model("ViT-L-14", "hf-hub:nobody/nothing", "cpu")
    assert time.time() - start < 10


def test_unknown_tag_and_missing_file_are_named():
    with pytest.raises(models.WeightsUnavailable, match="not an open_clip tag"):
        models.load_model("ViT-B-32", "no_such_tag", "cpu")
    with pytest.raises(models.WeightsUnavailable, match="does not exist"):
        models.load_model("ViT-B-32", "/nowhere/model.pt", "cpu")


def test_weights_kinds():
    assert models.weights_kind("toy") == "toy"
    assert models.weights_kind("openai") == "tag"
    assert models.weights_kind("hf-hub:org/repo") == "hf-hub"
    assert models.weights_kind("ckpt/model.pt") == "file"
    assert models.weights_kind("model.safetensors") == "file"
