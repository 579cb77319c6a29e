"""Ablation in towers that are not open_clip's own ViT: full forward passes, generic hooks.

open_clip's ViT is ablated from a cached residual stream (`interventions.ablation`). The
other families (`models.towers`: timm trunks inside open_clip, transformers vision towers)
run the whole vision tower for every batch, with forward hooks on exactly the modules the
extraction records (`towers.mlp_points`: timm's `Block.ls2`, an EVA block's `mlp` with its
`gamma_2`, transformers' `mlp`), so an ablated unit is the unit the store holds. The
replacement is `ablation.replace_units`: the recorded value (layer scale included) of every
masked unit becomes its per-token mean (or zero). Embeddings come from `model.encode_image`,
the call the extraction stores as `embeddings`. Slower than the cached path: every
condition reruns every block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vlmbinding.interventions.ablation import Ablator, condition_masks
from vlmbinding.models import towers


def scaled_replacement(values: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """What the hooked module must output so that, times `scale`, it equals `values`.

    An EVA block records `mlp(x) * gamma_2`; to give a unit the recorded value v its `mlp`
    output becomes v / gamma_2 (0 where gamma_2 is 0: that unit adds nothing either way).
    """
    if scale is None:
        return values
    s = scale.detach().to(values.dtype)
    return torch.where(s != 0, values / torch.where(s != 0, s, torch.ones_like(s)), 0.0)


class HookAblator(Ablator):
    """`ablation.Ablator` on the modules the extraction records (`towers.mlp_points`) of any
    tower family: `masks` maps a layer to a bool tensor [batch, width] (a row per image of
    the batch); layers not in it run untouched."""

    def __init__(self, model, values: Sequence[torch.Tensor]):
        self.points = towers.mlp_points(model)
        if len(values) != len(self.points):
            raise ValueError(f"{len(values)} layers of values for {len(self.points)} blocks")
        device = next(model.parameters()).device
        self._hooking(
            [p.module for p in self.points],
            [scaled_replacement(v.to(device), p.scale) for v, p in zip(values, self.points)],
        )


@torch.no_grad()
def embed_images(model, images: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    """Unablated embeddings [image, dim] float32 on the CPU, as the extraction computes them
    (`model.encode_image`)."""
    out = [
        model.encode_image(images[s : s + batch_size].to(device)).float().cpu()
        for s in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


@torch.no_grad()
def embed_under_ablation(
    model,
    ablator: HookAblator,
    images: torch.Tensor,
    conditions: Sequence[dict[int, np.ndarray]],
    image_rows: Sequence[np.ndarray],
    batch_size: int,
) -> list[np.ndarray]:
    """Embeddings [len(image_rows[c]), dim] float32 of each condition's images.

    As `ablation.embed_under_ablation`, with the preprocessed `images` in place of the
    residual cache: rows of all conditions are packed into shared batches, each row with
    its own masks, and every batch is a full forward pass.
    """
    n_layers = len(ablator.points)
    width = ablator.values[0].shape[1]
    device = next(model.parameters()).device
    masks = condition_masks(conditions, n_layers, width).to(device)
    out = [np.empty((len(rows), 0), dtype=np.float32) for rows in image_rows]
    if not conditions:
        return out
    cond_idx = np.concatenate([np.full(len(r), c) for c, r in enumerate(image_rows)])
    img_idx = np.concatenate([np.asarray(r, dtype=np.int64) for r in image_rows])
    pieces: list[list[torch.Tensor]] = [[] for _ in conditions]
    for b in range(0, len(cond_idx), batch_size):
        ci = torch.as_tensor(cond_idx[b : b + batch_size], device=device)
        rows = torch.as_tensor(img_idx[b : b + batch_size])
        row_masks = masks[ci]
        used = row_masks.any(dim=(0, 2)).nonzero().flatten().tolist()
        ablator.masks = {layer: row_masks[:, layer] for layer in used}
        try:
            emb = model.encode_image(images[rows].to(device)).float().cpu()
        finally:
            ablator.masks = {}
        for c in torch.unique(ci).tolist():
            pieces[c].append(emb[(ci == c).cpu()])
    for c in range(len(conditions)):
        if pieces[c]:
            out[c] = torch.cat(pieces[c]).numpy()
    return out
