"""End-to-end: the random-weights twin runs through every stage, the pixel baseline and the
sanity table, on the tiny test config with the controls switched on."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow
from test_workflow_analysis import planned_jobs

from vlmbinding.extraction.store import open_store

# make test-slow (pytest.ini): a whole workflow run of an optional stage
pytestmark = pytest.mark.slow

TWIN = "toy/controls/random"


@pytest.fixture(scope="module")
def controlled(tmp_path_factory):
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["controls"] = {
        "random_weights": True,
        "pixel_baseline": True,
        "seed": 0,
        "random_twins": 2,
    }
    work = tmp_path_factory.mktemp("controls")
    run_workflow(work, config)
    return work, config


def test_the_twin_has_every_result_of_the_model_under_controls_random(controlled):
    work, _ = controlled
    model, twin = work / "results" / "toy", work / "results" / TWIN
    for f in (
        "neurons.parquet",
        "superposition.parquet",
        "separability.parquet",
        "correlation.parquet",
        "binding/accuracy.tsv",
        "binding/trials.parquet",
        "gradcam/shares.parquet",
        "figures/superposition_vs_M.png",
        "tables.html",
    ):
        assert (twin / f).exists(), f
    assert not (twin / "toy_model").exists()  # nothing to train
    a, b = open_store(model / "activations.zarr"), open_store(twin / "activations.zarr")
    assert a["mlp_out"].shape == b["mlp_out"].shape
    assert b.attrs["weights"] == "random" and b.attrs["model"] == TWIN
    assert not np.array_equal(a["embeddings"][:], b["embeddings"][:])


def test_the_pixel_baseline_and_the_sanity_table_follow_the_contract(controlled):
    work, _ = controlled
    folder = work / "results" / "toy"
    pixels = pd.read_parquet(folder / "separability_pixels.parquet")
    model = pd.read_parquet(folder / "separability.parquet")
    assert list(pixels.columns) == list(model.columns) and len(pixels) == len(model)
    table = pd.read_parquet(folder / "controls" / "sanity.parquet")
    contract = [
        "statistic",
        "trained",
        "random",
        "pixels",
        "difference",
        "difference_ci_low",
        "difference_ci_high",
        "trained_mantel_p",
        "random_mantel_p",
    ]
    assert set(contract) <= set(table.columns)
    assert "binding accuracy (swapped captions)" in set(table["statistic"])
    assert table["verdict"].str.len().gt(0).all()
    assert (folder / "figures" / "sanity.png").stat().st_size > 0
    assert "survive" in (folder / "controls" / "sanity.html").read_text()
    # the second twin ran only what the sanity table reads, and the table used both
    second = work / "results" / f"{TWIN}-1"
    assert (second / "correlation.parquet").exists() and (
        second / "gradcam/shares.parquet"
    ).exists()
    assert not (second / "figures" / "superposition_vs_M.png").exists()
    assert (table["n_twins"] == 2).all()
    front = (work / "results" / "verdicts.html").read_text()
    assert "Survived 2 random-weights twins" in front and "Not detected" in front


def test_one_switch_turns_the_twin_off(controlled):
    work, config = controlled
    assert planned_jobs(run_workflow(work, config, "-n")) == {}
    off = copy.deepcopy(config)
    off["controls"]["random_weights"] = False
    proc = run_workflow(work, off, "-n", "--forceall")
    jobs = planned_jobs(proc)
    assert jobs["extract_activations"] == 1 and "tabulate_sanity" not in jobs
