"""Grad-CAM where the embedding is pooled rather than read from a class token (SigLIP's and
PE-Core's attention pool, mean pooling), on small random timm towers."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_timm_model

from vlmbinding.analysis import gradcam as gc

PROMPTS = ["a green square", "a red circle"]
GRID = 4  # 64-pixel input, 16-pixel patches


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.randn(2, 3, 64, 64)


def maps(kind, images, layer, module="mlp"):
    loaded = tiny_timm_model(kind)
    text = gc.text_embeddings(loaded.model, loaded.tokenizer, PROMPTS)
    return gc.gradcam_maps(loaded.model, images, text, layer, module)


@pytest.mark.parametrize("kind", ["siglip", "pe-core", "registers"])
def test_a_pooled_tower_gives_non_zero_maps_at_its_last_block(kind, images):
    # the attention pool (or the mean) reads every token of the last block, so the last
    # block's patch tokens reach the embedding; the prefix tokens are dropped first
    last = maps(kind, images, -1)
    assert last.shape == (2, len(PROMPTS), GRID, GRID)
    assert torch.count_nonzero(last) > 0
    assert torch.count_nonzero(maps(kind, images, -2)) > 0
    pool = tiny_timm_model(kind).geometry["pool"]
    assert gc.recommended_layer(pool) == -1


def test_a_class_token_tower_gives_zero_maps_at_its_last_block(images):
    # EVA02 reads its embedding from the class token: as for CLIP, the last block's patch
    # tokens never reach it
    assert torch.count_nonzero(maps("eva02", images, -1)) == 0
    assert torch.count_nonzero(maps("eva02", images, -2)) > 0
    assert torch.count_nonzero(maps("eva02", images, -1, "ln_1")) > 0
    assert gc.recommended_layer(tiny_timm_model("eva02").geometry["pool"]) == -2


def test_eva_maps_do_not_depend_on_the_hook_being_before_gamma(images):
    # The EVA hook sits on `mlp`, before gamma_2; Grad-CAM is unchanged by a per-channel
    # scale of the activations, so the maps equal those taken after gamma_2.
    loaded = tiny_timm_model("eva02")
    model = loaded.model
    text = gc.text_embeddings(model, loaded.tokenizer, PROMPTS)
    before = gc.gradcam_maps(model, images, text, -2)
    block = model.visual.trunk.blocks[-2]
    gamma = block.gamma_2.detach().clone()
    block.gamma_2 = None  # the same block, with gamma folded into the MLP's last linear layer
    with torch.no_grad():
        block.mlp.fc2.weight.mul_(gamma[:, None])
        block.mlp.fc2.bias.mul_(gamma)
    after = gc.gradcam_maps(model, images, text, -2)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-6)
