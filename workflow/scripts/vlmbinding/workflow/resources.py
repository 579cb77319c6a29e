"""What a job asks of the scheduler (memory, run time, threads), from the model's geometry.

Torch-free: common.smk calls these for each job's `resources:`/`threads:`, so a cluster
gets the real size of a ViT-L/14 job and the toy model's jobs stay small. Estimates are
deliberately generous upper bounds (measured: a ViT-L/14 extraction peaks at a few GB, a
paper-scale layer job at 1.35 GB; docs/performance.md); a retried job (attempt 2) asks
for twice the memory.
"""

from __future__ import annotations

import math

from vlmbinding.models.architectures import vision_geometry

BASE_MB = 2000  # torch, open_clip and a CUDA context before the first image (~1.8 GB)
CPU_FLOPS = 20e9  # a pessimistic rate for run-time limits (no GPU, few cores)
STAGES = ("extract", "explain", "binding", "train", "layer", "separability", "dataset")


def parameter_count(cfg: dict) -> int:
    """About 12 width² per transformer block, both towers, plus the token embedding."""
    v = vision_geometry(cfg)
    text = cfg.get("text_cfg", {})
    t_width, t_layers = int(text.get("width", 512)), int(text.get("layers", 12))
    vocab = int(text.get("vocab_size", 49408))
    return 12 * v["width"] ** 2 * v["layers"] + 12 * t_width**2 * t_layers + vocab * t_width


def _round_up(mb: float, step: int = 500) -> int:
    return int(math.ceil(mb / step) * step)


def mem_mb(stage: str, cfg: dict, n_images: int, batch_size: int = 32, attempt: int = 1) -> int:
    """Peak memory of one job of `stage` for a model of config `cfg`, in MB."""
    if stage == "dataset":  # drawing or importing images: no model
        return 1000 * attempt
    v = vision_geometry(cfg)
    weights = parameter_count(cfg) * 4 / 1e6
    per_image = v["tokens"] * v["width"] * v["layers"] * 4 / 1e6  # every block's MLP out
    if stage == "extract":  # model, a batch being computed, one waiting to be written
        need = BASE_MB + weights + 3 * batch_size * per_image
    elif stage == "explain":  # model, gradients, one image's activations at a time
        need = BASE_MB + 3 * weights + 4 * per_image
    elif stage == "binding":  # model, batches of 64 images without hooks
        need = BASE_MB + weights + 64 * 4 * v["tokens"] * v["width"] * 4 / 1e6
    elif stage == "train":
        need = BASE_MB + 4 * weights + 3 * batch_size * per_image
    elif stage == "layer":  # one layer of the store (float16) and its float32 reduction
        need = 1000 + n_images * v["tokens"] * v["width"] * (2 + 4 + 2) / 1e6
    elif stage == "separability":
        need = 1000 + 8 * n_images * v["embed_dim"] * 8 / 1e6
    else:
        raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")
    return _round_up(need) * attempt


def runtime_min(stage: str, cfg: dict, n_images: int, attempt: int = 1) -> int:
    """A run-time limit in minutes: passes at a pessimistic CPU rate, x2, + 10 minutes.

    `n_images`: images of the dataset; for 'explain' the images times prompts explained,
    for 'train' the training scenes times epochs (each a forward and a backward pass).
    """
    if stage == "dataset":
        return int(10 + math.ceil(2 * n_images * 0.05 / 60)) * attempt
    v = vision_geometry(cfg)
    vision = 12 * v["width"] ** 2 * v["layers"]
    forward_s = 2 * vision * v["tokens"] / CPU_FLOPS  # seconds per image
    if stage == "layer":
        seconds = n_images * v["tokens"] * v["width"] / 5e6
    elif stage == "separability":
        seconds = n_images * 0.05
    else:
        seconds = (1 if stage in ("extract", "binding") else 3) * n_images * forward_s
    return int(10 + math.ceil(2 * seconds / 60)) * attempt


def threads(stage: str, cfg: dict) -> int:
    """Threads of a model job: 2 for small models, up to 8 for ViT-L and larger."""
    if stage not in ("extract", "explain", "binding", "train"):
        return 1
    params = parameter_count(cfg)
    return 2 if params < 50e6 else 4 if params < 200e6 else 8


def job_images(stage: str, config: dict, n_images: int) -> int:
    """What a job's run time scales with (`runtime_min`'s `n_images`): the dataset's
    images; for 'explain' ~10 prompts per Grad-CAM image; for 'train' scenes x epochs."""
    if stage == "explain":
        g = config["gradcam"]
        return 10 * max(g["n_images"], len(g["images"]))
    if stage == "train":
        return config["toy"]["scenes"] * config["toy"]["epochs"]
    return n_images
