"""The toy-shapes generator and the external-dataset validation (METHOD.md section 1)."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vlmbinding.data import external as ext
from vlmbinding.data import toyshapes as ds
from vlmbinding.data.vocab import POSITION_CENTRES, Vocabulary, color_rgb, presence_matrix

VOCAB = Vocabulary()


def digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    images, objects = ds.generate_dataset(out / "images", VOCAB, [1, 2, 3, 4, 5], 6, seed=3)
    return out, images, objects


def test_vocabulary_has_sixteen_features_and_css_colours():
    assert len(VOCAB.features) == 16
    assert len(VOCAB.feature_pairs()) == 120
    assert color_rgb("green") == (0, 128, 0)
    assert color_rgb("pink") == (255, 192, 203)


def test_counts_and_distinct_attributes(small):
    _, images, objects = small
    assert len(images) == 30
    assert images["num_objects"].value_counts().to_dict() == {k: 6 for k in range(1, 6)}
    for _, group in objects.groupby("image_id"):
        for kind in ("shape", "color", "position"):
            assert group[kind].is_unique
    assert (objects.groupby("image_id").size() == images.set_index("image_id")["num_objects"]).all()


def test_paper_size_dataset_has_500_images():
    scenes = ds.sample_scenes(VOCAB, [1, 2, 3, 4, 5], 100, seed=0)
    assert scenes["image_id"].nunique() == 500
    assert len(scenes) == 100 * (1 + 2 + 3 + 4 + 5)


def test_pixel_at_each_centre_has_the_label_colour_and_box_is_at_position(small):
    _, images, objects = small
    for row in objects.itertuples():
        im = np.asarray(Image.open(images.set_index("image_id").loc[row.image_id, "path"]))
        assert im.shape == (231, 232, 3)
        cx, cy = POSITION_CENTRES[row.position]
        px, py = int(cx * 232), int((1 - cy) * 231)
        assert tuple(im[py, px]) == color_rgb(row.color), row
        # the box is centred on the position and about 0.2 of the image wide
        assert abs((row.x0 + row.x1) / 2 - cx * 232) <= 3
        assert abs((row.y0 + row.y1) / 2 - (1 - cy) * 231) <= 6
        assert 0.15 * 232 <= row.x1 - row.x0 <= 0.22 * 232
        # outside every box the image is white
    for image_id, group in objects.groupby("image_id"):
        im = np.asarray(Image.open(images.set_index("image_id").loc[image_id, "path"]))
        mask = np.ones(im.shape[:2], bool)
        for r in group.itertuples():
            mask[r.y0 : r.y1, r.x0 : r.x1] = False
        assert (im[mask] == 255).all()


def test_shapes_differ_in_pixels():
    canvas = ds.Canvas()
    areas = {}
    for shape in VOCAB.shapes:
        objs = pd.DataFrame([{"shape": shape, "color": "black", "position": "M"}])
        im = np.asarray(ds.render_image(objs, canvas, 4))
        areas[shape] = (im.sum(-1) < 384).sum() / (232 * 231)
    # square 0.04 > hexagon > pentagon > circle (0.0314) > triangle 0.02 of the unit square
    assert areas["square"] == pytest.approx(0.04, rel=0.05)
    assert areas["triangle"] == pytest.approx(0.02, rel=0.08)
    assert areas["circle"] == pytest.approx(np.pi * 0.01, rel=0.05)
    assert areas["square"] > areas["hexagon"] > areas["pentagon"] > areas["triangle"]


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        images, objects = ds.generate_dataset(
            tmp_path / name / "images", VOCAB, [1, 2, 3], 3, seed=seed
        )
        ds.write_table(
            images.assign(path=images["path"].str.replace(f"/{name}/", "/")),
            tmp_path / name / "images.parquet",
        )
        ds.write_table(objects, tmp_path / name / "objects.parquet")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_presence_matrix_marks_every_attribute_of_every_object():
    objects = pd.DataFrame(
        [
            {"image_id": "x", "shape": "circle", "color": "red", "position": "M"},
            {"image_id": "x", "shape": "square", "color": "green", "position": "TL"},
            {"image_id": "y", "shape": "square", "color": "blue", "position": "BR"},
        ]
    )
    p = presence_matrix(objects, ["y", "x"], VOCAB)
    f = VOCAB.features
    assert p.shape == (2, 16)
    assert {f[j] for j in np.flatnonzero(p[1])} == {
        "circle",
        "square",
        "red",
        "green",
        "M",
        "TL",
    }
    assert {f[j] for j in np.flatnonzero(p[0])} == {"square", "blue", "BR"}


def test_too_many_objects_for_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match="at most 2"):
        ds.sample_scenes(Vocabulary(positions=("M", "TL")), [3], 1, 0)


# --- external datasets ---------------------------------------------------------------


@pytest.fixture
def external(tmp_path, small):
    out, images, objects = small
    folder = tmp_path / "mine"
    folder.mkdir()
    for p in images["path"][:5]:
        Image.open(p).save(folder / (p.split("/")[-1].replace(".png", ".jpg")))
    table = objects[objects["image_id"].isin(images["image_id"][:5])][
        ["image_id", "shape", "color", "position"]
    ]
    return folder, table.reset_index(drop=True)


def test_external_dataset_imports_and_gets_boxes(external, tmp_path):
    folder, table = external
    files = ext.validate_external(table, folder, VOCAB)
    images, objects = ext.import_external(table, files, tmp_path / "out" / "images")
    assert len(images) == 5 and (tmp_path / "out" / "images" / "img_00000.png").exists()
    assert list(objects.columns) == ds.OBJECT_COLUMNS
    assert (objects["x1"] > objects["x0"]).all()


@pytest.mark.parametrize(
    "defect, message, culprit",
    [
        ("missing", "image(s) not found", "img_00002"),
        ("unknown", "unknown color value(s) ['purple']", ""),
        ("duplicate", "duplicated image id(s)", "img_00003"),
        ("repeat", "with a repeated position", "img_00000"),
    ],
)
def test_external_dataset_defects_are_named(external, defect, message, culprit):
    folder, table = external
    if defect == "missing":
        (folder / "img_00002.jpg").unlink()
    elif defect == "unknown":
        table.loc[1, "color"] = "purple"
    elif defect == "duplicate":
        (folder / "img_00003.png").write_bytes((folder / "img_00003.jpg").read_bytes())
    elif defect == "repeat":
        table = pd.concat([table, table.iloc[[0]]], ignore_index=True)
    with pytest.raises(ext.DatasetError, match=re.escape(message) + ".*" + culprit):
        ext.validate_external(table, folder, VOCAB)
