"""End-to-end: the reduced store mode gives the per-token mode's analysis and patch maps."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow

from vlmbinding.extraction import patch_maps as patchmaps
from vlmbinding.extraction.store import StoreError, open_store

# make test-slow (pytest.ini): a whole workflow run of an optional stage
pytestmark = pytest.mark.slow

TARGETS = [
    "results/toy/neurons.parquet",
    "results/toy/separability.parquet",
    "results/toy/patch_maps.npz",
]


def test_reduced_store_gives_the_per_token_analysis(tmp_path, tiny_config):
    tokens, reduced = tmp_path / "tokens", tmp_path / "reduced"
    run_workflow(tokens, tiny_config, *TARGETS)
    # the same dataset and toy model (copied, so only the store mode differs)
    shutil.copytree(tokens / "results" / "dataset", reduced / "results" / "dataset")
    shutil.copytree(tokens / "results" / "toy" / "toy_model", reduced / "results/toy/toy_model")
    tiny_config["activations"]["store"] = "reduced"
    proc = run_workflow(reduced, tiny_config, *TARGETS)
    assert "train_toy_model" not in proc.stdout + proc.stderr
    root = open_store(reduced / "results" / "toy" / "activations.zarr")
    assert root.attrs["mode"] == "reduced" and "mlp_out" not in root
    for name in TARGETS[:2]:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tokens / name), pd.read_parquet(reduced / name), obj=name
        )
    a, b = (patchmaps.load_maps(w / TARGETS[2]) for w in (tokens, reduced))
    assert a["image_ids"] == b["image_ids"] and (a["layer"], a["unit"]) == (b["layer"], b["unit"])
    np.testing.assert_allclose(a["maps"], b["maps"], rtol=2e-3, atol=2e-3)


def test_a_deleted_chunk_stops_the_next_analysis_job_with_a_clear_error(tmp_path, tiny_config):
    run_workflow(tmp_path, tiny_config, TARGETS[0])
    store = tmp_path / "results" / "toy" / "activations.zarr"
    chunk = sorted((store / "mlp_out" / "c").rglob("*"))[-1]
    chunk.unlink()
    shutil.rmtree(tmp_path / "results" / "toy" / "neurons")  # the per-layer tables
    (tmp_path / "results" / "toy" / "neurons.parquet").unlink()
    proc = run_workflow(tmp_path, tiny_config, TARGETS[0], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    log = "".join(p.read_text() for p in (tmp_path / "logs" / "neuron_statistics").rglob("*.log"))
    assert "mlp_out has" in log + out and "delete it and rerun" in log + out
    try:
        open_store(store)
    except StoreError as err:
        assert str(chunk.relative_to(store / "mlp_out")) in str(err)
