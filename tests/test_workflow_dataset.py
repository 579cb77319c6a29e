"""End-to-end: the dataset stage of the real workflow, run from a temporary directory."""

from __future__ import annotations

import pandas as pd
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
