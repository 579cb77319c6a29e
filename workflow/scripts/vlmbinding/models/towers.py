"""The vision tower's blocks and where each block's MLP output is hooked, for every family.

The recorded quantity is the same in every family: what a block's MLP adds to the residual
stream, layer scale included.

  family         blocks                                  hooked module, then scale
  open_clip-vit  model.visual.transformer.resblocks      ls_2 (LayerScale or Identity)
  timm-vit       model.visual.trunk.blocks (Block)       ls2 (LayerScale or Identity)
  timm-eva       model.visual.trunk.blocks (EvaBlock)    mlp, times gamma_2 when set
  transformers   <vision tower>.encoder.layers           mlp (CLIP, SigLIP: no layer scale)
                 <vision tower>.encoder.layer            mlp, times lambda_2 (InternViT)

Anything else (a ResNet, a post-norm or parallel block) is refused by name.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch


class UnhookableTower(ValueError):
    pass


@dataclass(frozen=True)
class MlpPoint:
    """Where one block's MLP output is read: `module`'s output, times `scale` if not None."""

    module: torch.nn.Module
    scale: torch.nn.Parameter | None = None

    def value(self, output: torch.Tensor) -> torch.Tensor:
        return output if self.scale is None else output * self.scale


def tower_family(model: torch.nn.Module) -> str:
    """'open_clip-vit' | 'timm-vit' | 'timm-eva' | 'transformers' of a loaded model."""
    visual = getattr(model, "visual", None)
    if visual is not None and hasattr(visual, "transformer"):
        return "open_clip-vit"
    trunk = getattr(visual, "trunk", None)
    if trunk is not None:
        from timm.models.eva import EvaBlock
        from timm.models.vision_transformer import Block

        kinds = {type(b) for b in getattr(trunk, "blocks", [])}
        if kinds == {Block}:
            return "timm-vit"
        if kinds == {EvaBlock}:
            return "timm-eva"
        names = sorted(k.__name__ for k in kinds) or [type(trunk).__name__]
        raise UnhookableTower(
            f"timm trunk {type(trunk).__name__} with blocks {names}: only timm's pre-norm "
            "Block (VisionTransformer) and EvaBlock (Eva) are hooked"
        )
    if getattr(model, "vision_tower_family", None) == "transformers":
        return "transformers"
    raise UnhookableTower(
        f"{type(model).__name__} has no vision tower the workflow can hook (a ResNet tower, "
        "or an unknown model)"
    )


def vision_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The residual blocks of the vision tower, input side first."""
    family = tower_family(model)
    if family == "open_clip-vit":
        return list(model.visual.transformer.resblocks)
    if family in ("timm-vit", "timm-eva"):
        return list(model.visual.trunk.blocks)
    return list(model.vision_layers)


def mlp_point(block: torch.nn.Module, family: str) -> MlpPoint:
    """Where `block`'s MLP output (layer scale included) is read."""
    if family == "open_clip-vit":
        return MlpPoint(block.ls_2)
    if family == "timm-vit":
        return MlpPoint(block.ls2)
    if family == "timm-eva":
        return MlpPoint(block.mlp, block.gamma_2)
    scale = getattr(block, "lambda_2", None)  # InternViT's layer scale
    return MlpPoint(block.mlp, scale if isinstance(scale, torch.nn.Parameter) else None)


def mlp_points(model: torch.nn.Module) -> list[MlpPoint]:
    family = tower_family(model)
    return [mlp_point(b, family) for b in vision_blocks(model)]


def pooling_head_mlp(model: torch.nn.Module) -> torch.nn.Module | None:
    """The MLP of the tower's attention-pooling head, or None if it has none.

    timm trunks (SigLIP, SigLIP2, PE-Core in open_clip): `trunk.attn_pool.mlp`
    (`AttentionPoolLatent`: `x = x + mlp(norm(x))`, no layer scale); transformers SigLIP:
    `<vision tower>.head.mlp` (`hidden = residual + mlp(layernorm(hidden))`). Its output, the
    quantity before it joins the head's residual, is [batch, latent tokens, width]."""
    family = tower_family(model)
    if family in ("timm-vit", "timm-eva"):
        head = getattr(model.visual.trunk, "attn_pool", None)
    elif family == "transformers":
        head = getattr(model.tower, "head", None)
    else:
        head = None  # open_clip's own ViT: CLS or mean pooling, CoCa's attentional pool
    mlp = getattr(head, "mlp", None)
    return mlp if isinstance(mlp, torch.nn.Module) else None


def input_norm(block: torch.nn.Module) -> torch.nn.Module:
    """The block's first LayerNorm (Grad-CAM's `ln_1` choice) in any family."""
    for name in ("ln_1", "norm1", "layer_norm1", "layernorm_before"):
        if hasattr(block, name):
            return getattr(block, name)
    raise UnhookableTower(f"{type(block).__name__} has no input LayerNorm")


@contextmanager
def hooked_mlp_outputs(model: torch.nn.Module, record):
    """Call `record(layer, value)` with each block's MLP output during forward passes."""
    handles = []
    for i, point in enumerate(mlp_points(model)):

        def hook(_module, _inputs, output, i=i, point=point):
            record(i, point.value(output))

        handles.append(point.module.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def prefix_tokens(model: torch.nn.Module) -> int:
    """Tokens before the patches in the built tower (class token, registers)."""
    family = tower_family(model)
    if family == "open_clip-vit":
        return 1
    if family in ("timm-vit", "timm-eva"):
        return int(model.visual.trunk.num_prefix_tokens)
    return int(model.n_prefix_tokens)


def built_grid(model: torch.nn.Module) -> tuple[int, int] | None:
    """The patch grid the built tower produces, where it says so."""
    if getattr(model, "vision_tower_family", None) == "transformers":
        return tuple(model.grid_size)
    visual = getattr(model, "visual", None)
    trunk = getattr(visual, "trunk", None)
    if trunk is not None and hasattr(trunk, "patch_embed"):
        return tuple(int(g) for g in trunk.patch_embed.grid_size)
    grid = getattr(visual, "grid_size", None)
    return tuple(int(g) for g in grid) if grid is not None else None


def check_geometry(model: torch.nn.Module, geometry: dict, name: str = "") -> None:
    """The built tower has the depth and grid its config promised (else a clear error)."""
    depth = len(vision_blocks(model))
    grid = built_grid(model)
    want = (geometry["grid"], geometry["grid"])
    if depth != geometry["layers"] or (grid is not None and grid != want):
        raise UnhookableTower(
            f"model {name or geometry.get('timm_model', '')}: the built tower has {depth} "
            f"blocks and a {grid} patch grid, its config says {geometry['layers']} and {want}"
        )
