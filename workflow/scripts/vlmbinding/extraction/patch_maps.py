"""Per-patch activation maps of one neuron on the few images a figure shows: which neuron
and images to show (the poster's patch maps), and their per-patch values.

From a tokens-mode store they are read; a reduced store has no per-token values, so they are
recomputed by running the model on just those images with the store's own settings
(preprocessing, dtype, centring, autocast), which gives the values a tokens-mode store holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlmbinding.extraction import store as st


def pick_neuron(feature_neurons: pd.DataFrame, choice: str | None) -> pd.Series:
    """The neuron to show: 'layer:unit' if given, else the lowest-entropy feature neuron."""
    if choice:
        layer, unit = (int(v) for v in choice.split(":"))
        hit = feature_neurons[
            (feature_neurons["layer"] == layer) & (feature_neurons["unit"] == unit)
        ]
        if hit.empty:
            raise ValueError(f"figures.neuron {choice!r} is not among the analysed neurons")
        return hit.iloc[0]
    return feature_neurons.sort_values(["entropy", "layer", "unit"]).iloc[0]


def top_features(neuron: pd.Series, features: list[str], n: int = 2) -> list[str]:
    aff = neuron[features].astype(float)
    return list(aff.sort_values(ascending=False, kind="stable").index[:n])


def images_to_show(
    neuron: pd.Series, presence: np.ndarray, image_ids: list[str], features: list[str], n_top: int
) -> list[tuple[str, str]]:
    """(image_id, title): the neuron's first top images, then the first image that has none
    of its two strongest features (the poster's contrast row)."""
    tops = str(neuron["top_images"]).split(",")[:n_top]
    shown = [(i, f"top image {r + 1}") for r, i in enumerate(tops)]
    strongest = [features.index(f) for f in top_features(neuron, features)]
    without = np.flatnonzero(~presence[:, strongest].any(axis=1))
    if len(without):
        shown.append(
            (image_ids[without[0]], "without " + " or ".join(features[j] for j in strongest))
        )
    return shown


def maps_from_store(root, rows: list[int], layer: int, unit: int) -> np.ndarray:
    """float32 [image, grid, grid]: one neuron's activations on the patches (the prefix
    tokens, CLS and registers, dropped)."""
    grid = root.attrs["token_grid"]
    column = layer * root.attrs["width"] + unit
    if root.attrs.get("mode", "tokens") != "tokens":
        raise st.StoreError(f"{st.store_path(root)} is a reduced store: recompute the maps")
    first = st.n_prefix_tokens(root)
    values = np.stack([st.read(root, "mlp_out", (r, slice(first, None), column)) for r in rows])
    return values.astype(np.float32).reshape(len(rows), grid[0], grid[1])


def maps_from_model(loaded, paths: list[str], layer: int, unit: int, attrs: dict) -> np.ndarray:
    """The same maps, recomputed by a forward pass over `paths` with the store's settings."""
    import torch

    from vlmbinding.extraction.images import choose_preprocess, load_images
    from vlmbinding.extraction.recording import AUTOCAST, forward_batch

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
    values = mlp[:, int(attrs.get("n_prefix_tokens", 1)) :, column].float().cpu().numpy()
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
    neuron = pick_neuron(neurons, choice)
    chosen = images_to_show(neuron, presence, image_ids, features, n_top)
    layer, unit = int(neuron["layer"]), int(neuron["unit"])
    ids, titles = [i for i, _ in chosen], [t for _, t in chosen]
    if root.attrs.get("mode", "tokens") == "tokens":
        maps = maps_from_store(root, [image_ids.index(i) for i in ids], layer, unit)
    else:
        paths = [image_paths[i] for i in ids]
        maps = maps_from_model(model(), paths, layer, unit, dict(root.attrs))
    return ids, titles, maps, layer, unit
