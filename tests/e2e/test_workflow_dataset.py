"""End-to-end: the dataset stage of the real workflow, run from a temporary directory."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import run_workflow
from PIL import Image


def test_generate_dataset_in_a_temporary_working_directory(tmp_path, tiny_config):
    run_workflow(tmp_path, tiny_config, "results/dataset/objects.parquet")
    images = pd.read_parquet(tmp_path / "results/dataset/images.parquet")
    objects = pd.read_parquet(tmp_path / "results/dataset/objects.parquet")
    assert len(images) == 12 and images["num_objects"].sum() == len(objects)
    assert (tmp_path / images["path"]).map(lambda p: p.exists()).all()
    assert (tmp_path / "logs" / "generate_dataset.log").exists()


def test_external_dataset_is_imported_and_its_defects_stop_the_run(tmp_path, tiny_config):
    folder = tmp_path / "mine"
    folder.mkdir()
    rows = []
    for i, (shape, color) in enumerate([("circle", "red"), ("square", "green")]):
        Image.new("RGB", (50, 40), "white").save(folder / f"pic{i}.png")
        rows.append({"image_id": f"pic{i}", "shape": shape, "color": color, "position": "M"})
    pd.DataFrame(rows).to_csv(tmp_path / "objects.csv", index=False)
    tiny_config["dataset"]["external"] = {"images": "mine", "objects": "objects.csv"}
    tiny_config["analysis"]["top_k"] = 1  # two images only
    work = tmp_path  # the config's paths are relative to the working directory
    run_workflow(work, tiny_config, "results/dataset/objects.parquet")
    objects = pd.read_parquet(work / "results/dataset/objects.parquet")
    assert objects["image_id"].tolist() == ["pic0", "pic1"]
    assert objects[["x0", "y0", "x1", "y1"]].iloc[0].tolist() == [20, 16, 30, 24]

    pd.DataFrame(
        rows + [{"image_id": "pic9", "shape": "circle", "color": "red", "position": "TL"}]
    ).to_csv(tmp_path / "objects.csv", index=False)
    proc = run_workflow(work, tiny_config, "-n", "--forceall", check=False)
    assert proc.returncode != 0 and "pic9" in proc.stdout + proc.stderr


def inputs_of(plan: str, rule: str, output: str) -> str:
    """The input line of the job of `rule` writing `output`, in a dry run's printed plan."""
    block = next(b for b in plan.split("\n\n") if f"rule {rule}:" in b and output in b)
    return next(line for line in block.splitlines() if "input:" in line)


def dry_run(workdir, config) -> str:
    """The printed plan of a dry run of every job."""
    proc = run_workflow(workdir, config, "-n", "--forceall")
    return proc.stdout + proc.stderr


@pytest.mark.slow  # three Snakemake invocations, two of them planning every job
def test_dataset_seed_replicates_are_analysed_on_their_own_dataset(tmp_path, tiny_config):
    tiny_config["models"][0]["replicates"] = {"dataset_seeds": [0, 3]}
    run_workflow(
        tmp_path,
        tiny_config,
        "results/dataset/objects.parquet",
        "results/dataset/seed-3/objects.parquet",
    )
    one = pd.read_parquet(tmp_path / "results/dataset/objects.parquet")
    three = pd.read_parquet(tmp_path / "results/dataset/seed-3/objects.parquet")
    images = pd.read_parquet(tmp_path / "results/dataset/seed-3/images.parquet")
    assert one["image_id"].unique().tolist() == three["image_id"].unique().tolist()
    assert not one.equals(three)  # the same ids, other scenes
    assert images["path"].str.startswith("results/dataset/seed-3/images/").all()
    assert (tmp_path / images["path"]).map(lambda p: p.exists()).all()
    assert (tmp_path / "logs/generate_dataset/seed-3.log").exists()

    plan = dry_run(tmp_path, tiny_config)
    rep = inputs_of(plan, "extract_activations", "results/toy/replicate-1/activations.zarr")
    assert "results/dataset/seed-3/images.parquet" in rep
    own = inputs_of(plan, "extract_activations", "results/toy/activations.zarr")
    assert "results/dataset/images.parquet" in own and "seed-3" not in own
    train = inputs_of(plan, "train_toy_model", "results/toy/replicate-1/toy_model/checkpoint.pt")
    assert "results/dataset/seed-3/objects.parquet" in train  # training avoids its scenes
    sep = inputs_of(plan, "measure_separability", "results/toy/replicate-1/separability.parquet")
    assert "results/dataset/seed-3/objects.parquet" in sep

    # the twin runs on replicate 0's dataset: only replicates on that dataset get a sanity
    # table (it pairs images by id)
    tiny_config["controls"]["random_weights"] = True
    plan = dry_run(tmp_path, tiny_config)
    assert "results/toy/controls/sanity.html" in plan
    assert "results/toy/replicate-1/controls/sanity.html" not in plan
    twin = inputs_of(plan, "extract_activations", "results/toy/controls/random/activations")
    assert "results/dataset/images.parquet" in twin and "seed-3" not in twin
