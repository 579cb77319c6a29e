"""What an activation store holds: its arrays and the attributes that describe them.

Torch-free, so that a store can be laid out and described without a model (the benchmarks
build synthetic stores with these). `vlmbinding.extraction.recording` writes both.
"""

from __future__ import annotations

from vlmbinding.extraction import store as st

REDUCTION_NOTE = (
    "mlp_mean/mlp_max: mean (float32 accumulation) and max over all tokens of the "
    "storage-dtype values; *_patches: the same without the prefix tokens (CLS, registers)"
)


def token_order(geometry: dict) -> str:
    """How the token axis is laid out: prefix tokens, then patches row by row."""
    n = geometry["n_prefix_tokens"]
    prefix = ["CLS"] * bool(geometry["cls_token"]) + [
        f"{geometry['n_registers']} register(s)"
    ] * bool(geometry["n_registers"])
    head = ", then ".join(prefix) + ", then " if prefix else ""
    return f"{head}patches row by row (token {n} + row * grid + col)"


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


def model_identity(loaded, name: str) -> dict:
    """What identifies the recorded model: its name, arch, weights and quick_gelu."""
    keys = ("arch", "weights", "quick_gelu")
    return {"name": name, **{k: getattr(loaded, k) for k in keys}}


def store_attributes(
    model: dict, geometry: dict, n_layers: int, image_ids: list[str], settings: dict
) -> dict:
    """The store's attributes: `model` (name, arch, weights, quick_gelu), the vision tower's
    `geometry` (`vision_geometry`: width, tokens, prefix tokens, grid, image_size,
    patch_size, embed_dim, family, pool),
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
        "n_prefix_tokens": geometry["n_prefix_tokens"],
        "cls_token": geometry["cls_token"],
        "n_registers": geometry["n_registers"],
        "tower": geometry["family"],
        "pool": geometry["pool"],
        "token_grid": [geometry["grid"], geometry["grid"]],
        "token_order": token_order(geometry),
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
