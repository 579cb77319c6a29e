"""What an activation store holds: its arrays and the attributes that describe them.

Torch-free, so that a store can be laid out and described without a model (the benchmarks
build synthetic stores with these). `vlmbinding.extraction.recording` writes both.
"""

from __future__ import annotations

from vlmbinding.extraction import store as st

TOKEN_ORDER = "CLS, then patches row by row (token 1 + row * grid + col)"
REDUCTION_NOTE = (
    "mlp_mean/mlp_max: mean (float32 accumulation) and max over all tokens of the "
    "storage-dtype values; *_patches: the same without the CLS token"
)


def store_arrays(mode: str, n_layers: int, width: int, tokens: int, embed_dim: int, dtype: str):
    """The arrays of a store: name -> (shape after the image axis, dtype, dimension names)."""
    neurons = n_layers * width
    if mode == "tokens":
        arrays = {"mlp_out": ((tokens, neurons), dtype, ["image", "token", "neuron"])}
    elif mode == "reduced":
        arrays = {
            n: ((neurons,), "float32", ["image", "neuron"]) for n in st.REDUCED_ARRAYS.values()
        }
    else:
        raise ValueError(f"activations.store must be one of {st.MODES}, not {mode!r}")
    arrays["embeddings"] = ((embed_dim,), "float32", ["image", "dim"])
    return arrays


def store_attributes(
    model: dict, geometry: dict, n_layers: int, image_ids: list[str], settings: dict
) -> dict:
    """The store's attributes: `model` (name, arch, weights, quick_gelu), the vision tower's
    `geometry` (`vision_geometry`: width, tokens, grid, image_size, patch_size, embed_dim),
    its depth, the image ids in row order and the extraction `settings` (the config's
    activations block: preprocess, center_mlp_out, dtype, store, codec, ...)."""
    mode = settings.get("store", "tokens")
    return {
        "model": model["name"],
        "arch": model["arch"],
        "weights": str(model["weights"]),
        "quick_gelu": model["quick_gelu"],
        "layers": n_layers,
        "width": geometry["width"],
        "neuron_index": "layer * width + unit",
        "tokens": geometry["tokens"],
        "token_grid": [geometry["grid"], geometry["grid"]],
        "token_order": TOKEN_ORDER,
        "image_size": geometry["image_size"],
        "patch_size": geometry["patch_size"],
        "embed_dim": geometry["embed_dim"],
        "mlp_out": "output of each block's MLP before the residual add",
        "embeddings": "final projected image embedding, float32, not normalised",
        "image": "image ids, rows in images.parquet order (also in the image_ids attribute)",
        **{k: v for k, v in settings.items() if k != "store"},
        "mode": mode,
        "reduction": "none (per token)" if mode == "tokens" else REDUCTION_NOTE,
        "image_ids": list(image_ids),
    }
