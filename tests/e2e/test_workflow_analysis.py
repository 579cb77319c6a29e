"""End-to-end: models, activations and the analysis on a tiny config, and what reruns."""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow

from vlmbinding.extraction.recording import open_store

# make test-slow (pytest.ini): the whole workflow with two models, its reruns planned
WHOLE_RUN = pytest.mark.slow


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, request):
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    second = copy.deepcopy(config["models"][0])
    second["name"] = "toy-narrow"
    second["model_cfg"]["vision_cfg"]["width"] = 16
    second["model_cfg"]["vision_cfg"]["head_width"] = 8
    config["models"].append(second)
    work = tmp_path_factory.mktemp("run")
    run_workflow(work, config)
    return work, config


def planned_jobs(proc) -> dict[str, int]:
    """Rule -> job count from a dry run's 'Job stats' table."""
    out = proc.stdout + proc.stderr
    table = out.split("Job stats:")[1] if "Job stats:" in out else ""
    jobs = {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M)}
    jobs.pop("total", None)
    return jobs


@WHOLE_RUN
def test_both_models_get_their_results(two_models):
    work, config = two_models
    for name, width in (("toy", 32), ("toy-narrow", 16)):
        folder = work / "results" / name
        for f in (
            "neurons.parquet",
            "superposition.parquet",
            "separability.parquet",
            "correlation.parquet",
            "superposition_null.parquet",
            "superposition_null_correlation.parquet",
            "toy_model/zero_shot.tsv",
            "toy_model/evaluation.tsv",
            "toy_model/checkpoint.pt",
        ):
            assert (folder / f).exists(), f
        figures = [
            "gradcam",
            "entropy",
            "feature_neurons",
            "patch_activations",
            "superposition_vs_D",
            "superposition_vs_M",
            "binding_vs_S",
            "superposition_null",
            "zero_shot",
        ]
        for figure in figures:
            for ext in ("png", "pdf"):
                assert (folder / "figures" / f"{figure}.{ext}").stat().st_size > 0, figure
        root = open_store(folder / "activations.zarr")
        assert root["mlp_out"].shape == (12, 17, 2 * width)
        neurons = pd.read_parquet(folder / "neurons.parquet")
        assert len(neurons) == 2 * width
        assert neurons["entropy"].between(0, 4).all()


@WHOLE_RUN
def test_the_cross_model_view_has_both_models(two_models):
    work, _ = two_models
    table = pd.read_csv(work / "results" / "comparison" / "models.tsv", sep="\t")
    assert table["model"].tolist() == ["toy", "toy-narrow"]
    assert table["neurons"].tolist() == [64, 32]
    assert table["training_seed"].tolist() == [0, 0] and table["dataset_seed"].tolist() == [0, 0]
    for col in ("sd_S", "mean_n_over_threshold", "mean_D", "mean_M", "entropy_p10"):
        assert table[col].notna().all(), col
    for ext in ("png", "pdf", "html"):
        assert (work / "results" / "comparison" / f"models.{ext}").exists()
    diff = pd.read_csv(work / "results" / "comparison" / "replicate_differences.tsv", sep="\t")
    row = diff.set_index("statistic").loc["sd_S"]
    assert (row["base_a"], row["base_b"], row["k_a"]) == ("toy", "toy-narrow", 1)
    assert row["difference"] == pytest.approx(table["sd_S"][0] - table["sd_S"][1])


# make test-slow: one model from the dataset to its correlation table (about a minute)
@pytest.mark.slow
def test_analysis_tables_follow_the_contract(tmp_path, tiny_config):
    """The unit suite's end-to-end run: one model from the dataset to its correlation table
    (the whole workflow with two models runs in make test-slow)."""
    run_workflow(tmp_path, tiny_config, "results/toy/correlation.parquet")
    folder = tmp_path / "results" / "toy"
    sup = pd.read_parquet(folder / "superposition.parquet")
    assert len(sup) == 120 and {"f1", "f2", "S", "n_over_threshold"} <= set(sup.columns)
    assert (sup["n_neurons"] == 20).all()
    sep = pd.read_parquet(folder / "separability.parquet")
    assert set(sep["space"]) == {"full", "pca"} and len(sep) == 240
    assert {"D", "M", "n1", "n2"} <= set(sep.columns)
    cor = pd.read_parquet(folder / "correlation.parquet")
    assert len(cor) == 8
    finite = cor[np.isfinite(cor["pearson_r"])]
    assert (finite["pearson_ci_low"] <= finite["pearson_ci_high"]).all()
    zero_shot = pd.read_csv(folder / "toy_model" / "zero_shot.tsv", sep="\t")
    assert list(zero_shot["attribute"]) == ["color", "shape", "position", "triple"] * 2
    assert list(zero_shot["split"]) == ["seen"] * 4 + ["unseen"] * 4
    assert (zero_shot["n"] > 0).all()
    cor_cols = {"feature_ci_low", "feature_ci_high", "mantel_p"}
    assert cor_cols <= set(cor.columns)
    assert (finite["feature_ci_low"] <= finite["feature_ci_high"]).all()


@WHOLE_RUN
def test_a_finished_run_plans_nothing(two_models):
    work, config = two_models
    assert planned_jobs(run_workflow(work, config, "-n")) == {}


@WHOLE_RUN
def test_top_k_reruns_neuron_statistics_but_not_the_model(two_models):
    work, config = two_models
    changed = copy.deepcopy(config)
    changed["analysis"]["top_k"] = 4
    jobs = planned_jobs(run_workflow(work, changed, "-n"))
    assert jobs.get("neuron_statistics") == 4  # 2 layers x 2 models
    assert jobs.get("score_superposition") == 2 and jobs.get("correlate_superposition") == 2
    for rule in (
        "generate_dataset",
        "train_toy_model",
        "extract_activations",
        "measure_separability",
    ):
        assert rule not in jobs, rule


@WHOLE_RUN
def test_n_neurons_reruns_only_selection_and_what_follows(two_models):
    work, config = two_models
    changed = copy.deepcopy(config)
    changed["analysis"]["n_neurons"] = 10
    jobs = planned_jobs(run_workflow(work, changed, "-n"))
    assert jobs.get("score_superposition") == 2
    downstream = {
        "score_superposition",
        "correlate_superposition",
        "correlate_binding",
        "superposition_null",
        "plot_superposition_null",
        "plot_neurons",
        "plot_correlation",
        "plot_binding",
        "compare_models",
        "tabulate_results",
        "record_config",
        # the main analysis is one of the specifications, so its n_neurons joins the grid
        "assemble_specifications",
        "plot_specification_curve",
        "all",
    }
    assert set(jobs) <= downstream, set(jobs) - downstream


@pytest.mark.parametrize(
    "analysis, words",
    [
        ({"top_k": 50}, "analysis.top_k: 50 top images per neuron, but the dataset has only 12"),
        ({"layers": [5]}, "analysis.layers: layer 5 is out of range"),
        ({"layers": []}, "analysis.layers"),
    ],
)
def test_analysis_config_errors_stop_before_any_job(tmp_path, tiny_config, analysis, words):
    tiny_config["analysis"].update(analysis)
    proc = run_workflow(tmp_path, tiny_config, "-n", check=False)
    assert proc.returncode != 0 and words in proc.stdout + proc.stderr
