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


# a small transformers vision tower (no text tower): 64 px, 16 px patches, 2 layers of width 32
HF_SMALL = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 64,
    "patch_size": 16,
}


def save_clip_vision(folder, seed: int = 0) -> str:
    """A random-weights transformers CLIPVisionModel and its image processor in `folder`
    (config.json, model.safetensors, preprocessor_config.json)."""
    import transformers

    torch.manual_seed(seed)
    model = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**HF_SMALL))
    model.save_pretrained(folder)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}
    ).save_pretrained(folder)
    return str(folder)


def save_llava(folder, seed: int = 0) -> str:
    """A random-weights LlavaForConditionalGeneration (the CLIP tower above, a one-layer Llama
    of width 32 and vocabulary 128) and its image processor in `folder`: the VLM's eyes
    inside a VLM checkpoint."""
    import transformers

    torch.manual_seed(seed)
    text = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "vocab_size": 128,
        "max_position_embeddings": 64,
    }
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(**HF_SMALL),
        text_config=transformers.LlamaConfig(**text),
        image_token_id=5,
    )
    transformers.LlavaForConditionalGeneration(config).save_pretrained(folder)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}
    ).save_pretrained(folder)
    return str(folder)


# a SigLIP-like open_clip tower (timm trunk, no CLS token, attention pool) as overrides of
# open_clip's ViT-B-16-SigLIP config; its text tower tokenizes with open_clip's own BPE
SIGLIP_OVERRIDES = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "timm_model_kwargs": SMALL_TIMM},
    "text_cfg": {**TEXT_CFG, "hf_tokenizer_name": None},
}


def save_siglip_checkpoint(path, seed: int = 0) -> dict:
    """A random-weights SigLIP-like open_clip checkpoint file that carries its model_cfg;
    returns the config (what a models entry's `model_cfg` overrides resolve to)."""
    from vlmbinding.models.architectures import architecture_config
    from vlmbinding.models.loading import save_checkpoint

    cfg = architecture_config("ViT-B-16-SigLIP", None, SIGLIP_OVERRIDES)
    torch.manual_seed(seed)
    save_checkpoint(from_config(cfg, "ViT-B-16-SigLIP").model, cfg, path)
    return cfg


# open_clip architectures whose config the small timm towers above override (the registers
# tower has no open_clip config of its own: its timm trunk replaces ViT-B-16's vision tower)
TIMM_ARCHS = {"eva02": "EVA02-B-16", "pe-core": "PE-Core-B-16", "registers": "ViT-B-16"}


def save_timm_checkpoint(path, kind: str, seed: int = 0) -> dict:
    """A random-weights checkpoint of small timm tower `kind` (TIMM_CFGS) that carries its
    model_cfg; returns the models entry's `arch` and `model_cfg` (the overrides)."""
    import copy

    from vlmbinding.models.architectures import architecture_config
    from vlmbinding.models.loading import save_checkpoint

    arch, overrides = TIMM_ARCHS[kind], copy.deepcopy(TIMM_CFGS[kind])
    cfg = architecture_config(arch, None, overrides)
    torch.manual_seed(seed)
    save_checkpoint(from_config(cfg, arch).model, cfg, path)
    return {"arch": arch, "model_cfg": overrides, "weights": str(path)}
