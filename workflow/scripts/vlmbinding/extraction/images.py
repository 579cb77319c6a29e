"""Images into model inputs: the model's own or the authors' reference preprocessing, and
batches decoded by a thread pool ahead of the model (in order, optionally pinned).

Used by the extraction, the recomputed patch maps and autoencoder latents, the pixel
baseline, the interventions and Grad-CAM, so every stage sees the images the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
from PIL import Image
from torchvision import transforms


def reference_preprocess(image_size: int):
    """The authors' preprocessing: resize to size x size, scale to [0, 1], nothing else."""
    return transforms.Compose(
        [
            transforms.Lambda(lambda im: im.convert("RGB")),
            transforms.Resize((image_size, image_size)),
            transforms.ToTensor(),
        ]
    )


def choose_preprocess(loaded, mode: str):
    """'model' = the model's own transform; 'reference' = the notebooks' (METHOD.md 2a)."""
    if mode == "model":
        return loaded.preprocess
    if mode == "reference":
        return reference_preprocess(loaded.geometry["image_size"])
    raise ValueError(f"activations.preprocess must be model or reference, not {mode!r}")


def load_image(path: str, preprocess) -> torch.Tensor:
    with Image.open(path) as im:
        return preprocess(im.convert("RGB"))


def load_images(paths: list[str], preprocess) -> torch.Tensor:
    return torch.stack([load_image(p, preprocess) for p in paths])


def image_batches(
    paths: list[str], preprocess, batch_size: int, workers: int = 2, pin: bool = False
) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, images [B, 3, H, W]) per batch, in order. With workers > 0, a thread pool
    decodes and preprocesses images (PIL and torch release the GIL) up to two batches ahead
    of the consumer; `pin` puts each batch in pinned host memory for a non-blocking copy."""
    starts = list(range(0, len(paths), batch_size))

    def load(start):
        images = load_images(paths[start : start + batch_size], preprocess)
        return images.pin_memory() if pin else images

    if workers <= 0:
        for start in starts:
            yield start, load(start)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="image_loader") as pool:
        # one batch per task keeps the order; images of a batch are decoded by one thread
        ahead = max(2, workers + 1)
        pending = [pool.submit(load, s) for s in starts[:ahead]]
        for i, start in enumerate(starts):
            images = pending[i].result()
            if i + ahead < len(starts):
                pending.append(pool.submit(load, starts[i + ahead]))
            pending[i] = None
            yield start, images
