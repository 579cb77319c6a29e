"""Per-patch activation maps of one neuron on the few images a figure shows.

From a tokens-mode store they are read; a reduced store has no per-token values, so they are
recomputed by running the model on just those images with the store's own settings
(preprocessing, dtype, centring, autocast), which gives the values a tokens-mode store holds.
"""

from __future__ import annotations

import numpy as np

from . import store as st


def maps_from_store(root, rows: list[int], layer: int, unit: int) -> np.ndarray:
    """float32 [image, grid, grid]: one neuron's activations on the patches (CLS dropped)."""
    grid = root.attrs["token_grid"]
    column = layer * root.attrs["width"] + unit
    if root.attrs.get("mode", "tokens") != "tokens":
        raise st.StoreError(f"{st.store_path(root)} is a reduced store: recompute the maps")
    values = np.stack([st.read(root, "mlp_out", (r, slice(1, None), column)) for r in rows])
    return values.astype(np.float32).reshape(len(rows), grid[0], grid[1])


def maps_from_model(loaded, paths: list[str], layer: int, unit: int, attrs: dict) -> np.ndarray:
    """The same maps, recomputed by a forward pass over `paths` with the store's settings."""
    import torch

    from .activations import AUTOCAST, choose_preprocess, forward_batch, load_images

    device = next(loaded.model.parameters()).device
    images = load_images(paths, choose_preprocess(loaded, attrs["preprocess"])).to(device)
    mlp, _ = forward_batch(
        loaded.model.eval(),
        images,
        attrs["center_mlp_out"],
        getattr(torch, attrs["dtype"]),
        AUTOCAST[attrs.get("autocast", "none")],
    )
    column = layer * attrs["width"] + unit
    grid = attrs["token_grid"]
    values = mlp[:, 1:, column].float().cpu().numpy()
    return values.reshape(len(paths), grid[0], grid[1])


def save_maps(path, image_ids, titles, maps, layer: int, unit: int) -> None:
    np.savez(
        path,
        image_ids=np.asarray(image_ids, dtype=str),
        titles=np.asarray(titles, dtype=str),
        maps=np.asarray(maps, dtype=np.float32),
        layer=layer,
        unit=unit,
    )


def load_maps(path) -> dict:
    with np.load(path) as f:
        return {
            "image_ids": f["image_ids"].tolist(),
            "titles": f["titles"].tolist(),
            "maps": f["maps"],
            "layer": int(f["layer"]),
            "unit": int(f["unit"]),
        }


def figure_maps(root, neurons, presence, image_ids, features, choice, n_top, image_paths, model):
    """The patch-map figure's neuron, images and maps: (image ids, titles, maps, layer,
    unit). From a tokens store the maps are read; from a reduced one `model()` (which loads
    the model) recomputes them over `image_paths[id]` of just those images."""
    from . import patches as pt

    neuron = pt.pick_neuron(neurons, choice)
    chosen = pt.images_to_show(neuron, presence, image_ids, features, n_top)
    layer, unit = int(neuron["layer"]), int(neuron["unit"])
    ids, titles = [i for i, _ in chosen], [t for _, t in chosen]
    if root.attrs.get("mode", "tokens") == "tokens":
        maps = maps_from_store(root, [image_ids.index(i) for i in ids], layer, unit)
    else:
        paths = [image_paths[i] for i in ids]
        maps = maps_from_model(model(), paths, layer, unit, dict(root.attrs))
    return ids, titles, maps, layer, unit
