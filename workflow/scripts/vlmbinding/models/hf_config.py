"""Vision towers of transformers checkpoints: found in `config.json`, read without torch.

A models entry `{name, arch: transformers, weights: <folder> | hf-hub:<id>}` names a
transformers model folder (config.json plus weights) or a hub repository of one. The vision
tower is found by the config's `model_type`:

  clip, siglip                       the `vision_config` of a dual encoder (text tower too)
  clip_vision_model,
  siglip_vision_model                a vision tower alone
  llava, paligemma (and others with  the `vision_config` of a VLM, if it is a CLIP or SigLIP
  a CLIP or SigLIP vision_config)    tower (no text tower of its own)
  internvl                           its `internvl_vision` tower (InternViT: class token,
                                     layer scale `lambda_2`; transformers' `-hf` checkpoints)

Refused by name: towers whose patches are packed or merged (Qwen2-VL and its kin), InternVL's
remote-code checkpoints (`internvl_chat`: use the `-hf` conversion) and any config without a
vision tower.
"""

from __future__ import annotations

import json
from pathlib import Path

from vlmbinding.models.weights import HF_HUB_PREFIX

TRANSFORMERS = "transformers"
DUAL = {"clip": "clip_vision_model", "siglip": "siglip_vision_model"}
TOWERS = {
    "clip_vision_model": "clip",
    "siglip_vision_model": "siglip",
    "internvl_vision": "internvl",
}
# transformers' defaults where a config.json leaves a key out: (image size, patch size, depth,
# width)
DEFAULTS = {
    "clip": (224, 32, 12, 768),
    "siglip": (224, 16, 12, 768),
    "internvl": (448, 14, 24, 1024),
}
CLS = ("clip", "internvl")
PACKED = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen2_5_omni", "glm4v", "kimi_vl")
SUPPORTED = (
    "transformers CLIPModel, CLIPVisionModel, SiglipModel, SiglipVisionModel, and VLMs whose "
    "vision_config is a CLIP or SigLIP tower (LLaVA, PaliGemma, ...), InternVL (-hf)"
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
    if kind == "internvl_chat":
        raise UnsupportedTransformersModel(
            f"{what}: a remote-code InternVL checkpoint; use its transformers conversion (the "
            f"`-hf` repository, model_type 'internvl'); supported: {SUPPORTED}"
        )
    if kind in TOWERS:
        return TOWERS[kind], config, False
    vision = config.get("vision_config")
    if vision is None:
        raise UnsupportedTransformersModel(f"{what} has no vision tower; supported: {SUPPORTED}")
    vkind = vision.get("model_type", DUAL.get(kind, ""))
    if vkind not in TOWERS:
        raise UnsupportedTransformersModel(
            f"{what}: its vision tower is a {vkind or 'model of unknown type'}, not a CLIP, "
            f"SigLIP or InternViT tower; supported: {SUPPORTED}"
        )
    return TOWERS[vkind], vision, kind in DUAL


def transformers_model_config(weights: str, name: str = "") -> dict:
    """A model config the workflow reads like open_clip's: the tower's `vision_cfg`, the
    `embed_dim`, and `transformers` (what the loader needs)."""
    config = read_config(weights)
    kind, vision, has_text = vision_tower(config, name or weights)
    image, patch, depth, width = DEFAULTS[kind]
    width = int(vision.get("hidden_size", width))
    embed = config.get("projection_dim") if kind == "clip" and has_text else None
    where = f"{name or weights}: vision_config"
    return {
        "embed_dim": int(embed or width),
        "vision_cfg": {
            "transformers_tower": kind,
            "layers": int(vision.get("num_hidden_layers", depth)),
            "width": width,
            "image_size": square(vision.get("image_size", image), f"{where} image_size"),
            "patch_size": square(vision.get("patch_size", patch), f"{where} patch_size"),
            "use_head": bool(vision.get("vision_use_head", kind == "siglip")),
            "mean_pool": bool(vision.get("use_mean_pooling", kind == "internvl")),
        },
        "transformers": {
            "model_type": config.get("model_type"),
            "tower": kind,
            "has_text": has_text,
        },
    }


def square(size, where: str) -> int:
    """A size given as an int or a [height, width] pair; only square ones are supported."""
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise UnsupportedTransformersModel(f"{where} is {list(size)}: only square sizes")
        size = size[0]
    return int(size)


def pool_kind(v: dict) -> str:
    """How the tower pools: the class token (CLIP, InternViT without mean pooling), the mean
    of its tokens (InternViT, a SigLIP without its head) or an attention-pool head (`map`)."""
    if v["transformers_tower"] == "siglip":
        return "map" if v["use_head"] else "avg"
    if v["transformers_tower"] == "internvl" and v.get("mean_pool", True):
        return "avg"
    return "tok"


def transformers_geometry(cfg: dict) -> dict:
    """Geometry of a transformers tower: CLIP and InternViT have a class token, SigLIP none
    (an attention-pool head, `map`, or none in a VLM)."""
    v = cfg["vision_cfg"]
    cls = v["transformers_tower"] in CLS
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
        "pool": pool_kind(v),
        "has_text": bool(cfg["transformers"]["has_text"]),
    }
