"""Checkpoint files: their format sniffed without torch, and load errors explained.

A checkpoint is loaded with `torch.load(weights_only=True)`, which refuses to run code
pickled into the file. Formats that need the unsafe path (OpenAI's TorchScript release,
checkpoints that pickle Python objects) load only when the models entry says
`trust_checkpoint: true`. Every failure names the file, the likely cause and the fix.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be (safely) loaded."""


TRUST_HINT = (
    "if you trust the file, set `trust_checkpoint: true` in its models entry (this runs "
    "any code pickled into it)"
)


def checkpoint_format(path: str | Path) -> str:
    """'safetensors' | 'torch' | 'torch-legacy' | 'torchscript' | 'numpy' | 'unknown'.

    From the first bytes and, for zip archives, the member names (a TorchScript archive
    holds code/ and constants.pkl; torch.save's zip holds data.pkl).
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return "unknown"
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "torch"
        if names and all(n.endswith(".npy") for n in names):
            return "numpy"
        return "unknown"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "torch-legacy"  # pickle protocol 2-5: torch.save's pre-1.6 format
    if len(head) == 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 8 + n <= size:
            with open(path, "rb") as f:
                f.seek(8)
                try:
                    json.loads(f.read(n))
                    return "safetensors"
                except ValueError:
                    return "unknown"
    return "unknown"


def checkpoint_problem(path: str | Path, trust: bool = False) -> str | None:
    """Why the file cannot be loaded as configured (start-up check), or None."""
    path = Path(path)
    if not path.is_file():
        return f"checkpoint file {path} does not exist; fix the path in `weights`"
    kind = checkpoint_format(path)
    if kind == "unknown":
        with open(path, "rb") as f:
            head = f.read(8)
        return (
            f"checkpoint file {path} is not a PyTorch, TorchScript or safetensors checkpoint "
            f"(it starts with {head!r}): a corrupt or partial download, or another format; "
            "download it again or convert it"
        )
    if kind == "torchscript" and not trust:
        return (
            f"checkpoint file {path} is a TorchScript archive (OpenAI's own release format), "
            f"which loads only by running its code: use the open_clip tag (weights: openai) "
            f"instead, or, {TRUST_HINT}"
        )
    return None


def explain_load_error(error: Exception, path: str | Path, arch: str) -> str:
    """A message for an exception raised while loading checkpoint `path` for `arch`."""
    text = str(error)
    first = text.strip().splitlines()[0][:300] if text.strip() else type(error).__name__
    if "Weights only load failed" in text or "weights_only" in text:
        return (
            f"checkpoint file {path} holds Python objects that a safe load (weights_only) "
            f"refuses ({first}); re-save it as a plain state dict, or, {TRUST_HINT}"
        )
    if any(k in text for k in ("size mismatch", "Missing key(s)", "Unexpected key(s)")):
        return (
            f"checkpoint file {path} does not fit architecture {arch!r} ({first}): is `arch` "
            "the architecture these weights were trained with?"
        )
    if any(k in text for k in ("invalid load key", "magic number", "PytorchStreamReader")):
        return (
            f"checkpoint file {path} is corrupt or not a PyTorch checkpoint ({first}); "
            "download it again"
        )
    return f"checkpoint file {path} cannot be loaded ({type(error).__name__}: {first})"
