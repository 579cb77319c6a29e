"""Tiny open_clip models for tests: random weights, seconds to build and run."""

from __future__ import annotations

import torch

from vlmbinding.models.loading import LoadedModel, from_config

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 56, "layers": 3, "width": 64, "patch_size": 14, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_model(seed: int = 0, **overrides) -> LoadedModel:
    torch.manual_seed(seed)
    return from_config({**TINY_CFG, **overrides}, "tiny")
