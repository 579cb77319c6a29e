"""The analysed images' latents for the autoencoder basis, recomputed by the model.

A reduced activation store (activations.store: reduced) keeps no per-token values, so the
analysed images' tokens cannot be read back and encoded as a tokens store's are
(`analysis.sae_tokens.sae_pool_by_seed`). As for the patch maps
(`patch_maps.maps_from_model`), the model is run again over the analysed images, its MLP
outputs recorded as the store records them (same hook, storage dtype, preprocessing,
centring, autocast), and each batch's tokens of every pool layer are encoded by every
seed's dictionary and reduced over each image's tokens on the model's device, as
`sae_pool_activations` reduces a tokens store's (`neurons.reduce_tokens`: the mean,
accumulated in float32, or the max, over all tokens or over the patches without the
`n_prefix_tokens` prefix tokens). Only [image, latent] per seed and layer is kept, never a
batch's [token, latent] codes beyond one chunk: memory is the model, one batch and the
reduced latents, so 50,000 images stay feasible.

torch and the recording code are imported inside the functions: the workflow imports this
module at parse time (`latents_mem_mb`) and parsing stays torch-free.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from vlmbinding.atomic import atomic_path

log = logging.getLogger(__name__)

CHUNK_ROWS = 8192  # tokens encoded at once: [rows, latent] float32 codes on the device


def latents_mem_mb(n_images: int, n_latents: int, n_seeds: int) -> int:
    """MB of the reduced latents a job keeps: float32 [image, latent pool] per seed."""
    return int(np.ceil(int(n_images) * int(n_latents) * int(n_seeds) * 4 / 1e6))


def sae_latents_mb(sae: dict, geometry: dict, layers, n_images: int) -> int:
    """MB of every seed's reduced latents of one model: `sae` the config's sharing.sae,
    `geometry` the model's vision geometry (width), `layers` its analysed layer pool."""
    n_latents = int(sae["expansion"]) * len(layers) * int(geometry["width"])
    return latents_mem_mb(n_images, n_latents, len(sae["seeds"]))


def reduce_latents(model, mean, scale, block, *, how: str, tokens: str, n_prefix: int):
    """float32 [image, latent] on the block's device: one layer's tokens block [image,
    token, unit] (a torch tensor in the storage dtype) standardised ((x - mean) / scale),
    encoded by the TopK autoencoder `model` (on the same device) and reduced over each
    image's tokens: `how` mean | max over `tokens` all | patches (without the first
    `n_prefix`). Encoding is per token, so dropping the prefix before encoding gives what
    `reduce_tokens` gives after it. Tokens are encoded CHUNK_ROWS at a time."""
    import torch

    from vlmbinding.analysis.neurons import REDUCTIONS, TOKEN_SETS

    if how not in REDUCTIONS:
        raise ValueError(f"how={how!r} is not a token reduction; use one of {REDUCTIONS}")
    if tokens not in TOKEN_SETS:
        raise ValueError(f"tokens={tokens!r} is not a token set; use one of {TOKEN_SETS}")
    x = block[:, int(n_prefix) :] if tokens == "patches" else block
    b, t, u = x.shape
    per_chunk = max(1, CHUNK_ROWS // max(t, 1))
    out = []
    with torch.no_grad():
        for start in range(0, b, per_chunk):
            xb = (x[start : start + per_chunk].float() - mean) / scale
            codes = model.encode(xb.reshape(-1, u))[1].reshape(len(xb), t, -1)
            out.append(codes.mean(dim=1) if how == "mean" else codes.amax(dim=1))
    return torch.cat(out)


def model_latents(
    loaded,
    image_paths: list[str],
    layers,
    seeds,
    dictionary,
    *,
    how: str = "mean",
    tokens: str = "all",
    batch_size: int = 32,
    dtype: str = "float16",
    preprocess: str = "model",
    center_mlp_out: bool = False,
    autocast: str = "none",
    workers: int = 2,
) -> dict[int, np.ndarray]:
    """Seed -> float32 [image, latent pool]: the images' latents reduced per image, each
    layer's latents side by side in `layers` order (as `sae_pool_by_seed` gives them from
    a tokens store, and `sharing_stage.pool_activations` puts the neurons).

    `dictionary(layer, seed)` gives that layer's `SparseDictionary` of one SAE seed; the
    dictionaries go to the model's device once. The images run in batches of `batch_size`
    with the recording settings of the activation store (dtype, preprocess,
    center_mlp_out, autocast: those the tokens store would have been written with); the
    prefix tokens that tokens="patches" drops are the model's `n_prefix_tokens`. A
    non-finite MLP output is an error naming the layer and the batch's images; progress is
    logged per batch.
    """
    import torch

    from vlmbinding.analysis.sae import _placed
    from vlmbinding.extraction.images import choose_preprocess, image_batches
    from vlmbinding.extraction.recording import AUTOCAST, forward_layers

    layers, seeds = [int(x) for x in layers], [int(s) for s in seeds]
    if not layers:
        raise ValueError("the layer pool is empty (analysis.layers)")
    if not seeds:
        raise ValueError("no SAE seed (sharing.sae.seeds is empty)")
    if autocast not in AUTOCAST:
        raise ValueError(f"activations.autocast must be one of {sorted(AUTOCAST)}")
    model = loaded.model.eval()
    device = next(model.parameters()).device
    n_prefix = int(loaded.geometry.get("n_prefix_tokens", 1))
    coders, columns, width = {}, {}, 0
    for layer in layers:
        n_latents = set()
        for seed in seeds:
            d = dictionary(layer, seed)
            if d.mean.shape[0] != loaded.geometry["width"]:
                raise ValueError(
                    f"layer {layer}, SAE seed {seed}: the dictionary was trained on "
                    f"{d.mean.shape[0]} units, the model's layers have {loaded.geometry['width']}"
                )
            coders[layer, seed] = (
                _placed(d.model, device),
                torch.from_numpy(np.asarray(d.mean, dtype=np.float32)).to(device),
                torch.from_numpy(np.asarray(d.scale, dtype=np.float32)).to(device),
            )
            n_latents.add(d.n_latents)
        if len(n_latents) != 1:
            raise ValueError(f"layer {layer}: the SAE seeds' dictionaries differ in size")
        columns[layer] = slice(width, width + n_latents.pop())
        width = columns[layer].stop
    n = len(image_paths)
    out = {seed: np.empty((n, width), dtype=np.float32) for seed in seeds}
    transform = choose_preprocess(loaded, preprocess)
    t0, n_batches = time.time(), -(-n // batch_size)
    for i, (start, images) in enumerate(image_batches(image_paths, transform, batch_size, workers)):
        outputs, _ = forward_layers(
            model, images.to(device), center_mlp_out, getattr(torch, dtype), AUTOCAST[autocast]
        )
        stop = start + len(images)
        for layer in layers:
            block = outputs[layer]
            if not bool(torch.isfinite(block).all()):
                raise ValueError(
                    f"layer {layer}: the model's MLP outputs hold NaN or infinite values for "
                    f"images {start}-{stop - 1} (0-based rows of images.parquet)"
                )
            for seed in seeds:
                reduced = reduce_latents(
                    *coders[layer, seed], block, how=how, tokens=tokens, n_prefix=n_prefix
                )
                out[seed][start:stop, columns[layer]] = reduced.cpu().numpy()
        log.info("batch %d/%d: %d/%d images", i + 1, n_batches, stop, n)
    for d_model, _, _ in coders.values():
        _placed(d_model, "cpu")
    log.info(
        "%d images x %d latents (%d layers, %d SAE seeds) in %.1f s",
        n, width, len(layers), len(seeds), time.time() - t0,
    )  # fmt: skip
    return out


def save_latents(path, latents: dict[int, np.ndarray], meta: dict) -> None:
    """Write the latents (`model_latents`) to an .npz (atomically): one array `seed_<s>`
    per seed and `meta` (image_ids, layers, how, tokens: what `load_latents` checks) as
    JSON."""
    arrays = {f"seed_{int(s)}": np.asarray(x, dtype=np.float32) for s, x in latents.items()}
    arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_latents(path, seeds, expected: dict) -> dict[int, np.ndarray]:
    """Seed -> float32 [image, latent pool] from `save_latents`' file, refused with an error
    naming the key when its meta differs from `expected` (e.g. other images, in another
    order, or another layer pool or token reduction) or a seed is missing."""
    with np.load(Path(path)) as f:
        meta = json.loads(str(f["meta"]))
        for key, want in expected.items():
            if meta.get(key) != want:
                raise ValueError(
                    f"{path}: its {key} is {_short(meta.get(key))}, expected {_short(want)} "
                    "(recompute it: delete the file)"
                )
        missing = [int(s) for s in seeds if f"seed_{int(s)}" not in f.files]
        if missing:
            raise ValueError(f"{path}: no latents of SAE seeds {missing} (sharing.sae.seeds)")
        return {int(s): f[f"seed_{int(s)}"] for s in seeds}


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
