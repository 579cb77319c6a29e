"""End-to-end: the sharing stage on the tiny config (model and its twin), its contract, the
sanity table's sharing rows, the overlap in the specification curve and the cross-model
view, and that changing sharing.m reruns only the jobs that read it."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow
from test_workflow_analysis import planned_jobs

from vlmbinding.analysis.sharing_stage import SHARING_COLUMNS, SHARING_CORRELATION_COLUMNS

# make test-slow (pytest.ini): a whole workflow run of an optional stage
pytestmark = pytest.mark.slow

MODELS = ("toy", "toy/controls/random")
SHARING_JOBS = {"measure_sharing", "gather_sharing", "correlate_sharing", "plot_sharing"}
# the overlap's specifications (sharing.m applies) and the cross-model view read it too
READERS = {"tabulate_sanity", "specification_overlap", "assemble_specifications"}
READERS |= {"plot_specification_curve", "compare_models"}


def targets(models=MODELS) -> list[str]:
    files = ["sharing.parquet", "sharing_correlation.parquet", "figures/sharing.png"]
    return [f"results/{m}/{f}" for m in models for f in files] + [
        "results/toy/controls/sanity.parquet",
        "results/toy/figures/specification_curve.png",
        "results/comparison/models.tsv",
    ]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    # 45 images: the tuning regression needs more images than 2 x 16 features + 3
    config["dataset"]["images_per_count"] = 15
    config["sharing"] = {"enabled": True, "n_null": 49}
    config["controls"] = {"random_weights": True, "pixel_baseline": True, "seed": 0}
    config["robustness"]["measure"] = ["S", "overlap"]
    work = tmp_path_factory.mktemp("sharing")
    run_workflow(work, config, *targets())
    return work, config


def test_sharing_follows_the_contract_for_the_model_and_its_twin(shared):
    work, _ = shared
    for name in MODELS:
        table = pd.read_parquet(work / "results" / name / "sharing.parquet")
        assert list(table.columns) == SHARING_COLUMNS
        assert set(table["measure"]) == {"overlap", "conjunctive", "separate"}
        assert (table["basis"] == "neurons").all() and (table["layers"] == "0,1").all()
        assert (table["measure"] == "overlap").sum() == 120
        assert not table[["value", "z", "p"]].isna().any().any()
        corr = pd.read_parquet(work / "results" / name / "sharing_correlation.parquet")
        assert list(corr.columns) == SHARING_CORRELATION_COLUMNS
        overlap = corr[(corr["measure"] == "overlap") & (corr["score"] == "z")]
        assert {"D", "M", "accuracy"} <= set(overlap["metric"])
        assert np.isfinite(overlap["additive_r2"]).all()
        assert (work / "results" / name / "figures" / "sharing.pdf").stat().st_size > 0
        log = (work / "logs" / "measure_sharing" / f"{name}.log").read_text()
        assert "neuron overlap: 64 neurons, m=8, 49 null draws" in log


def test_the_sanity_table_has_the_overlap_rows(shared):
    work, _ = shared
    table = pd.read_parquet(work / "results" / "toy" / "controls" / "sanity.parquet")
    rows = table[table["statistic"].str.startswith("r(overlap z")]
    assert len(rows) == 4 and np.isfinite(rows[["trained", "random"]]).all().all()
    assert np.isfinite(rows["pixels"]).all()


def test_the_specification_curve_and_the_comparison_show_the_overlap(shared):
    work, _ = shared
    specs = pd.read_parquet(work / "results/toy/robustness/specifications.parquet")
    overlap = specs[specs["measure"] == "overlap"]
    assert len(overlap) and (overlap[["top_k", "n_neurons"]] == 0).all().all()
    assert overlap["main"].sum() == 8 and specs.loc[specs["measure"] == "S", "main"].sum() == 8
    summary = pd.read_csv(work / "results/toy/robustness/summary.tsv", sep="\t")
    assert list(zip(summary["measure"], summary["metric"])) == [
        ("S", "D"), ("S", "M"), ("overlap", "D"), ("overlap", "M")
    ]  # fmt: skip
    assert summary["joint_p_share"].between(0, 1).all()
    models = pd.read_csv(work / "results/comparison/models.tsv", sep="\t").set_index("model")
    corr = pd.read_parquet(work / "results/toy/sharing_correlation.parquet")
    want = corr[(corr["measure"] == "overlap") & (corr["score"] == "z") & (corr["metric"] == "M")
                & (corr["space"] == "full") & (corr["subset"] == "no_position")]  # fmt: skip
    assert models.loc["toy", "r_overlap_M"] == pytest.approx(want["pearson_r"].iloc[0])
    pooled = pd.read_csv(work / "results/comparison/replicates.tsv", sep="\t")
    # every row of the sharing table is pooled (the conjunctions are on by default), the
    # neuron-basis overlap over the analysed pool right after S's rows
    assert set(pooled["measure"]) == {"S", "overlap", "conjunctive", "separate"}
    assert list(pooled["measure"].iloc[:4]) == ["S", "S", "overlap", "overlap"]
    assert set(pooled.loc[pooled["measure"] != "S", "basis"]) == {"neurons"}


def test_changing_m_reruns_only_the_sharing_jobs(shared):
    work, config = shared
    changed = copy.deepcopy(config)
    changed["sharing"]["m"] = 5
    jobs = planned_jobs(run_workflow(work, changed, "-n", *targets()))
    assert jobs["measure_sharing"] == 4  # the model and its 3 twins (controls.random_twins)
    assert set(jobs) <= SHARING_JOBS | READERS, jobs
    untouched = planned_jobs(run_workflow(work, config, "-n", *targets()))
    assert not untouched, untouched
