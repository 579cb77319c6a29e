"""Checkpoint files: their format sniffed without torch, and load errors explained.

A checkpoint is loaded with `torch.load(weights_only=True)`, which refuses to run code
pickled into the file. Formats that need the unsafe path (OpenAI's TorchScript release,
checkpoints that pickle Python objects) load only when the models entry says
`trust_checkpoint: true`. Every failure names the file, the likely cause and the fix.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
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


# --- tensor shapes without torch, for the start-up check of the architecture -----------


class _Shape(tuple):
    """A tensor of a checkpoint, as its shape only."""


class _Opaque:
    """Stands in for any other pickled object: built, never run."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def _rebuild_tensor(storage, offset, size, *rest):
    return _Shape(tuple(size))


def _rebuild_parameter(data, *rest):
    return data


class _ShapeUnpickler(pickle.Unpickler):
    """Reads torch.save's data.pkl without torch and without importing anything else."""

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name.startswith("_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name.startswith("_rebuild_parameter"):
            return _rebuild_parameter
        return _Opaque

    def persistent_load(self, pid):
        return None


def state_dict_shapes(path: str | Path) -> dict[str, tuple] | None:
    """{parameter name: shape} of a checkpoint, read without torch; None when unknown.

    torch.save zip archives (their data.pkl, a few kB) and safetensors headers are read;
    checkpoints that carry their own `model_cfg` (written by this workflow), TorchScript
    and legacy files give None: the loading job checks those.
    """
    path = Path(path)
    try:
        kind = checkpoint_format(path)
        if kind == "safetensors":
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
            return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
        if kind != "torch":
            return None
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("data.pkl"))
            obj = _ShapeUnpickler(io.BytesIO(z.read(name))).load()
    except Exception:  # noqa: BLE001 - unreadable here: the loading job will say why
        return None
    if isinstance(obj, dict) and "model_cfg" in obj:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        return None
    return {k.removeprefix("module."): tuple(v) for k, v in obj.items() if isinstance(v, _Shape)}


def architecture_mismatch(shapes: dict[str, tuple], geometry: dict, arch: str) -> str | None:
    """How a state dict's vision tower differs from `arch`'s geometry, or None.

    Compares open_clip's names only (patch embedding, position embedding, block count);
    a state dict in another naming is left to open_clip's converters and the job.
    """
    conv = shapes.get("visual.conv1.weight")
    if conv is None or len(conv) != 4:
        return None
    found = {"width": conv[0], "patch_size": conv[2]}
    blocks = {int(k.split(".")[3]) for k in shapes if k.startswith("visual.transformer.resblocks.")}
    if blocks:
        found["layers"] = max(blocks) + 1
    pos = shapes.get("visual.positional_embedding")
    if pos:
        found["tokens"] = pos[0]
    differ = {k: (v, geometry[k]) for k, v in found.items() if v != geometry[k]}
    if not differ:
        return None
    detail = ", ".join(f"{k} {got} where {arch} has {want}" for k, (got, want) in differ.items())
    return (
        f"does not fit architecture {arch!r} ({detail}): is `arch` the architecture these "
        "weights were trained with?"
    )
