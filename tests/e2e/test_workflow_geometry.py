"""End-to-end: the encoding geometry (sharing.geometry) on the tiny config: its part of the
sharing table per block, its per-block correlation rows, the omega-beyond-iota table, omega
in the specification curve (robustness.measure) and every sharing row in the cross-model
view."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow

from vlmbinding.analysis.geometry_beyond import GEOMETRY_BEYOND_COLUMNS
from vlmbinding.analysis.sharing_stage import SHARING_COLUMNS, SHARING_CORRELATION_COLUMNS

# make test-slow (pytest.ini): a whole workflow run of an optional stage
pytestmark = pytest.mark.slow

TARGETS = [
    f"results/toy/{f}"
    for f in (
        "sharing.parquet",
        "sharing_correlation.parquet",
        "geometry_beyond.parquet",
        "figures/geometry.png",
        "sharing.html",
        "robustness/specifications.parquet",
    )
] + ["results/comparison/replicates.tsv"]


@pytest.fixture(scope="module")
def geometry(tmp_path_factory):
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    # 90 images of 1-3 objects: every feature on enough objects in each quarter of them
    config["dataset"]["images_per_count"] = 30
    config["sharing"] = {"enabled": True, "n_null": 49, "geometry": {"enabled": True, "n_null": 49}}
    config["robustness"].update(measure=["S", "omega"], omega_n_null=49, layers=["all", "thirds"])
    work = tmp_path_factory.mktemp("geometry")
    run_workflow(work, config, *TARGETS)
    return work


def test_the_geometry_part_has_rows_per_block(geometry):
    part = pd.read_parquet(geometry / "results/toy/sharing/geometry.parquet")
    assert list(part.columns) == SHARING_COLUMNS
    assert set(part["measure"]) == {"interference", "neuron_sharing"}
    assert set(part["layers"]) == {"0", "1"} and (part["basis"] == "neurons").all()
    assert len(part) == 2 * 2 * 120 and not part[["value", "z", "p"]].isna().any().any()
    table = pd.read_parquet(geometry / "results/toy/sharing.parquet")
    assert set(table["measure"]) >= {"overlap", "interference", "neuron_sharing"}
    log = (geometry / "logs/measure_geometry/toy.log").read_text()
    assert "layer 1:" in log and "49 null draws" in log


def test_the_correlations_have_a_row_set_per_block(geometry):
    corr = pd.read_parquet(geometry / "results/toy/sharing_correlation.parquet")
    assert list(corr.columns) == SHARING_CORRELATION_COLUMNS
    omega = corr[corr["measure"] == "neuron_sharing"]
    assert set(omega["layers"]) == {"0", "1"}
    assert {"D", "M", "accuracy"} <= set(omega["metric"])
    assert set(corr.loc[corr["measure"] == "overlap", "layers"]) == {"0,1"}


def test_the_beyond_table_has_every_block_metric_and_score(geometry):
    beyond = pd.read_parquet(geometry / "results/toy/geometry_beyond.parquet")
    assert list(beyond.columns) == GEOMETRY_BEYOND_COLUMNS
    assert set(beyond["layers"]) == {"0", "1"} and set(beyond["score"]) == {"value", "z"}
    assert {"D", "M", "accuracy"} == set(beyond["metric"])
    assert np.isfinite(beyond.loc[beyond["metric"] != "accuracy", "r"]).all()


def test_the_report_has_the_geometry_figure_and_page(geometry):
    assert (geometry / "results/toy/figures/geometry.png").stat().st_size > 0
    page = (geometry / "results/toy/sharing.html").read_text()
    for block in ("0", "1"):
        assert f"Neuron sharing ω (encoding geometry), neuron basis, block {block}" in page
        assert f"Block {block}: partial r(ω z, D | ι z)" in page
    assert "r(ι, D) over 120 pairs" in page


def test_omega_is_a_measure_of_the_specification_curve_per_layer_pool(geometry):
    specs = pd.read_parquet(geometry / "results/toy/robustness/specifications.parquet")
    omega = specs[specs["measure"] == "omega"]
    assert set(omega["layers"]) == {"all", "third-1", "third-2"}
    assert (omega[["top_k", "n_neurons"]] == 0).all().all()
    assert set(omega["reduce"]) == {"mean"} and set(omega["tokens"]) == {"box"}
    assert omega["main"].sum() == 8 and set(omega.loc[omega["main"], "layers"]) == {"all"}
    assert np.isfinite(omega.loc[omega["space"] == "full", "pearson_r"]).all()
    # a one-block pool's z is the sharing stage's omega of that block (its own null draws)
    grid = pd.read_parquet(geometry / "results/toy/robustness/omega.parquet")
    part = pd.read_parquet(geometry / "results/toy/sharing/geometry.parquet")
    block = part[(part["measure"] == "neuron_sharing") & (part["layers"] == "1")]
    mine = grid[grid["layers"] == "third-2"].merge(block, on=["f1", "f2"])
    np.testing.assert_allclose(mine["value_x"], mine["value_y"], rtol=1e-9)
    summary = pd.read_csv(geometry / "results/toy/robustness/summary.tsv", sep="\t")
    assert list(zip(summary["measure"], summary["metric"])) == [
        ("S", "D"), ("S", "M"), ("omega", "D"), ("omega", "M")
    ]  # fmt: skip
    assert summary["joint_p_median"].between(0, 1).all()


def test_the_cross_model_view_pools_every_sharing_row(geometry):
    pooled = pd.read_csv(geometry / "results/comparison/replicates.tsv", sep="\t")
    keys = set(zip(pooled["measure"], pooled["basis"], pooled["layers"].astype(str)))
    assert {("neuron_sharing", "neurons", "0"), ("neuron_sharing", "neurons", "1")} <= keys
    assert {("interference", "neurons", "1"), ("overlap", "neurons", "0,1")} <= keys
    assert (pooled["k"] == 1).all()
    html = (geometry / "results/comparison/models.html").read_text()
    assert "Every measure of sharing, per model" in html and "neuron_sharing" in html
