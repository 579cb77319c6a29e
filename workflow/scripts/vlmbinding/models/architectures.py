"""Architecture configs of open_clip models, read without importing torch.

Start-up checks (layer indices, token grids) need a model's depth and width before any
job runs; reading open_clip's JSON config directly keeps `snakemake -n` fast.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path


class UnknownArchitecture(ValueError):
    pass


def open_clip_config_dir() -> Path:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("open_clip is not installed (pip install open-clip-torch)")
    return Path(next(iter(spec.submodule_search_locations))) / "model_configs"


def deep_merge(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` merged in, nested dicts key by key (inputs untouched)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def architecture_config(arch: str, local_dir: str | Path | None = None, overrides=None) -> dict:
    """The model config of `arch`: `<local_dir>/<arch>.json` first, then open_clip's own."""
    candidates = []
    if local_dir is not None:
        candidates.append(Path(local_dir) / f"{arch}.json")
    candidates.append(open_clip_config_dir() / f"{arch}.json")
    for path in candidates:
        if path.exists():
            return deep_merge(json.loads(path.read_text()), overrides or {})
    known = sorted(p.stem for p in open_clip_config_dir().glob("*.json"))
    raise UnknownArchitecture(
        f"unknown architecture {arch!r}: not in {local_dir} nor open_clip's configs "
        f"(for example {', '.join(k for k in known if k.startswith('ViT-'))[:200]}...)"
    )


SUPPORTED = (
    "open_clip ViT towers, open_clip towers with a timm VisionTransformer or Eva trunk "
    "(SigLIP, SigLIP2, EVA02, PE-Core), and transformers CLIP/SigLIP vision towers"
)


def vision_geometry(cfg: dict) -> dict:
    """Depth, width, input size, patch size, token grid and prefix tokens of a vision tower.

    `family` names the block type hooked (open_clip-vit, timm-vit, timm-eva); `tokens` is
    grid * grid + `n_prefix_tokens` (the class token, if `cls_token`, then registers).
    """
    v = cfg["vision_cfg"]
    if "transformers" in cfg:
        from vlmbinding.models.hf_config import transformers_geometry

        return transformers_geometry(cfg)
    if v.get("timm_model_name"):
        from vlmbinding.models.timm_config import UnsupportedTimmModel, timm_geometry

        try:
            return timm_geometry(v, cfg["embed_dim"])
        except UnsupportedTimmModel as e:
            raise UnknownArchitecture(f"{e}; supported: {SUPPORTED}") from None
    if isinstance(v.get("layers"), (list, tuple)):
        raise UnknownArchitecture(
            f"a ResNet vision tower has no tokens or MLP blocks to record; supported: {SUPPORTED}"
        )
    size = v["image_size"]
    size = size if isinstance(size, int) else size[0]
    grid = size // v["patch_size"]
    return {
        "family": "open_clip-vit",
        "layers": int(v["layers"]),
        "width": int(v["width"]),
        "image_size": int(size),
        "patch_size": int(v["patch_size"]),
        "grid": int(grid),
        "n_prefix_tokens": 1,
        "cls_token": True,
        "n_registers": 0,
        "tokens": int(grid * grid + 1),
        "embed_dim": int(cfg["embed_dim"]),
        "pool": v.get("pool_type", "tok"),
    }


def hub_model_config(weights: str) -> dict:
    """The model config of an `hf-hub:<org>/<repo>` model (a small JSON, cached by the hub)."""
    import json

    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from vlmbinding.models.pretrained import hub_reachable

    hub_id = weights.removeprefix("hf-hub:")
    cached = try_to_load_from_cache(hub_id, "open_clip_config.json")
    if not isinstance(cached, str) and not hub_reachable():
        # Asking the hub anyway costs about 25 s of retries before the same answer.
        raise UnknownArchitecture(
            f"cannot read the config of {weights}: it is not in the local hub cache and the "
            "hub cannot be reached (or HF_HUB_OFFLINE is set); run once with network, copy "
            "~/.cache/huggingface from a machine that has it, or use a local checkpoint file"
        )
    try:
        path = (
            cached
            if isinstance(cached, str)
            else hf_hub_download(hub_id, "open_clip_config.json", etag_timeout=5)
        )
    except Exception as e:  # offline, unknown repo, ...: say what to do
        raise UnknownArchitecture(
            f"cannot read the config of {weights} ({type(e).__name__}): it is not in the "
            f"local hub cache and the hub cannot be reached; run once with network or use "
            f"a local checkpoint file"
        ) from None
    with open(path) as f:
        return json.load(f)["model_cfg"]
