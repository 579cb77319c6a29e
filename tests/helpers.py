"""Tiny open_clip models for tests: random weights, seconds to build and run."""

from __future__ import annotations

import open_clip
import torch

from vlmbinding.models import LoadedModel, _tokenizer_for, _transform_for

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 56, "layers": 3, "width": 64, "patch_size": 14, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_model(seed: int = 0, **overrides) -> LoadedModel:
    torch.manual_seed(seed)
    cfg = {**TINY_CFG, **overrides}
    model = open_clip.CLIP(**cfg).eval()
    return LoadedModel(model, _transform_for(model), _tokenizer_for(cfg), "tiny", "random", cfg)
