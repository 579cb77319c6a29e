"""Start-up checks: a bad input stops the workflow's parse (so `snakemake -n`) before any
job, naming the key or file.

Each case was once caught late (inside a job, after the model ran) or blamed the wrong key.
One case runs `snakemake -n` as a user would; the others parse the workflow in-process.
"""

from __future__ import annotations

import pytest
from conftest import run_workflow
from PIL import Image
from workflow_api import parse_workflow

from vlmbinding.data import toyshapes as ds
from vlmbinding.data.vocab import Vocabulary


@pytest.fixture
def external_config(tmp_path, tiny_config):
    """The test config on a user's dataset of six generated images."""
    images, objects = ds.generate_dataset(tmp_path / "gen", Vocabulary(), [1, 2, 3], 2, seed=1)
    folder = tmp_path / "mine"
    folder.mkdir()
    for p in images["path"]:
        Image.open(p).save(folder / p.split("/")[-1])
    objects[["image_id", "shape", "color", "position"]].to_csv(
        tmp_path / "objects.csv", index=False
    )
    tiny_config["dataset"]["external"] = {
        "images": str(folder),
        "objects": str(tmp_path / "objects.csv"),
    }
    return tiny_config


def _stops(workdir, config, *words):
    with pytest.raises(Exception) as err:
        parse_workflow(workdir / "run", config)
    out = str(err.value)
    for w in words:
        assert w in out, (w, out[-3000:])
    assert not (workdir / "run" / "results").exists()
    return out


def test_external_dataset_passes_the_start_up_checks(tmp_path, external_config):
    wf = parse_workflow(tmp_path / "run", external_config)
    assert wf.get_rule("import_dataset").params.preprocess == "model"


def test_a_text_file_named_png_stops_the_dry_run(tmp_path, external_config):
    (tmp_path / "mine" / "img_00003.png").write_text("not an image")
    proc = run_workflow(tmp_path / "run", external_config, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "img_00003.png is not a readable image" in out, out[-2000:]
    assert not (tmp_path / "run" / "results").exists()


def test_a_table_with_a_header_and_no_rows_names_the_table_not_top_k(tmp_path, external_config):
    (tmp_path / "objects.csv").write_text("image_id,shape,color,position\n")
    out = _stops(tmp_path, external_config, "objects.csv has a header but no rows")
    assert "top_k" not in out


def test_an_empty_table_names_the_file(tmp_path, external_config):
    (tmp_path / "objects.csv").write_text("")
    _stops(tmp_path, external_config, "objects.csv is empty")


def test_unknown_gradcam_image_ids_stop_the_dry_run(tmp_path, tiny_config):
    tiny_config["gradcam"] = {"images": ["img_00001", "img_99999"]}
    _stops(tmp_path, tiny_config, "gradcam.images", "img_99999")


@pytest.mark.parametrize(
    "neuron, words", [("7:0", "layer 7 is not among the analysed layers"), ("1:32", "unit 32")]
)
def test_figures_neuron_is_checked_against_layers_and_width(tmp_path, tiny_config, neuron, words):
    tiny_config["figures"] = {"neuron": neuron}
    _stops(tmp_path, tiny_config, "figures.neuron", words)


def test_a_wide_generated_canvas_that_the_crop_would_cut_is_refused(tmp_path, tiny_config):
    tiny_config["dataset"].update(width=160, height=64)
    _stops(tmp_path, tiny_config, "dataset.width, dataset.height", "'TL'", "preprocess: reference")
    tiny_config["activations"]["preprocess"] = "reference"
    parse_workflow(tmp_path / "ok", tiny_config)  # the whole image is seen
