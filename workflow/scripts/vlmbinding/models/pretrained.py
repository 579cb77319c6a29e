"""open_clip's pretrained tags and the local weights cache, read without importing torch.

`import open_clip` imports torch (seconds), too slow for start-up checks; its table of
pretrained tags is plain Python in `open_clip/pretrained.py`, executed here without the
module's imports. If open_clip ever changes that file so this fails, `pretrained_tags`
returns None and the tag is checked by the first job instead (still before any download).
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import importlib.util
import os
import socket
import urllib
import warnings
from pathlib import Path
from typing import Iterable, Optional, Union  # noqa: UP035 - names the file uses

HUB_HOST = ("huggingface.co", 443)


def _open_clip_dir() -> Path | None:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _run_without_imports(path: Path, namespace: dict) -> None:
    tree = ast.parse(path.read_text())
    tree.body = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom, ast.Try))]
    exec(compile(tree, str(path), "exec"), namespace)  # noqa: S102 - the installed package


@functools.cache
def pretrained_tags() -> dict[str, dict[str, dict]] | None:
    """{architecture: {tag: pretrained config}} as open_clip knows them, or None."""
    root = _open_clip_dir()
    if root is None:
        return None
    try:
        namespace: dict = {}
        _run_without_imports(root / "constants.py", namespace)
        namespace.update(
            copy=copy,
            hashlib=hashlib,
            os=os,
            urllib=urllib,
            warnings=warnings,
            partial=functools.partial,
            Dict=dict,
            Iterable=Iterable,
            Optional=Optional,
            Union=Union,
            tqdm=None,
            __version__="",
            _has_safetensors=False,
        )
        _run_without_imports(root / "pretrained.py", namespace)
        return copy.deepcopy(namespace["_PRETRAINED"])
    except Exception:  # noqa: BLE001 - any change upstream: fall back to the job's check
        return None


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers; False at once when HF_HUB_OFFLINE is set."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(HUB_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def offline_unless_reachable() -> bool:
    """Whether the hub is reachable; if not, switch huggingface_hub to offline mode.

    Offline mode makes it read cached files at once instead of asking the hub first and
    retrying for about 25 s, and fail at once for files it does not have.
    """
    if hub_reachable():
        return True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass
    return False


def tag_is_cached(cfg: dict, cache_dir: str | None = None) -> bool:
    """Whether open_clip would find these tag weights without downloading."""
    hub = cfg.get("hf_hub")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        # open_clip's convention: 'org/repo/filename' or 'org/repo/' for its default names
        repo, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors"]
        names += ["open_clip_pytorch_model.bin"] if not filename else []
        return any(
            isinstance(try_to_load_from_cache(repo, n, cache_dir=cache_dir), str) for n in names
        )
    url = cfg.get("url")
    if url:
        root = cache_dir or os.path.expanduser("~/.cache/clip")
        return Path(root, os.path.basename(url)).exists()
    return False


def offline_message(what: str, arch: str) -> str:
    return (
        f"{what} is not in the local cache and the model hub cannot be reached. Either run "
        f"once on a machine with network (the weights are cached under ~/.cache/huggingface "
        f"or $HF_HOME, copy that folder here), or download the checkpoint file yourself and "
        f"set `weights: /path/to/checkpoint` in the models entry for {arch}."
    )


def tag_problem(arch: str, tag: str) -> str | None:
    """Why the open_clip tag `arch`/`tag` cannot be loaded here, or None if it can.

    Unknown tags name the architecture's tags; an uncached tag without network gives the
    offline advice. None also when open_clip's table cannot be read (the job checks).
    """
    table = pretrained_tags()
    if table is None:
        return None
    tags = table.get(arch, {})
    cfg = tags.get(tag) or tags.get(tag.lower().replace("-", "_"))
    if cfg is None:
        known = sorted(tags) or "none: an architecture without pretrained weights"
        return (
            f"weights {tag!r} are not an open_clip pretrained tag for {arch} (its tags: "
            f"{known}), nor a checkpoint path; fix `weights` or `arch`"
        )
    if not tag_is_cached(cfg) and not hub_reachable():
        return offline_message(f"open_clip weights {arch}/{tag}", arch)
    return None
