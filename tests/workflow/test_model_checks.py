"""A model's checks (weights cached, tag, checkpoint architecture) run when the DAG holds a
job of that model: with the paper's config and no weights, the dataset and the analysis of
an existing store still plan; the whole run stops naming the model. Dry runs only."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import REPO, SNAKEMAKE

MODEL = "vit-l-14-openai"  # config/config.yaml's model: ViT-L-14, OpenAI weights


def dry_run(workdir, *targets):
    """`snakemake -n` with the paper's config, no weights cached and no network."""
    home = workdir / "home"
    env = {
        **os.environ,
        "HOME": str(home),
        "HF_HOME": str(home / "hf"),
        "HF_HUB_CACHE": str(home / "hf" / "hub"),
        "HF_HUB_OFFLINE": "1",
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(REPO / "config" / "config.yaml"), "-n", "--cores", "1"]
    proc = subprocess.run([*cmd, *targets], capture_output=True, text=True, env=env, cwd=workdir)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_dataset_plans_without_the_models_weights(tmp_path):
    rc, out = dry_run(tmp_path, "results/dataset/objects.parquet")
    assert rc == 0, out[-3000:]
    assert "generate_dataset" in out and "extract_activations" not in out


def test_the_whole_run_stops_naming_the_model_whose_weights_are_missing(tmp_path):
    rc, out = dry_run(tmp_path)
    assert rc != 0
    assert f"models entry {MODEL!r}" in out and "not in the local cache" in out, out[-3000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("target", ["neurons/layer_23.parquet", "neurons.parquet"])
def test_the_analysis_of_an_existing_store_plans_without_the_weights(tmp_path, target):
    dataset = tmp_path / "results" / "dataset"
    (dataset / "images").mkdir(parents=True)
    for name in ("images.parquet", "objects.parquet"):
        (dataset / name).touch()
    store = tmp_path / "results" / MODEL / "activations.zarr"
    store.mkdir(parents=True)
    os.utime(store, (os.path.getmtime(dataset / "objects.parquet") + 10,) * 2)
    rc, out = dry_run(tmp_path, f"results/{MODEL}/{target}")
    assert rc == 0, out[-3000:]
    assert "neuron_statistics" in out and "rule extract_activations" not in out
