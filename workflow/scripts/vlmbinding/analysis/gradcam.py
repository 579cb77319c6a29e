"""Grad-CAM of CLIP's text-image similarity, and how much of a map falls on each object.

METHOD.md section 7. The target is the cosine similarity between the image embedding and a
prompt's text embedding; at a hooked layer, activations A and gradients dTarget/dA are taken
over the patch tokens (CLS dropped), the channel weights are the gradients averaged over the
patch tokens, and the map is ReLU(sum_c w_c A_c) on the patch grid, upsampled to the image.
The prefix tokens (CLS, registers) are dropped as the CLS token is. For a tower whose
embedding is read from the CLS token (CLIP, EVA02) the default layer is the MLP output of the
second-to-last block: the last block's patch tokens never reach the CLS token, so its maps are
all zero. A pooled tower (SigLIP's and PE-Core's attention-pool head, `pool: map`; mean
pooling) reads every token of the last block, so its last block gives non-zero maps as well
(tests/analysis/test_gradcam_towers.py); `recommended_layer` picks the layer for each.
For an EVA block the hook sits on `mlp`, before `gamma_2`: Grad-CAM's map is the same for
any per-channel scale of the activations (the weights scale inversely).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

MODULES = ("mlp", "ln_1")

# pytorch_grad_cam's scale_cam_image divides by (1e-7 + max); the same constant keeps our
# normalised maps equal to theirs and an all-zero map zero.
NORMALISE_EPS = 1e-7


def recommended_layer(pool: str) -> int:
    """The Grad-CAM layer that gives non-zero maps: -1 for a pooled tower (attention pool
    `map`, mean pooling `avg`), -2 for one read from the class token (`tok`, `token`)."""
    return -1 if pool in ("map", "avg") else -2


def hooked_module(model: torch.nn.Module, layer: int, module: str) -> torch.nn.Module:
    """The module of the vision tower whose output Grad-CAM explains (METHOD.md section 7).

    `layer` indexes the tower's blocks (`vlmbinding.models.towers.vision_blocks`; negative
    counts from the end). "mlp": the block's MLP output before it is added to the residual
    stream, where the activations are recorded (`towers.mlp_point`: `ls_2` or `ls2`, the
    LayerScale or Identity; an EVA block's `mlp`). "ln_1": the block's input LayerNorm, the
    usual choice of Grad-CAM libraries for ViTs.
    """
    from vlmbinding.models.towers import input_norm, mlp_point, tower_family, vision_blocks

    if module not in MODULES:
        raise ValueError(f"unknown Grad-CAM module {module!r}; choose one of {list(MODULES)}")
    blocks = vision_blocks(model)
    depth = len(blocks)
    if not -depth <= layer < depth:
        raise ValueError(
            f"Grad-CAM layer {layer} is out of range for a vision tower of {depth} blocks "
            f"(use {-depth}..{depth - 1})"
        )
    block = blocks[layer]
    return mlp_point(block, tower_family(model)).module if module == "mlp" else input_norm(block)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put `model` in eval mode for the block and give it back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def text_embeddings(model: torch.nn.Module, tokenizer, prompts: Sequence[str]) -> torch.Tensor:
    """L2-normalised text embeddings [P, D] of `prompts`, on the model's device, no grad."""
    if tokenizer is None:  # a transformers vision tower without a text tower
        raise TypeError(
            "this model has no tokenizer: its vision tower has no text tower of its own, and "
            "text-image similarity (Grad-CAM, the binding test) needs one (not applicable)"
        )
    tokens = tokenizer(list(prompts)).to(model_device(model))
    with eval_mode(model), torch.no_grad():
        emb = model.encode_text(tokens)
    return F.normalize(emb.float(), dim=-1)


def patch_grid(model: torch.nn.Module, tokens: int) -> tuple[int, int]:
    """Rows and columns of the patch grid for `tokens` patch tokens (prefix already dropped)."""
    from vlmbinding.models.towers import built_grid

    grid = built_grid(model)
    if grid is None:
        side = math.isqrt(tokens)
        grid = (side, side)
    rows, cols = int(grid[0]), int(grid[1])
    if rows * cols != tokens:
        raise ValueError(
            f"{tokens} patch tokens do not fill a {rows}x{cols} grid (unexpected prefix tokens?)"
        )
    return rows, cols


def gradcam_maps(
    model: torch.nn.Module,
    images: torch.Tensor,
    text_emb: torch.Tensor,
    layer: int = -2,
    module: str = "mlp",
) -> torch.Tensor:
    """Raw Grad-CAM maps [B, P, rows, cols] on the patch grid (METHOD.md section 7).

    For image b and prompt p the target is the cosine similarity of
    `model.encode_image(images)[b]` with `text_emb[p]`. Maps are >= 0 and not normalised
    (see `normalise` and `upsample`). One forward pass for the batch, one backward per
    prompt. Runs on the device of `images` (the model must be there too); the model is put
    in eval mode and left in the mode, and with the hooks and parameters, it came with.
    """
    from vlmbinding.models.towers import prefix_tokens

    target_module = hooked_module(model, layer, module)
    first = prefix_tokens(model)
    if text_emb.ndim != 2 or text_emb.shape[0] == 0:
        raise ValueError(f"text_emb must be [P, D] with P >= 1, got {tuple(text_emb.shape)}")
    text = F.normalize(text_emb.to(images.device).float(), dim=-1)
    captured: list[torch.Tensor] = []

    def capture(_module, _inputs, output):
        # Swap the output for a detached leaf that requires grad: the gradient with respect
        # to it is dTarget/dA whether or not the model's parameters require grad, and no
        # parameter's .grad is ever touched.
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    handle = target_module.register_forward_hook(capture)
    try:
        with eval_mode(model), torch.enable_grad():
            image_emb = model.encode_image(images)
            if len(captured) != 1:
                raise RuntimeError(f"the hooked module ran {len(captured)} times, expected once")
            acts = captured[0]
            sims = F.normalize(image_emb.float(), dim=-1) @ text.T  # [B, P]
            # Images do not interact in the forward pass, so the gradient of the sum over the
            # batch gives each image the gradient of its own target (as pytorch_grad_cam does).
            grads = [
                torch.autograd.grad(sims[:, p].sum(), acts, retain_graph=p < sims.shape[1] - 1)[0]
                for p in range(sims.shape[1])
            ]
    finally:
        handle.remove()
    a = acts.detach()[:, first:].float()  # [B, N, C], prefix tokens (CLS, registers) dropped
    g = torch.stack([gr[:, first:].float() for gr in grads], dim=1)  # [B, P, N, C]
    weights = g.mean(dim=2)  # [B, P, C]
    cam = torch.relu(torch.einsum("bnc,bpc->bpn", a, weights))
    rows, cols = patch_grid(model, a.shape[1])
    # Patch tokens come from flattening the patch-embedding conv's [rows, cols] output row by
    # row, so a row-major reshape puts every token back at its place in the image.
    return cam.reshape(*cam.shape[:2], rows, cols)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of maps [..., rows, cols] to `size` = (H, W), align_corners=False."""
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:]).float()
    out = F.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False)
    return out.reshape(*lead, *out.shape[-2:])


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Each map [..., H, W] scaled to [0, 1] as pytorch_grad_cam's scale_cam_image does.

    (m - min) / (1e-7 + max(m - min)): an all-zero (or constant) map becomes all zero.
    """
    shifted = maps - maps.amin(dim=(-2, -1), keepdim=True)
    return shifted / (NORMALISE_EPS + shifted.amax(dim=(-2, -1), keepdim=True))


def box_mass_shares(heatmap: np.ndarray, boxes) -> np.ndarray:
    """Share of the map's total mass inside each box: [n] for boxes [n, 4] (METHOD.md 7).

    Boxes are x0, y0, x1, y1 in pixels of the map, x1 and y1 exclusive (the slice
    heatmap[y0:y1, x0:x1]); the map is assumed >= 0. A map whose total is zero (all zero:
    ReLU kept nothing) has no share: every share is NaN, not 0, so that such maps can be
    counted and left out of means instead of pulling them towards 0. Non-overlapping boxes
    have shares that sum to at most 1.
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be 2-D [H, W], got shape {heatmap.shape}")
    boxes = np.asarray(boxes).reshape(-1, 4)
    height, width = heatmap.shape
    # A box past the map's edge means the map and the boxes are not at the same size: an
    # error, not something to clip silently.
    bad = (boxes[:, :2] < 0).any(axis=1) | (boxes[:, 2] > width) | (boxes[:, 3] > height)
    if bad.any():
        raise ValueError(
            f"boxes {boxes[bad].tolist()} lie outside the {height}x{width} map; upsample the "
            "map to the image size the boxes are measured in"
        )
    total = heatmap.sum()
    if total <= 0:
        return np.full(len(boxes), np.nan)
    return np.array(
        [heatmap[int(y0) : int(y1), int(x0) : int(x1)].sum() / total for x0, y0, x1, y1 in boxes]
    )


# --- the workflow's use: every binding prompt of an image, measured on its objects -------


def choose_images(images: pd.DataFrame, ids: Sequence[str], counts, n: int, seed: int):
    """The images to explain: the given ids, or a seeded sample of `n` with `counts` objects."""
    if ids:
        unknown = sorted(set(ids) - set(images["image_id"]))
        if unknown:
            raise ValueError(f"gradcam.images names unknown image ids: {unknown}")
        return images.set_index("image_id").loc[list(ids)].reset_index()
    pool = images[images["num_objects"].isin(counts)]
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(pool), size=min(n, len(pool)), replace=False))
    return pool.iloc[take].reset_index(drop=True)


def object_shares(raw_maps: np.ndarray, prompts, objects) -> pd.DataFrame:
    """Share of each prompt's map on each object of the image (maps at the image's size).

    Roles: for a true prompt the object it names is 'target'; for a swapped prompt the
    objects carrying its colour and its shape are 'color_object' and 'shape_object'; the
    rest are 'other'. `area_share` is the object's box area over the image area, the share
    a map spread evenly over the image would give it. `zero_map` marks the rows of a map
    that is all zero; their `share` is NaN (no share, see `box_mass_shares`).
    """
    boxes = objects[["x0", "y0", "x1", "y1"]].to_numpy()
    height, width = raw_maps.shape[-2:]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (height * width)
    rows = []
    for p, prompt in enumerate(prompts.itertuples(index=False)):
        shares = box_mass_shares(raw_maps[p], boxes)
        zero = bool(np.isnan(shares).all()) if len(shares) else False
        for o in range(len(objects)):
            if prompt.kind == "true":
                role = "target" if o == prompt.color_object else "other"
            elif prompt.kind == "swapped":
                role = {prompt.color_object: "color_object", prompt.shape_object: "shape_object"}
                role = role.get(o, "other")
            else:
                role = "other"
            rows.append(
                {
                    "prompt": prompt.prompt,
                    "kind": prompt.kind,
                    "object": o,
                    "shape": objects["shape"].iloc[o],
                    "color": objects["color"].iloc[o],
                    "role": role,
                    "share": float(shares[o]),
                    "zero_map": zero,
                    "area_share": float(area[o]),
                }
            )
    return pd.DataFrame(rows)


def localisation_summary(shares: pd.DataFrame) -> pd.DataFrame:
    """Mean share per prompt kind and object role, with the even-spread baseline.

    `n` counts the (map, object) rows, `n_zero_map` those of all-zero maps, which have no
    share and are left out of `mean_share` (the mean over the `n - n_zero_map` others);
    `mean_area_share` is over all rows.
    """
    if "zero_map" not in shares:  # written before the column: NaN shares are the zero maps
        shares = shares.assign(zero_map=shares["share"].isna())
    return (
        shares.groupby(["kind", "role"], sort=True)
        .agg(
            n=("share", "size"),
            n_zero_map=("zero_map", "sum"),
            mean_share=("share", "mean"),
            mean_area_share=("area_share", "mean"),
        )
        .reset_index()
    )
