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
    n_prefix: int = 1,
    batch_images: int = 32,
    device: str = "cpu",
) -> np.ndarray:
    """Per image, the latents reduced over its tokens: float32 [image, latent].

    mlp_out is one layer's [image, token, unit] activations (a numpy or zarr array, read
    `batch_images` images at a time); each token is encoded, then the latents are reduced
    over the image's tokens exactly as the neurons are (`reduce_tokens(how, tokens)`, the
    mean over all tokens by default; `n_prefix` the store's prefix tokens, which
    tokens="patches" drops), so the overlap measure can take [image, latent] where it takes
    [image, neuron].
    """
    from vlmbinding.analysis.neurons import reduce_tokens

    n_images = mlp_out.shape[0]
    out = np.empty((n_images, dictionary.n_latents), dtype=np.float32)
    for start in range(0, n_images, batch_images):
        block = np.asarray(mlp_out[start : start + batch_images], dtype=np.float32)
        b, t, u = block.shape
        codes = encode(dictionary, block.reshape(b * t, u), device=device)
        out[start : start + b] = reduce_tokens(
            codes.reshape(b, t, -1), how=how, tokens=tokens, n_prefix=n_prefix
        )
    return out


def token_sample_index(n_images: int, n_tok: int, n_tokens: int, *, seed: int) -> np.ndarray:
    """Sorted flat indices (image * n_tok + token) of a seeded sample of n_tokens tokens.

    Drawn without replacement over all tokens of all images (the unit sampled is the token);
    all of them, in order, when there are at most n_tokens. `sample_tokens` and
    `TokenSample` (which fills the sample batch by batch, as a model produces the tokens)
    draw the same indices for the same arguments.
    """
    total = int(n_images) * int(n_tok)
    if n_tokens >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=int(n_tokens), replace=False))


class TokenSample:
    """A seeded token sample of [image, token, unit] activations filled batch by batch.

    `add(start, block)` takes the images start .. start + len(block) ([b, token, unit]) and
    copies the sampled tokens among them; `values` is float32 [sample, unit], rows in the
    order of `token_sample_index` (identical to `sample_tokens` on the whole array once
    every image has been added; `complete` says whether it has).
    """

    def __init__(self, n_images: int, n_tok: int, n_units: int, n_tokens: int, *, seed: int):
        self.n_tok = int(n_tok)
        self.flat = token_sample_index(n_images, n_tok, n_tokens, seed=seed)
        self.image = self.flat // self.n_tok
        self.values = np.empty((len(self.flat), int(n_units)), dtype=np.float32)
        self._filled = np.zeros(len(self.flat), dtype=bool)

    def add(self, start: int, block) -> None:
        block = np.asarray(block)
        if block.ndim != 3 or block.shape[1:] != (self.n_tok, self.values.shape[1]):
            raise ValueError(
                f"a block of tokens must be [image, {self.n_tok}, {self.values.shape[1]}], "
                f"got {block.shape}"
            )
        rows = np.flatnonzero((self.image >= start) & (self.image < start + len(block)))
        if len(rows):
            self.values[rows] = block[self.image[rows] - start, self.flat[rows] % self.n_tok]
            self._filled[rows] = True

    @property
    def complete(self) -> bool:
        return bool(self._filled.all())


def sample_tokens(mlp_out, n_tokens: int, *, seed: int, batch_images: int = 32) -> np.ndarray:
    """A seeded sample of n_tokens (image, token) rows of mlp_out [image, token, unit].

    float32 [n_tokens, unit], drawn without replacement over all tokens of all images (the
    unit sampled is the token; `token_sample_index`); all tokens, in order, when there are
    at most n_tokens. mlp_out may be a zarr array: it is read `batch_images` images at a time.
    """
    n_images, n_tok, n_units = mlp_out.shape
    sample = TokenSample(n_images, n_tok, n_units, n_tokens, seed=seed)
    for start in range(0, n_images, batch_images):
        if ((sample.image >= start) & (sample.image < start + batch_images)).any():
            sample.add(start, mlp_out[start : start + batch_images])
    return sample.values


def sae_pool_by_seed(
    read_tokens,
    dictionary,
    layers,
    seeds,
    *,
    how: str = "mean",
    tokens: str = "all",
    n_prefix: int = 1,
    device: str = "cpu",
) -> dict[int, np.ndarray]:
    """Seed -> float32 [image, latent] of a layer pool in the autoencoder basis.

    `read_tokens(layer)` gives one layer's [image, token, unit] activations (read once per
    layer), `dictionary(layer, seed)` that layer's dictionary of one SAE seed; each layer's
    latents, reduced per image as the neurons are (`sae_pool_activations`), sit side by
    side in `layers` order, as `sharing_stage.pool_activations` puts the neurons.
    """
    if not len(layers):
        raise ValueError("the layer pool is empty (analysis.layers)")
    blocks: dict[int, list[np.ndarray]] = {int(s): [] for s in seeds}
    for layer in layers:
        mlp_out = read_tokens(int(layer))
        for seed in blocks:
            blocks[seed].append(
                sae_pool_activations(
                    mlp_out,
                    dictionary(int(layer), seed),
                    how=how,
                    tokens=tokens,
                    n_prefix=n_prefix,
                    device=device,
                )
            )
    return {seed: np.concatenate(b, axis=1) for seed, b in blocks.items()}
