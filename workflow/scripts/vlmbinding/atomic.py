"""Outputs that appear whole or not at all: write beside the target, then rename.

A job killed mid-write (kill -9, a cluster's time limit, a full disk) leaves at most a
hidden temporary file, never a truncated table under the output's name that a rerun or
a reader could take as complete. os.replace is atomic within one file system.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path`; renamed to `path` when the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(df: pd.DataFrame, path: str | Path, **kwargs) -> None:
    """df.to_parquet(path, index=False, **kwargs), atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, **kwargs)
