"""What a models entry's `weights` value names, decided without importing torch.

The Snakefile needs this at parse time (which rules a model needs, which file the model
rules read), and parsing must stay cheap: torch takes seconds to import.
"""

from __future__ import annotations

import os
from pathlib import Path

HF_HUB_PREFIX = "hf-hub:"
TOY = "toy"
RANDOM = "random"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def weights_kind(weights: str) -> str:
    """'toy' | 'random' | 'hf-hub' | 'folder' | 'file' | 'tag' for a models[].weights value.

    'folder': a transformers model folder (`arch: transformers`, `models.hf_config`).

    'random' is the random-weights twin of a model (`vlmbinding.workflow.entries`): the same
    architecture, initialised as open_clip initialises it, never trained.
    """
    if weights == TOY:
        return "toy"
    if weights == RANDOM:
        return "random"
    if weights.startswith(HF_HUB_PREFIX):
        return "hf-hub"
    if Path(weights).is_dir():
        return "folder"
    if os.sep in weights or Path(weights).suffix in CHECKPOINT_SUFFIXES:
        return "file"
    return "tag"
