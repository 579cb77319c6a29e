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


TEXT_CFG = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}
SMALL_TIMM = {"depth": 2, "embed_dim": 64, "num_heads": 2, "img_size": 64}


def timm_cfg(name: str, pool: str, proj, **kwargs) -> dict:
    """A small open_clip config of a timm trunk (its depth, width and input size overridden
    through this workflow's `timm_model_kwargs`)."""
    return {
        "embed_dim": 64,
        "custom_text": True,
        "vision_cfg": {
            "image_size": 64,
            "timm_model_name": name,
            "timm_model_pretrained": False,
            "timm_pool": pool,
            "timm_proj": proj,
            "timm_model_kwargs": {**SMALL_TIMM, **kwargs},
        },
        "text_cfg": TEXT_CFG,
    }


# tower kind -> config: no CLS (SigLIP, attention pool); CLS (EVA02, with gamma_2); CLS and
# 4 registers with LayerScale (timm's reg4 ViT, mean pooling)
TIMM_CFGS = {
    "siglip": timm_cfg("vit_base_patch16_siglip_224", "map", "none"),
    "eva02": timm_cfg("eva02_base_patch16_clip_224", "token", None, init_values=0.5),
    "pe-core": timm_cfg("vit_pe_core_base_patch16_224", "map", None),
    "registers": timm_cfg(
        "vit_base_patch16_reg4_gap_256", "avg", "none", init_values=0.5, class_token=True
    ),
}


def tiny_timm_model(kind: str, seed: int = 0) -> LoadedModel:
    torch.manual_seed(seed)
    return from_config(TIMM_CFGS[kind], kind)
