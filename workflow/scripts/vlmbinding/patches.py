"""Choosing and reading one neuron's per-patch activations (the poster's patch maps)."""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def patch_map(root, image_row: int, layer: int, unit: int) -> np.ndarray:
    """[grid, grid] activations of one neuron on one image's patches (CLS dropped)."""
    width = root.attrs["width"]
    grid = root.attrs["token_grid"]
    values = root["mlp_out"][image_row, 1:, layer * width + unit].astype(np.float32)
    return values.reshape(grid[0], grid[1])
