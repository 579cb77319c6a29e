"""Ablating MLP output neurons of CLIP's vision tower while it runs.

A neuron is one unit of a block's MLP output (METHOD.md section 2), hooked at the same
point as `activations.recording_mlp_outputs` records it (`block.ls_2`, after the MLP's
second linear layer, before the residual add). Ablating it replaces that output, for every
token, by its mean over the dataset at that token position, or by zero. Several layers are
ablated at once, in one forward pass.

Batching: every row of a batch carries its own set of ablated neurons (a boolean mask per
layer), so the images of a pair under its own neurons and under every control draw go
through the same forward passes. The residual stream entering each block is computed once,
without ablation, and cached: a set of neurons whose earliest layer is L only needs blocks
L.. rerun. Memory is set by the number of images, not by the number of pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from vlmbinding.extraction.recording import blocks

log = logging.getLogger(__name__)

ABLATIONS = ("mean", "zero")


def token_means(root, chunk: int = 16) -> np.ndarray:
    """float32 [token, layer*width]: each neuron's mean over the images, per token position.

    Read from the activation store chunk by chunk (memory: one chunk). A store of centred
    outputs (`activations.center_mlp_out: true`) does not hold the raw outputs that the
    model computes, so their mean cannot replace them: refused with the fix named.
    """
    if root.attrs.get("center_mlp_out"):
        raise ValueError(
            "interventions.ablation: mean needs the raw MLP outputs, but the activation store "
            "holds centred ones (activations.center_mlp_out: true); use ablation: zero or "
            "center_mlp_out: false"
        )
    mlp = root["mlp_out"]
    n = mlp.shape[0]
    total = np.zeros(mlp.shape[1:], dtype=np.float64)
    for start in range(0, n, chunk):
        total += mlp[start : start + chunk].astype(np.float32).sum(axis=0, dtype=np.float64)
    return (total / n).astype(np.float32)


def ablation_values(how: str, n_layers: int, width: int, means: np.ndarray | None, tokens: int):
    """Per layer, the [token, width] values that replace ablated outputs."""
    if how not in ABLATIONS:
        raise ValueError(f"interventions.ablation must be one of {ABLATIONS}, not {how!r}")
    if how == "zero":
        return [torch.zeros(tokens, width) for _ in range(n_layers)]
    if means is None or means.shape != (tokens, n_layers * width):
        raise ValueError(f"mean ablation needs means of shape ({tokens}, {n_layers * width})")
    t = torch.from_numpy(np.ascontiguousarray(means))
    return [t[:, layer * width : (layer + 1) * width].clone() for layer in range(n_layers)]


def replace_units(out: torch.Tensor, mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """`out` [batch, token, width] with out[b, t, u] = values[t, u] wherever mask[b, u].

    Only the first out.shape[1] token positions of `values` are used (a pass that keeps
    only the CLS token sees one token). Every other entry is returned unchanged.
    """
    tokens = out.shape[1]
    return torch.where(mask[:, None, :], values[None, :tokens].to(out.dtype), out)


class Ablator:
    """Forward hooks on every block's MLP output that replace the units in `masks`.

    `masks` maps a layer to a bool tensor [batch, width] (a row per image of the batch);
    layers not in it run untouched. Use as a context manager; hooks go away on exit.
    """

    def __init__(self, model, values: Sequence[torch.Tensor]):
        self.blocks = blocks(model)
        if not getattr(model.visual.transformer, "batch_first", True):
            raise ValueError("ablation expects a batch-first vision transformer (open_clip >= 2.2)")
        device = next(model.parameters()).device
        self._hooking([b.ls_2 for b in self.blocks], [v.to(device) for v in values])

    def _hooking(self, modules: Sequence, values: Sequence[torch.Tensor]) -> None:
        """Hook `modules` (one per layer, in order) with `values` as the replacements."""
        self.modules, self.values = list(modules), list(values)
        self.masks: dict[int, torch.Tensor] = {}
        self.handles = []

    def _hook(self, layer):
        def hook(_module, _inputs, output):
            mask = self.masks.get(layer)
            if mask is None:
                return None
            return replace_units(output, mask, self.values[layer])

        return hook

    def __enter__(self):
        self.handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self.modules)]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles = []
        self.masks = {}


def embed_tokens(visual, images: torch.Tensor) -> torch.Tensor:
    """The residual stream entering block 0: patch embedding, CLS, positions, ln_pre."""
    return visual._embeds(images)


def _cls_only_ok(visual) -> bool:
    from open_clip.transformer import ResidualAttentionBlock

    last = visual.transformer.resblocks[-1]
    return (
        getattr(visual, "attn_pool", None) is None
        and getattr(visual, "pool_type", None) == "tok"
        and not getattr(visual, "final_ln_after_pool", False)
        and type(last) is ResidualAttentionBlock
        and not hasattr(last, "ln_1_kv")
    )


def _last_block_cls(block, x: torch.Tensor) -> torch.Tensor:
    """The last block on the CLS token only: the embedding reads nothing else.

    Keys and values still come from every token; only the CLS query is computed, and the
    MLP runs on one token. The MLP output still passes `ls_2`, so ablation hooks apply.
    """
    h = block.ln_1(x)
    a = block.attn(h[:, :1], h, h, need_weights=False)[0]
    y = x[:, :1] + block.ls_1(a)
    return y + block.ls_2(block.mlp(block.ln_2(y)))


def finish_from(visual, x: torch.Tensor, start: int, cls_only: bool = False) -> torch.Tensor:
    """Image embeddings [batch, dim] from the residual stream `x` entering block `start`."""
    resblocks = visual.transformer.resblocks
    last = len(resblocks) - 1
    for i in range(start, len(resblocks)):
        x = _last_block_cls(resblocks[i], x) if cls_only and i == last else resblocks[i](x)
    pooled, _ = visual._pool(x)
    return pooled @ visual.proj if visual.proj is not None else pooled


@torch.no_grad()
def residual_cache(
    visual, images: torch.Tensor, layers: Sequence[int], batch_size: int, device
) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """({layer: residual stream entering that block, [image, token, width]}, embeddings).

    One unablated pass over `images` (preprocessed, any device); the cache lives on `device`.
    """
    layers = sorted(set(layers))
    cache: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    embeddings = []
    resblocks = visual.transformer.resblocks
    for start in range(0, len(images), batch_size):
        x = embed_tokens(visual, images[start : start + batch_size].to(device))
        for i, block in enumerate(resblocks):
            if i in cache:
                cache[i].append(x)
            x = block(x)
        pooled, _ = visual._pool(x)
        embeddings.append(pooled @ visual.proj if visual.proj is not None else pooled)
    return {k: torch.cat(v) for k, v in cache.items()}, torch.cat(embeddings)


def cached_layers(n_layers: int, bytes_per_layer: int, budget_bytes: float) -> list[int]:
    """Evenly spaced layers (always 0) whose cached residuals fit in `budget_bytes`."""
    fit = max(1, int(budget_bytes // max(1, bytes_per_layer)))
    stride = max(1, -(-n_layers // fit))
    return list(range(0, n_layers, stride))


def condition_masks(conditions: Sequence[dict[int, np.ndarray]], n_layers: int, width: int):
    """bool [condition, layer, width]: which units each condition ablates."""
    masks = torch.zeros(len(conditions), n_layers, width, dtype=torch.bool)
    for c, neurons in enumerate(conditions):
        for layer, units in neurons.items():
            masks[c, int(layer), torch.as_tensor(np.asarray(units, dtype=np.int64))] = True
    return masks


@torch.no_grad()
def embed_under_ablation(
    model,
    ablator: Ablator,
    cache: dict[int, torch.Tensor],
    conditions: Sequence[dict[int, np.ndarray]],
    image_rows: Sequence[np.ndarray],
    batch_size: int,
    cls_only: bool | None = None,
) -> list[np.ndarray]:
    """Embeddings [len(image_rows[c]), dim] float32 of each condition's images.

    A condition maps layer -> units to ablate (all at once, one pass); `image_rows[c]` are
    row indices into the cached images. Rows of all conditions are packed into shared
    batches, each row with its own masks; a batch starts at the deepest cached layer at or
    before its rows' earliest ablated layer. A condition with no neurons is run like any
    other (the caller may use the stored embeddings instead).
    """
    visual = model.visual
    n_layers = len(visual.transformer.resblocks)
    width = ablator.values[0].shape[1]
    device = next(model.parameters()).device
    if cls_only is None:
        cls_only = _cls_only_ok(visual)
    masks = condition_masks(conditions, n_layers, width).to(device)
    cached = sorted(cache)
    starts = []
    for neurons in conditions:
        first = min((int(k) for k, u in neurons.items() if len(u)), default=n_layers - 1)
        starts.append(max(layer for layer in cached if layer <= first))
    out = [np.empty((len(rows), 0), dtype=np.float32) for rows in image_rows]
    pieces: list[list[torch.Tensor]] = [[] for _ in conditions]
    for start in sorted(set(starts)):
        conds = [c for c in range(len(conditions)) if starts[c] == start]
        cond_idx = np.concatenate([np.full(len(image_rows[c]), c) for c in conds])
        img_idx = np.concatenate([np.asarray(image_rows[c], dtype=np.int64) for c in conds])
        for b in range(0, len(cond_idx), batch_size):
            ci = torch.as_tensor(cond_idx[b : b + batch_size], device=device)
            rows = torch.as_tensor(img_idx[b : b + batch_size], device=cache[start].device)
            row_masks = masks[ci]  # [batch, layer, width]
            used = row_masks.any(dim=(0, 2)).nonzero().flatten().tolist()
            ablator.masks = {layer: row_masks[:, layer] for layer in used}
            emb = finish_from(visual, cache[start][rows].to(device), start, cls_only)
            ablator.masks = {}
            emb = emb.float().cpu()
            for c in torch.unique(ci).tolist():
                pieces[c].append(emb[(ci == c).cpu()])
    for c in range(len(conditions)):
        if pieces[c]:
            out[c] = torch.cat(pieces[c]).numpy()
    return out
