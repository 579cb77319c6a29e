"""Tokens for the sparse autoencoders: a seeded sample of each layer's MLP-output tokens.

The model runs over images that are not the analysed ones (sharing.sae.dataset_seed) and
keeps, per layer of the sharing pool, the same seeded sample of (image, token) positions
(`analysis.sae_tokens.TokenSample`), so no per-token store is written: memory is the
sample (n_tokens x width per layer) plus one batch. The MLP outputs are recorded as the
activation store records them (same hook, dtype, preprocessing, centring and autocast),
so the autoencoder is trained on what it later encodes.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from vlmbinding.analysis.sae_tokens import TokenSample
from vlmbinding.extraction.images import choose_preprocess, image_batches
from vlmbinding.extraction.recording import AUTOCAST, forward_layers

log = logging.getLogger(__name__)


def sample_model_tokens(
    loaded,
    image_paths: list[str],
    layers,
    n_tokens: int,
    *,
    seed: int,
    batch_size: int = 32,
    dtype: str = "float16",
    preprocess: str = "model",
    center_mlp_out: bool = False,
    autocast: str = "none",
    workers: int = 2,
) -> dict[int, np.ndarray]:
    """Layer -> float32 [n_tokens, width]: a seeded sample of the layer's MLP-output tokens
    over all tokens of all `image_paths` (the unit sampled is the token; the same positions
    in every layer). A non-finite value in a sampled token is an error naming the layer."""
    model = loaded.model.eval()
    device = next(model.parameters()).device
    geometry = loaded.geometry
    layers = [int(x) for x in layers]
    samples = {
        layer: TokenSample(
            len(image_paths), geometry["tokens"], geometry["width"], n_tokens, seed=seed
        )
        for layer in layers
    }
    transform = choose_preprocess(loaded, preprocess)
    t0 = time.time()
    for start, images in image_batches(image_paths, transform, batch_size, workers):
        outputs, _ = forward_layers(
            model, images.to(device), center_mlp_out, getattr(torch, dtype), AUTOCAST[autocast]
        )
        for layer, sample in samples.items():
            sample.add(start, outputs[layer].float().cpu().numpy())
        log.info("%d/%d images", min(start + batch_size, len(image_paths)), len(image_paths))
    out = {}
    for layer, sample in samples.items():
        if not sample.complete:
            raise RuntimeError(f"layer {layer}: the token sample was not filled (images missing?)")
        if not np.isfinite(sample.values).all():
            raise ValueError(f"layer {layer}: the sampled tokens hold NaN or infinite values")
        out[layer] = sample.values
    n = len(next(iter(out.values()))) if out else 0
    log.info("%d tokens of %d layers in %.1f s", n, len(out), time.time() - t0)
    return out
