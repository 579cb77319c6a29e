"""The region of an image that the model sees, and maps laid back over it.

open_clip's evaluation transform (and the toy model's) resizes the shorter side to the
input size and centre-crops a square: of a W x H image the model sees the centred
min(W, H) square, and a 1000x100 image loses nine tenths of its width. The authors'
`reference` preprocessing squashes the whole image into the square instead. Torch-free,
so the start-up checks can use it.
"""

from __future__ import annotations

import numpy as np

PREPROCESS_MODES = ("model", "reference")


def crops_to_square(mode: str) -> bool:
    """Whether the preprocessing `mode` (activations.preprocess) crops the centre square."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"activations.preprocess must be model or reference, not {mode!r}")
    return mode == "model"


def seen_region(width: int, height: int, crop: bool) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (x1, y1 exclusive) of the pixels the model sees.

    crop=True: the centred min(W, H) square (the centre crop rounds its offset as
    torchvision's CenterCrop does); crop=False: the whole image.
    """
    if not crop:
        return 0, 0, int(width), int(height)
    side = min(width, height)
    x0 = int(round((width - side) / 2.0))
    y0 = int(round((height - side) / 2.0))
    return x0, y0, x0 + side, y0 + side


def boxes_outside(boxes: np.ndarray, region, tolerance: float = 1.0) -> np.ndarray:
    """Mask of boxes [n, 4] (x0, y0, x1, y1) that reach more than `tolerance` px outside.

    The tolerance admits the sub-pixel crop of a near-square image (232x231 loses half a
    pixel on each side), not an object the crop cuts.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    rx0, ry0, rx1, ry1 = region
    return (
        (boxes[:, 0] < rx0 - tolerance)
        | (boxes[:, 1] < ry0 - tolerance)
        | (boxes[:, 2] > rx1 + tolerance)
        | (boxes[:, 3] > ry1 + tolerance)
    )


def place_on_image(maps: np.ndarray, height: int, width: int, region) -> np.ndarray:
    """Maps [..., h, w] already at the region's size, put on a zero canvas [..., H, W].

    Pixels the model did not see get zero: no attribution can be measured there.
    """
    x0, y0, x1, y1 = region
    maps = np.asarray(maps)
    if maps.shape[-2:] != (y1 - y0, x1 - x0):
        raise ValueError(
            f"maps of size {maps.shape[-2:]} do not fit the region {region} ({y1 - y0}x{x1 - x0})"
        )
    canvas = np.zeros((*maps.shape[:-2], height, width), dtype=maps.dtype)
    canvas[..., y0:y1, x0:x1] = maps
    return canvas


def to_rgb(image, background=(255, 255, 255)):
    """A PIL image as RGB; transparency composited onto white (the datasets' background).

    PIL's plain convert("RGB") drops the alpha channel, so a transparent background turns
    black, which is a vocabulary colour.
    """
    from PIL import Image

    if image.mode == "RGB":
        return image.convert("RGB")  # a loaded copy: usable after the file is closed
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return image.convert("RGB")


def boxes_in_region(objects, region):
    """Objects table with boxes in the region's pixel coordinates, clipped to it.

    Shares and their even-spread baseline are then measured over what the model saw.
    """
    x0, y0, x1, y1 = region
    out = objects.copy()
    out["x0"] = (out["x0"] - x0).clip(0, x1 - x0)
    out["x1"] = (out["x1"] - x0).clip(0, x1 - x0)
    out["y0"] = (out["y0"] - y0).clip(0, y1 - y0)
    out["y1"] = (out["y1"] - y0).clip(0, y1 - y0)
    return out
