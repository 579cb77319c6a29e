"""Shared fixtures: the library on sys.path, and running the real workflow in a temp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def run_workflow(workdir: Path, config: dict, *args: str, check: bool = True):
    """Run the repository's Snakefile in `workdir` with `config` (written to a file)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [
        SNAKEMAKE,
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(cfg),
        "--cores",
        "2",
        *args,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture
def tiny_config() -> dict:
    """config/test.yaml as a dict (a fresh copy per test)."""
    return yaml.safe_load((REPO / "config" / "test.yaml").read_text())
