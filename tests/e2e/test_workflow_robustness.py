"""End-to-end: replicates get their own results; the specification curve matches the main rules."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow

# make test-slow (pytest.ini): a whole workflow run of an optional stage
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["models"][0]["replicates"] = {"seeds": [0, 1]}
    # the main analysis at one cell of the grid, so the two can be compared
    config["analysis"].update(top_k=3, n_neurons=10, reduce="max", tokens="patches")
    config["robustness"].update(top_k=[3, 100], n_neurons=[10, 1000], layers=["all", "thirds"])
    work = tmp_path_factory.mktemp("robust")
    targets = [
        "results/toy/figures/specification_curve.png",
        "results/toy/correlation.parquet",
        "results/toy/replicate-1/correlation.parquet",
        "results/comparison/replicate_entropy.tsv",
    ]
    run_workflow(work, config, *targets)
    return work, config


def test_replicates_are_trained_with_their_own_seed_into_their_own_folder(run):
    work, _ = run
    digests = [
        hashlib.sha256((work / "results" / m / "toy_model/checkpoint.pt").read_bytes()).hexdigest()
        for m in ("toy", "toy/replicate-1")
    ]
    assert digests[0] != digests[1]
    assert (work / "results/toy/replicate-1/activations.zarr").is_dir()


def test_the_entropy_is_pooled_over_the_replicate_seeds(run):
    work, _ = run
    table = pd.read_csv(work / "results/comparison/replicate_entropy.tsv", sep="\t")
    assert list(table["base"]) == ["toy", "toy"] and (table["k"] == 2).all()
    assert table["measure"].iloc[0] == "median entropy"
    assert table["measure"].iloc[1].startswith("share under")
    # never narrower than what the images alone allow
    assert (table["ci_low"] <= table["image_ci_low"] + 1e-12).all()
    assert (table["ci_high"] >= table["image_ci_high"] - 1e-12).all()


def test_the_specification_grid_holds_the_main_analysis_as_one_cell(run):
    work, _ = run
    specs = pd.read_parquet(work / "results/toy/robustness/specifications.parquet")
    main = pd.read_parquet(work / "results/toy/correlation.parquet")
    # top_k 100 exceeds the 12 images: dropped; 1000 neurons cap at the pool (2 x 32 = 64)
    assert set(specs["top_k"]) == {3}
    assert set(specs.loc[specs["layers"] == "all", "n_neurons"]) == {10, 64}
    assert set(specs["layers"]) == {"all", "third-1", "third-2"}
    cell = specs[
        (specs["top_k"] == 3)
        & (specs["n_neurons"] == 10)
        & (specs["layers"] == "all")
        & (specs["reduce"] == "max")
        & (specs["tokens"] == "patches")
    ]
    merged = cell.merge(main, on=["metric", "space", "subset"], suffixes=("", "_main"))
    assert len(merged) == 8
    np.testing.assert_allclose(merged["pearson_r"], merged["pearson_r_main"], atol=1e-12)
    assert (merged["n_pairs"] == merged["n_pairs_main"]).all()
    summary = pd.read_csv(work / "results/toy/robustness/summary.tsv", sep="\t")
    assert summary["metric"].tolist() == ["D", "M"]
    assert (work / "results/toy/figures/specification_curve.pdf").stat().st_size > 0
