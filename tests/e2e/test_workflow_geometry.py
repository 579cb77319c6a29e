"""End-to-end: the encoding geometry (sharing.geometry) on the tiny config: its part of the
sharing table per block, its per-block correlation rows, and the omega-beyond-iota table."""

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
    )
]


@pytest.fixture(scope="module")
def geometry(tmp_path_factory):
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    # 90 images of 1-3 objects: every feature on enough objects in each quarter of them
    config["dataset"]["images_per_count"] = 30
    config["sharing"] = {"enabled": True, "n_null": 49, "geometry": {"enabled": True, "n_null": 49}}
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
        assert f"Block {block}: partial r(ω, D | ι)" in page
    assert "r(ι, D) over 120 pairs" in page
