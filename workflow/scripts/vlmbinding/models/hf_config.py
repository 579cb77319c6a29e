"""Vision towers of transformers checkpoints: found in `config.json`, read without torch.

A models entry `{name, arch: transformers, weights: <folder> | hf-hub:<id>}` names a
transformers model folder (config.json plus weights) or a hub repository of one. The vision
tower is found by the config's `model_type`:

  clip, siglip                       the `vision_config` of a dual encoder (text tower too)
  clip_vision_model,
  siglip_vision_model                a vision tower alone
  llava, paligemma (and others with  the `vision_config` of a VLM, if it is a CLIP or SigLIP
  a CLIP or SigLIP vision_config)    tower (no text tower of its own)

Refused by name: towers whose patches are packed or merged (Qwen2-VL and its kin) and any
config without a vision tower.
"""

from __future__ import annotations

import json
from pathlib import Path

from vlmbinding.models.weights import HF_HUB_PREFIX

TRANSFORMERS = "transformers"
DUAL = {"clip": "clip_vision_model", "siglip": "siglip_vision_model"}
TOWERS = {"clip_vision_model": "clip", "siglip_vision_model": "siglip"}
PACKED = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen2_5_omni", "glm4v", "kimi_vl")
SUPPORTED = (
    "transformers CLIPModel, CLIPVisionModel, SiglipModel, SiglipVisionModel, and VLMs whose "
    "vision_config is a CLIP or SigLIP tower (LLaVA, PaliGemma, ...)"
)


class UnsupportedTransformersModel(ValueError):
    pass


def read_config(weights: str) -> dict:
    """config.json of a transformers folder or of a cached `hf-hub:` repository."""
    if weights.startswith(HF_HUB_PREFIX):
        from huggingface_hub import hf_hub_download, try_to_load_from_cache

        from vlmbinding.models.pretrained import hub_reachable

        hub_id = weights.removeprefix(HF_HUB_PREFIX)
        path = try_to_load_from_cache(hub_id, "config.json")
        if not isinstance(path, str):
            if not hub_reachable():
                raise UnsupportedTransformersModel(
                    f"cannot read the config of {weights}: it is not in the local hub cache "
                    "and the hub cannot be reached; run once with network, or download the "
                    "model folder and set `weights: /path/to/folder`"
                )
            path = hf_hub_download(hub_id, "config.json", etag_timeout=5)
        return json.loads(Path(path).read_text())
    path = Path(weights) / "config.json"
    if not path.is_file():
        raise UnsupportedTransformersModel(
            f"{weights} is not a transformers model folder (no config.json); give a folder "
            "written by save_pretrained, or hf-hub:<org>/<repo>"
        )
    return json.loads(path.read_text())


def vision_tower(config: dict, name: str = "") -> tuple[str, dict, bool]:
    """(tower kind clip|siglip, the tower's config, whether the model has a text tower)."""
    what = f"{name or 'the model'} (model_type {config.get('model_type')!r})"
    kind = config.get("model_type", "")
    if kind in PACKED or any(kind.startswith(p) for p in PACKED):
        raise UnsupportedTransformersModel(
            f"{what}: its vision tower packs or merges patches (no fixed token grid per "
            f"image), which the workflow cannot record per token; supported: {SUPPORTED}"
        )
    if kind in TOWERS:
        return TOWERS[kind], config, False
    vision = config.get("vision_config")
    if vision is None:
        raise UnsupportedTransformersModel(f"{what} has no vision tower; supported: {SUPPORTED}")
    vkind = vision.get("model_type", DUAL.get(kind, ""))
    if vkind not in TOWERS:
        raise UnsupportedTransformersModel(
            f"{what}: its vision tower is a {vkind or 'model of unknown type'}, not a CLIP or "
            f"SigLIP tower; supported: {SUPPORTED}"
        )
    return TOWERS[vkind], vision, kind in DUAL


def transformers_model_config(weights: str, name: str = "") -> dict:
    """A model config the workflow reads like open_clip's: the tower's `vision_cfg`, the
    `embed_dim`, and `transformers` (what the loader needs)."""
    config = read_config(weights)
    kind, vision, has_text = vision_tower(config, name or weights)
    width = int(vision.get("hidden_size", 768))
    embed = config.get("projection_dim") if kind == "clip" and has_text else None
    return {
        "embed_dim": int(embed or width),
        "vision_cfg": {
            "transformers_tower": kind,
            "layers": int(vision.get("num_hidden_layers", 12)),
            "width": width,
            "image_size": int(vision.get("image_size", 224)),
            "patch_size": int(vision.get("patch_size", 32 if kind == "clip" else 16)),
            "use_head": bool(vision.get("vision_use_head", True)),
        },
        "transformers": {
            "model_type": config.get("model_type"),
            "tower": kind,
            "has_text": has_text,
        },
    }


def transformers_geometry(cfg: dict) -> dict:
    """Geometry of a transformers tower: CLIP has a class token (read by its pooler),
    SigLIP none (an attention-pool head, `map`, or none in a VLM)."""
    v = cfg["vision_cfg"]
    cls = v["transformers_tower"] == "clip"
    grid = v["image_size"] // v["patch_size"]
    return {
        "family": "transformers",
        "layers": v["layers"],
        "width": v["width"],
        "image_size": v["image_size"],
        "patch_size": v["patch_size"],
        "grid": grid,
        "n_prefix_tokens": int(cls),
        "cls_token": cls,
        "n_registers": 0,
        "tokens": grid * grid + int(cls),
        "embed_dim": int(cfg["embed_dim"]),
        "pool": "tok" if cls else ("map" if v["use_head"] else "avg"),
        "has_text": bool(cfg["transformers"]["has_text"]),
    }
