"""End-to-end: the encoding geometry from a reduced store (each object's pooled patch
vectors) equals the geometry from a tokens store, on the tiny config."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow

# make test-slow (pytest.ini): two extractions and geometry runs of the tiny config
pytestmark = pytest.mark.slow

PART = "results/toy/sharing/geometry.parquet"


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """One working directory: the tokens run, then the reduced run (the store's params
    change, so Snakemake re-extracts and re-measures; the toy model is reused)."""
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["dataset"]["images_per_count"] = 30
    config["sharing"] = {"enabled": True, "n_null": 49, "geometry": {"enabled": True, "n_null": 49}}
    work = tmp_path_factory.mktemp("geometry_reduced")
    run_workflow(work, config, PART)
    shutil.copy(work / PART, work / "tokens.parquet")
    config["activations"]["store"] = "reduced"
    run_workflow(work, config, PART)
    return work


def test_the_reduced_store_holds_pooled_objects_not_tokens(both):
    import zarr

    root = zarr.open_group(str(both / "results/toy/activations.zarr"), mode="r")
    assert root.attrs["mode"] == "reduced" and "mlp_out" not in root
    assert root.attrs["object_pooling"]["layers"] == [0, 1]
    objects = pd.read_parquet(both / "results/dataset/objects.parquet")
    assert root["object_patch_mean"].shape == (len(objects), 2 * root.attrs["width"])


def test_the_geometry_is_the_same_from_either_store(both):
    tokens = pd.read_parquet(both / "tokens.parquet")
    reduced = pd.read_parquet(both / PART)
    keys = ["f1", "f2", "measure", "basis", "layers"]
    pd.testing.assert_frame_equal(reduced[keys], tokens[keys])
    for col in ("value", "null_mean", "null_sd", "z"):
        np.testing.assert_allclose(reduced[col], tokens[col], rtol=1e-5, atol=1e-6, err_msg=col)
