"""Loading the vision tower of a transformers checkpoint (`arch: transformers`).

The tower is found by class and by path suffix, not by a full attribute path, so that a new
transformers release that moves it (`model.vision_tower`, `model.model.vision_tower`, ...) does
not break it: the outermost module whose class name has `Vision` in it, with a layer list at
`encoder.layers` (CLIP, SigLIP) or `encoder.layer` (InternViT) and a patch embedding at
`embeddings.patch_embedding` or `embeddings.patch_embeddings`. Its layers' `mlp` is hooked,
times the layer scale `lambda_2` where the layer has one (InternViT; CLIP and SigLIP have
none). `encode_image` gives the model's own image features: CLIP's projected class token
(CLIPModel) or its post-layernorm class token (a vision-only CLIP, e.g. LLaVA's tower),
SigLIP's attention-pool head, or the mean of its last patch tokens in a tower without a
pooler (PaliGemma's SigLIP, InternViT).
"""

from __future__ import annotations

from pathlib import Path

import torch

from vlmbinding.models.hf_config import CLS, read_config, transformers_model_config, vision_tower
from vlmbinding.models.weights import HF_HUB_PREFIX

MEAN_STD = {"internvl": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}  # ImageNet's


class TransformersTower(torch.nn.Module):
    """A transformers model seen as the workflow sees a CLIP: encode_image, encode_text (if it
    has a text tower), its vision layers and its prefix tokens."""

    vision_tower_family = "transformers"

    def __init__(self, model: torch.nn.Module, kind: str, has_text: bool):
        super().__init__()
        self.model, self.kind, self.has_text = model, kind, has_text
        self.tower = find_vision_tower(model)
        self.n_prefix_tokens = 1 if kind in CLS else 0

    @property
    def vision_layers(self):
        return list(encoder_layers(self.tower))

    @property
    def grid_size(self):
        e = self.tower.embeddings
        size, patch = pair(e.image_size), pair(e.patch_size)
        return (size[0] // patch[0], size[1] // patch[1])

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        out = self.tower(pixel_values=images)
        if getattr(out, "pooler_output", None) is None:  # no pooler: the mean patch token
            return out.last_hidden_state[:, self.n_prefix_tokens :].mean(dim=1)
        projection = getattr(self.model, "visual_projection", None)
        return projection(out.pooler_output) if projection is not None else out.pooler_output

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        if not self.has_text:
            raise TypeError(
                f"this {self.kind} vision tower has no text tower of its own: text-image "
                "similarity (Grad-CAM, the binding test) needs a model with one"
            )
        out = self.model.text_model(input_ids=tokens)
        projection = getattr(self.model, "text_projection", None)
        return projection(out.pooler_output) if projection is not None else out.pooler_output


LAYERS = ("layers", "layer")  # encoder.<one of these>: CLIP and SigLIP, InternViT
PATCHES = ("patch_embedding", "patch_embeddings")


def pair(size) -> tuple[int, int]:
    return tuple(int(s) for s in size) if isinstance(size, (list, tuple)) else (size, size)


def encoder_layers(module: torch.nn.Module) -> torch.nn.ModuleList | None:
    """`module.encoder.layers` or `module.encoder.layer`, if it is a list of modules."""
    encoder = getattr(module, "encoder", None)
    for name in LAYERS:
        layers = getattr(encoder, name, None)
        if isinstance(layers, torch.nn.ModuleList):
            return layers
    return None


def find_vision_tower(model: torch.nn.Module) -> torch.nn.Module:
    """The CLIP, SigLIP or InternViT vision transformer inside `model`, found by its class
    name and the suffixes of its layer list and patch embedding."""
    for _, module in model.named_modules():
        embeddings = getattr(module, "embeddings", None)
        if (
            "Vision" in type(module).__name__
            and encoder_layers(module) is not None
            and any(hasattr(embeddings, p) for p in PATCHES)
        ):
            return module
    raise ValueError(
        f"{type(model).__name__} holds no CLIP, SigLIP or InternViT vision transformer"
    )


def source(weights: str) -> str:
    return weights.removeprefix(HF_HUB_PREFIX)


def image_preprocess(weights: str, kind: str, image_size: int):
    """The model's own image processor (PIL image -> [3, H, W]); a folder without one gets
    the tower's usual transform (CLIP's mean and std, SigLIP's 0.5, InternViT's ImageNet)."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(source(weights))
    except (OSError, ValueError):
        import open_clip

        mean, std = MEAN_STD.get(kind, ((0.5,) * 3, (0.5,) * 3))
        if kind == "clip":
            mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
        return open_clip.image_transform(image_size, is_train=False, mean=mean, std=std)

    def preprocess(image):
        return processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0]

    return preprocess


def text_tokenizer(weights: str, context_length: int):
    """The model's own tokenizer (list[str] -> input ids), or None if the folder has none."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(source(weights))
    except (OSError, ValueError, TypeError):
        return None

    def tokenize(texts):
        return tok(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=context_length,
            return_tensors="pt",
        )["input_ids"]

    return tokenize


def load_transformers(weights: str, name: str = "", random_init: bool = False, seed: int = 0):
    """(TransformersTower, preprocess, tokenizer, model config) of a transformers folder or
    `hf-hub:` id; `random_init` builds the same architecture untrained (a random twin)."""
    import transformers

    config = read_config(weights)
    kind, _, has_text = vision_tower(config, name or weights)
    cfg = transformers_model_config(weights, name)
    auto = transformers.AutoConfig.from_pretrained(source(weights))
    arch = (config.get("architectures") or [None])[0]
    cls = getattr(transformers, arch, None) if arch else None
    cls = cls or transformers.AutoModel
    if random_init:
        torch.manual_seed(seed)
        model = cls._from_config(auto) if hasattr(cls, "_from_config") else cls.from_config(auto)
    else:
        model = cls.from_pretrained(source(weights))
    tower = TransformersTower(model.float().eval(), kind, has_text)
    text = config.get("text_config") or {}
    tokenizer = (
        text_tokenizer(weights, int(text.get("max_position_embeddings", 64))) if has_text else None
    )
    preprocess = image_preprocess(weights, kind, cfg["vision_cfg"]["image_size"])
    return tower, preprocess, tokenizer, cfg


def is_folder(weights: str) -> bool:
    return Path(weights).is_dir()
