"""Reading the activation store without torch (analysis jobs must start fast and small)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def open_store(path: str | Path):
    """Open a finished store read-only; refuses one that was not completed."""
    import zarr

    root = zarr.open_group(str(path), mode="r")
    if not root.attrs.get("complete"):
        raise ValueError(f"{path} is not a complete activation store")
    return root


def layer_slice(root, layer: int) -> np.ndarray:
    """mlp_out of one block: [image, token, width] (reads only that block's chunks)."""
    width = root.attrs["width"]
    return root["mlp_out"][:, :, layer * width : (layer + 1) * width]
