"""Recording the MLP outputs of every block of CLIP's vision tower into a Zarr store.

METHOD.md section 2. For each image and each token, the output of every residual block's
MLP before it is added to the residual stream: `mlp_out[image, token, layer*width + unit]`.
The store is written batch by batch (memory does not grow with the number of images),
writing overlaps the next forward pass, and the store only appears under its final name
once complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from .store import layer_slice, open_store  # noqa: F401 - re-exported for callers

log = logging.getLogger(__name__)

TOKEN_ORDER = "CLS, then patches row by row (token 1 + row * grid + col)"


def reference_preprocess(image_size: int):
    """The authors' preprocessing: resize to size x size, scale to [0, 1], nothing else."""
    return transforms.Compose(
        [
            transforms.Lambda(lambda im: im.convert("RGB")),
            transforms.Resize((image_size, image_size)),
            transforms.ToTensor(),
        ]
    )


def choose_preprocess(loaded, mode: str):
    """'model' = the model's own transform; 'reference' = the notebooks' (METHOD.md 2a)."""
    if mode == "model":
        return loaded.preprocess
    if mode == "reference":
        return reference_preprocess(loaded.geometry["image_size"])
    raise ValueError(f"activations.preprocess must be model or reference, not {mode!r}")


def blocks(model) -> list[torch.nn.Module]:
    return list(model.visual.transformer.resblocks)


@contextmanager
def recording_mlp_outputs(model, center: bool = False):
    """Collect each block's MLP output (hooked after LayerScale `ls_2`, which is the
    identity for CLIP, so: the MLP's second linear layer, before the residual add).

    Yields a list that each forward pass fills with one [batch, token, width] tensor per
    block, in block order. `center` subtracts each vector's mean over the width, which is
    what the authors' hooked model with centred writing weights recorded (METHOD.md 2b).
    """
    outputs: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        out = output.detach()
        if center:
            out = out - out.mean(dim=-1, keepdim=True)
        outputs.append(out)

    handles = [block.ls_2.register_forward_hook(hook) for block in blocks(model)]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def forward_batch(model, images: torch.Tensor, center: bool = False):
    """One forward pass: (mlp_out [B, T, layers*width], embeddings [B, D]), on the device."""
    with recording_mlp_outputs(model, center) as outputs:
        embeddings = model.encode_image(images)
    return torch.cat(outputs, dim=-1), embeddings


def load_images(paths: list[str], preprocess) -> torch.Tensor:
    tensors = []
    for p in paths:
        with Image.open(p) as im:
            tensors.append(preprocess(im.convert("RGB")))
    return torch.stack(tensors)


def batches(
    paths: list[str], preprocess, batch_size: int, pool
) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, images) per batch; the next batch is read while the current one runs."""
    starts = list(range(0, len(paths), batch_size))
    pending = pool.submit(load_images, paths[:batch_size], preprocess) if starts else None
    for i, start in enumerate(starts):
        images = pending.result()
        if i + 1 < len(starts):
            nxt = starts[i + 1]
            pending = pool.submit(load_images, paths[nxt : nxt + batch_size], preprocess)
        yield start, images


def create_store(path, n_images, geometry, n_layers, width, embed_dim, batch_size, dtype, level):
    """Empty arrays; one chunk = one layer of one batch of images (per-layer readers touch
    only their chunks)."""
    import zarr
    from zarr.codecs import ZstdCodec

    compressors = [ZstdCodec(level=level)] if level > 0 else None
    root = zarr.open_group(str(path), mode="w")
    chunk_images = min(batch_size, n_images)
    root.create_array(
        "mlp_out",
        shape=(n_images, geometry["tokens"], n_layers * width),
        chunks=(chunk_images, geometry["tokens"], width),
        dtype=dtype,
        compressors=compressors,
        fill_value=0,
        dimension_names=["image", "token", "neuron"],
    )
    root.create_array(
        "embeddings",
        shape=(n_images, embed_dim),
        chunks=(chunk_images, embed_dim),
        dtype="float32",
        compressors=compressors,
        fill_value=0,
        dimension_names=["image", "dim"],
    )
    return root


def extract_activations(
    loaded,
    image_paths: list[str],
    image_ids: list[str],
    out_path: str | Path,
    batch_size: int = 32,
    dtype: str = "float16",
    preprocess: str = "model",
    center_mlp_out: bool = False,
    compression_level: int = 1,
    model_name: str = "",
) -> None:
    """Run the vision tower over every image and stream its MLP outputs to `out_path`.

    Rows follow `image_paths`. The store is built under `<out_path>.partial` and renamed
    when complete, so an interrupted run never leaves something that looks finished.
    """
    model = loaded.model
    device = next(model.parameters()).device
    geometry = loaded.geometry
    n_layers, width = len(blocks(model)), geometry["width"]
    transform = choose_preprocess(loaded, preprocess)
    out_path = Path(out_path)
    partial = out_path.with_name(out_path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    root = create_store(
        partial,
        len(image_paths),
        geometry,
        n_layers,
        width,
        geometry["embed_dim"],
        batch_size,
        dtype,
        compression_level,
    )
    mlp_store, emb_store = root["mlp_out"], root["embeddings"]
    np_dtype = np.dtype(dtype)

    def write(start, mlp, emb):
        mlp_store[start : start + len(mlp)] = mlp
        emb_store[start : start + len(emb)] = emb

    t0, done = time.time(), 0
    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        pending = None
        for start, images in batches(image_paths, transform, batch_size, reader):
            mlp, emb = forward_batch(model, images.to(device), center_mlp_out)
            mlp = mlp.to(getattr(torch, dtype)).cpu().numpy().astype(np_dtype, copy=False)
            emb = emb.float().cpu().numpy()
            if pending is not None:
                pending.result()  # at most one batch waits for the disk: bounded memory
            pending = writer.submit(write, start, mlp, emb)
            done += len(images)
            rate = done / (time.time() - t0)
            log.info(f"{done}/{len(image_paths)} images ({rate:.1f} images/s)")
        if pending is not None:
            pending.result()
    root.attrs.update(
        {
            "model": model_name,
            "arch": loaded.arch,
            "weights": str(loaded.weights),
            "quick_gelu": loaded.quick_gelu,
            "layers": n_layers,
            "width": width,
            "neuron_index": "layer * width + unit",
            "tokens": geometry["tokens"],
            "token_grid": [geometry["grid"], geometry["grid"]],
            "token_order": TOKEN_ORDER,
            "image_size": geometry["image_size"],
            "patch_size": geometry["patch_size"],
            "embed_dim": geometry["embed_dim"],
            "preprocess": preprocess,
            "center_mlp_out": center_mlp_out,
            "dtype": dtype,
            "reduction": "none (per token)",
            "mlp_out": "output of each block's MLP before the residual add",
            "embeddings": "final projected image embedding, float32, not normalised",
            "image_ids": list(image_ids),
            "complete": True,
        }
    )
    shutil.rmtree(out_path, ignore_errors=True)
    os.replace(partial, out_path)
    log.info(f"wrote {out_path} in {time.time() - t0:.1f} s")
