"""End-to-end: the sharing stage's autoencoder basis on the tiny config (tiny autoencoders):
its rows in sharing.parquet, the dictionaries and curves, the resolved table, that changing
sharing.sae.k reruns only the autoencoder's jobs, that a training that diverges stops
the run naming the layer, and that a reduced store gives the tokens store's rows (its
latents recomputed by the model)."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow
from test_workflow_analysis import planned_jobs

from vlmbinding.analysis.sae_sharing import RESOLVED_COLUMNS, SEED_COLUMNS
from vlmbinding.analysis.sharing_stage import SHARING_COLUMNS

# make test-slow (pytest.ini): a whole workflow run of an optional stage
pytestmark = pytest.mark.slow

SAE_JOBS = {"train_sae", "measure_sharing_sae", "resolve_sae"}
DOWNSTREAM = {"gather_sharing", "correlate_sharing", "plot_sharing", "plot_sae", "tabulate_sharing"}
SAE_FIGURES = ("sharing_sae", "sae_training", "sae_resolved")
TARGETS = [
    "results/toy/sharing_correlation.parquet",
    "results/toy/figures/sharing.png",
    "results/toy/sae/resolved.tsv",
    "results/toy/sharing.html",
    *(f"results/toy/figures/{f}.png" for f in SAE_FIGURES),
]


@pytest.fixture(scope="module")
def sae_run(tmp_path_factory):
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    # 45 images: the tuning regression needs more images than 2 x 16 features + 3
    config["dataset"]["images_per_count"] = 15
    sae = {"enabled": True, "seeds": [0, 1], "n_tokens": 600, "expansion": 2, "k": 4}
    config["sharing"] = {"enabled": True, "n_null": 49, "sae": {**sae, "epochs": 2}}
    work = tmp_path_factory.mktemp("sae")
    run_workflow(work, config, *TARGETS)
    return work, config


def test_the_sharing_table_has_the_autoencoder_basis(sae_run):
    work, _ = sae_run
    part = pd.read_parquet(work / "results/toy/sharing/sae.parquet")
    assert list(part.columns) == SHARING_COLUMNS and (part["basis"] == "sae").all()
    table = pd.read_parquet(work / "results/toy/sharing.parquet")
    assert set(table["basis"]) == {"neurons", "sae"}
    sae = table[table["basis"].eq("sae")]
    assert (sae["measure"] == "overlap").sum() == 120 and (sae["layers"] == "0,1").all()
    assert not sae[["value", "z", "p"]].isna().any().any()
    seeds = pd.read_parquet(work / "results/toy/sae/seeds.parquet")
    assert list(seeds.columns) == SEED_COLUMNS and set(seeds["seed"]) == {0, 1}
    corr = pd.read_parquet(work / "results/toy/sharing_correlation.parquet")
    rows = corr[corr["basis"].eq("sae") & corr["measure"].eq("overlap") & corr["score"].eq("z")]
    assert {"D", "M", "accuracy"} <= set(rows["metric"])
    log = (work / "logs/measure_sharing_sae/toy.log").read_text()
    assert "neuron overlap: 128 neurons" in log  # 2 layers x 2 x 32 latents
    assert "overlap z between SAE seeds" in log


def test_each_layer_has_its_dictionaries_and_training_curve(sae_run):
    work, _ = sae_run
    for layer in (0, 1):
        folder = work / f"results/toy/sae/layer_{layer}"
        curve = pd.read_csv(folder / "training.tsv", sep="\t")
        assert list(curve.columns) == ["seed", "step", "loss", "fvu", "dead_fraction"]
        assert sorted(set(curve["seed"])) == [0, 1] and len(curve) == 4  # 2 seeds x 2 epochs
        assert np.isfinite(curve[["loss", "fvu", "dead_fraction"]]).all().all()
        for seed in (0, 1):
            assert (folder / f"seed-{seed}" / "dictionary.safetensors").stat().st_size > 0
    assert (work / "benchmarks/train_sae/toy/layer_0.tsv").exists()


def test_the_resolved_table_compares_the_bases(sae_run):
    work, _ = sae_run
    table = pd.read_csv(work / "results/toy/sae/resolved.tsv", sep="\t")
    assert list(table.columns) == RESOLVED_COLUMNS
    overlap = table[table["measure"].eq("overlap")]
    assert overlap["sae_seed"].astype(str).tolist() == ["mean", "0", "1"]
    assert (overlap["n_pairs"] == 120).all() and np.isfinite(overlap["r_z"]).all()


def test_the_report_has_the_autoencoder_figures_and_page(sae_run):
    work, _ = sae_run
    for f in SAE_FIGURES:
        assert (work / f"results/toy/figures/{f}.png").stat().st_size > 0
    page = (work / "results/toy/sharing.html").read_text()
    assert "S, the study&#x27;s additive score" in page
    assert "Co-tuned neuron overlap, autoencoder basis, layers 0,1" in page
    assert "What the autoencoder basis resolves" in page and "Layer 1: 2 autoencoder(s)" in page
    assert "r(overlap z, D) over 120 pairs" in page


def test_changing_k_reruns_only_the_autoencoder_jobs(sae_run):
    work, config = sae_run
    changed = copy.deepcopy(config)
    changed["sharing"]["sae"]["k"] = 3
    jobs = planned_jobs(run_workflow(work, changed, "-n", *TARGETS))
    assert jobs["train_sae"] == 2 and jobs["measure_sharing_sae"] == 1
    assert set(jobs) <= SAE_JOBS | DOWNSTREAM, jobs
    assert not planned_jobs(run_workflow(work, config, "-n", *TARGETS))


def test_a_diverging_training_stops_the_run_naming_the_layer(sae_run, tmp_path):
    # on a copy: the failed job's outputs (layer 1's dictionaries) are removed by Snakemake,
    # and the tests after this one read the shared run's
    shared, config = sae_run
    work = tmp_path / "broken"
    shutil.copytree(shared, work, symlinks=True)
    broken = copy.deepcopy(config)
    broken["sharing"]["sae"]["lr"] = float("inf")  # Adam diverges: the loss turns NaN
    target = "results/toy/sae/layer_1/training.tsv"
    proc = run_workflow(work, broken, target, check=False)
    assert proc.returncode != 0
    log = (work / "logs/train_sae/toy/layer_1.log").read_text()
    assert "toy layer 1" in log and ("loss is" in log or "dead" in log), log[-2000:]
    assert not (work / target).exists()


def test_a_reduced_store_gives_the_rows_of_a_tokens_store(sae_run, tmp_path):
    """The tokens run's folder copied (its dictionaries kept), then run with a reduced
    store: only the store, the recomputed latents and what reads them rerun, and the
    autoencoder basis's rows equal the tokens store's."""
    work, config = sae_run
    assert not (work / "logs/encode_sae_latents").exists()  # a tokens store: no extra job
    reduced_work = tmp_path / "reduced"
    shutil.copytree(work, reduced_work, symlinks=True)
    reduced = copy.deepcopy(config)
    reduced["activations"]["store"] = "reduced"
    target = "results/toy/sharing/sae.parquet"
    jobs = planned_jobs(run_workflow(reduced_work, reduced, "-n", target))
    assert jobs.get("encode_sae_latents") == 1 and jobs.get("measure_sharing_sae") == 1, jobs
    assert not {"sample_sae_tokens", "train_sae"} & set(jobs), jobs
    run_workflow(reduced_work, reduced, target)
    log = (reduced_work / "logs/encode_sae_latents/toy.log").read_text()
    assert "batch 9/9: 45/45 images" in log  # activations.batch_size 5
    key = ["measure", "basis", "layers", "f1", "f2"]
    want = pd.read_parquet(work / target).sort_values(key, ignore_index=True)
    got = pd.read_parquet(reduced_work / target).sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(got[key], want[key])
    numbers = ["value", "null_mean", "null_sd", "z", "p"]
    np.testing.assert_allclose(got[numbers], want[numbers], rtol=1e-6, atol=1e-9)
