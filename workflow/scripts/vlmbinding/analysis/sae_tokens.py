"""Tokens in and out of a sparse autoencoder: a seeded sample of a layer's tokens to train on, and
the latent activations of every image reduced over its tokens like the neurons'."""

from __future__ import annotations

import numpy as np

from vlmbinding.analysis.sae import SparseDictionary, encode


def sae_pool_activations(
    mlp_out,
    dictionary: SparseDictionary,
    *,
    how: str = "mean",
    tokens: str = "all",
    batch_images: int = 32,
    device: str = "cpu",
) -> np.ndarray:
    """Per image, the latents reduced over its tokens: float32 [image, latent].

    mlp_out is one layer's [image, token, unit] activations (a numpy or zarr array, read
    `batch_images` images at a time); each token is encoded, then the latents are reduced
    over the image's tokens exactly as the neurons are (`reduce_tokens(how, tokens)`, the
    mean over all tokens by default), so the overlap measure can take [image, latent] where
    it takes [image, neuron].
    """
    from vlmbinding.analysis.neurons import reduce_tokens

    n_images = mlp_out.shape[0]
    out = np.empty((n_images, dictionary.n_latents), dtype=np.float32)
    for start in range(0, n_images, batch_images):
        block = np.asarray(mlp_out[start : start + batch_images], dtype=np.float32)
        b, t, u = block.shape
        codes = encode(dictionary, block.reshape(b * t, u), device=device)
        out[start : start + b] = reduce_tokens(codes.reshape(b, t, -1), how=how, tokens=tokens)
    return out


def sample_tokens(mlp_out, n_tokens: int, *, seed: int, batch_images: int = 32) -> np.ndarray:
    """A seeded sample of n_tokens (image, token) rows of mlp_out [image, token, unit].

    float32 [n_tokens, unit], drawn without replacement over all tokens of all images (the
    unit sampled is the token); all tokens, in order, when there are at most n_tokens.
    mlp_out may be a zarr array: it is read `batch_images` images at a time.
    """
    n_images, n_tok, n_units = mlp_out.shape
    total = n_images * n_tok
    if n_tokens >= total:
        flat = np.arange(total)
    else:
        flat = np.sort(np.random.default_rng(seed).choice(total, size=n_tokens, replace=False))
    out = np.empty((len(flat), n_units), dtype=np.float32)
    image = flat // n_tok
    for start in range(0, n_images, batch_images):
        rows = np.flatnonzero((image >= start) & (image < start + batch_images))
        if len(rows):
            block = np.asarray(mlp_out[start : start + batch_images])
            out[rows] = block[image[rows] - start, flat[rows] % n_tok]
    return out
