"""A user's own dataset: every defect named with its file and the fix, at start-up.

Each case is a new user's mistake (a missing image, a text file named .png, an empty table,
an RGBA image with a transparent background, a wide image whose objects the crop cuts...).
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vlmbinding.data import external as ext
from vlmbinding.data import toyshapes as ds
from vlmbinding.data.vocab import POSITION_CENTRES, Vocabulary

VOCAB = Vocabulary()


@pytest.fixture
def mine(tmp_path):
    """Five generated images saved as a user would have them, and their objects table."""
    images, objects = ds.generate_dataset(tmp_path / "gen", VOCAB, [1, 2], 3, seed=5)
    folder = tmp_path / "mine"
    folder.mkdir()
    for p in images["path"][:5]:
        Image.open(p).save(folder / p.split("/")[-1])
    table = objects[objects["image_id"].isin(images["image_id"][:5])]
    return folder, table[["image_id", "shape", "color", "position"]].reset_index(drop=True)


def _fails(table, folder, *words, **kw):
    with pytest.raises(ext.DatasetError) as err:
        ext.validate_external(table, folder, VOCAB, **kw)
    for w in words:
        assert re.search(w, str(err.value)), (w, str(err.value))
    return str(err.value)


def test_a_clean_dataset_passes_and_imports_as_rgb(mine, tmp_path):
    folder, table = mine
    files = ext.validate_external(table, folder, VOCAB)
    images, objects = ext.import_external(table, files, tmp_path / "out")
    assert len(images) == 5 and list(objects.columns) == ds.OBJECT_COLUMNS
    assert all(Image.open(p).mode == "RGB" for p in images["path"])


def test_missing_image_is_named(mine):
    folder, table = mine
    (folder / "img_00002.png").unlink()
    _fails(table, folder, "not found", "img_00002")


def test_unknown_shape_is_named_with_the_key(mine):
    folder, table = mine
    table.loc[0, "shape"] = "blob"
    _fails(table, folder, r"unknown shape value\(s\) \['blob'\]", "dataset.shapes")


def test_duplicated_ids_are_named(mine):
    folder, table = mine
    (folder / "img_00001.jpg").write_bytes((folder / "img_00001.png").read_bytes())
    _fails(table, folder, "duplicated image id", "img_00001")
    table["object"] = 0
    _fails(table, folder, "object numbers listed twice", "img_00003")


@pytest.mark.parametrize(
    "content, words",
    [
        ("", "is empty; it needs a header"),
        ("image_id,shape,color,position\n", "has a header but no rows"),
        ('image_id,shape\n"a,b\n', "cannot be read|no rows"),
    ],
)
def test_empty_or_bodiless_table_names_the_file(tmp_path, content, words):
    path = tmp_path / "objects.csv"
    path.write_text(content)
    with pytest.raises(ext.DatasetError) as err:
        ext.read_objects_table(path)
    assert re.search(words, str(err.value)) and str(path) in str(err.value)
    assert "top_k" not in str(err.value)


def test_missing_table_and_folder_name_the_key(tmp_path, mine):
    with pytest.raises(ext.DatasetError, match="dataset.external.objects.*does not exist"):
        ext.read_objects_table(tmp_path / "nope.csv")
    _, table = mine
    _fails(table, tmp_path / "nofolder", "dataset.external.images", "does not exist")


def test_missing_column_is_named(mine):
    folder, table = mine
    _fails(table.drop(columns="position"), folder, r"lacks column\(s\) \['position'\]")


def test_a_text_file_named_png_is_caught_before_import(mine):
    folder, table = mine
    (folder / "img_00004.png").write_text("this is not an image\n")
    _fails(table, folder, "img_00004.png is not a readable image", "text file")


def test_a_truncated_png_is_caught(mine):
    folder, table = mine
    data = (folder / "img_00004.png").read_bytes()
    (folder / "img_00004.png").write_bytes(data[: len(data) // 2])
    _fails(table, folder, "img_00004.png is not a readable image")


def test_an_image_over_pils_pixel_limit_names_file_size_and_limit(mine, monkeypatch):
    folder, table = mine
    Image.new("RGB", (300, 200), "white").save(folder / "img_00004.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # the file is over twice that
    _fails(table, folder, "img_00004.png is 300 x 200 = 60,000 pixels", "limit of 20,000")
    _fails(table, folder, "MAX_IMAGE_PIXELS", "downscale")
    assert Image.MAX_IMAGE_PIXELS == 20_000  # the limit is left as it was


def test_rgba_and_grayscale_become_rgb_on_white_and_are_logged(mine, tmp_path, caplog):
    folder, table = mine
    rgb = Image.open(folder / "img_00000.png")
    rgba = rgb.convert("RGBA")
    alpha = np.where(np.asarray(rgb).min(axis=2) == 255, 0, 255).astype(np.uint8)
    arr = np.asarray(rgba).copy()
    arr[..., :3][alpha == 0] = 0  # transparent pixels are black underneath
    arr[..., 3] = alpha
    Image.fromarray(arr, "RGBA").save(folder / "img_00000.png")
    Image.open(folder / "img_00001.png").convert("L").save(folder / "img_00001.png")
    files = ext.validate_external(table, folder, VOCAB)
    with caplog.at_level(logging.WARNING, logger="vlmbinding.data.external"):
        images, _ = ext.import_external(table, files, tmp_path / "out")
    assert "img_00000.png: mode RGBA" in caplog.text and "img_00001.png: mode L" in caplog.text
    out = np.asarray(Image.open(tmp_path / "out" / "img_00000.png"))
    assert out[0, 0].tolist() == [255, 255, 255]  # background white, not black
    np.testing.assert_array_equal(out, np.asarray(rgb))


def test_images_of_very_different_sizes_get_boxes_at_their_size(mine, tmp_path, caplog):
    folder, table = mine
    big = Image.open(folder / "img_00000.png").resize((960, 956))
    big.save(folder / "img_00000.png")
    files = ext.validate_external(table, folder, VOCAB)
    with caplog.at_level(logging.WARNING, logger="vlmbinding.data.external"):
        _, objects = ext.import_external(table, files, tmp_path / "out")
    first = objects[objects["image_id"] == "img_00000"].iloc[0]
    expected = ds.Canvas(960, 956).box(first["shape"], POSITION_CENTRES[first["position"]])
    assert tuple(first[ds.BOX_COLUMNS]) == expected
    assert expected[2] - expected[0] > 150  # four times the 232 px images' boxes
    assert "16-fold" in caplog.text


def test_objects_the_centre_crop_cuts_are_refused_unless_reference(mine):
    folder, table = mine
    # A 1000x100 strip: the model's centre crop keeps x 450..550 only.
    Image.new("RGB", (1000, 100), "white").save(folder / "img_00000.png")
    table = table.copy()
    table[["x0", "y0", "x1", "y1"]] = [10, 10, 60, 60]
    table.loc[table["image_id"] != "img_00000", ["x0", "y0", "x1", "y1"]] = [20, 20, 40, 40]
    message = _fails(table, folder, "outside the centre square", r"img_00000 \(1000x100\)")
    assert "pad these images to square" in message and "preprocess: reference" in message
    ext.validate_external(table, folder, VOCAB, crop=False)  # the whole image is seen


def test_boxes_outside_the_image_and_partial_box_columns(mine):
    folder, table = mine
    boxed = table.assign(x0=0, y0=0, x1=500, y1=10)
    _fails(boxed, folder, "outside their image", "img_00000")
    _fails(table.assign(x0=1, y0=1), folder, "give all four or none")


def test_nominal_boxes_of_the_import_match_the_generator(mine, tmp_path):
    folder, table = mine
    files = ext.validate_external(table, folder, VOCAB)
    _, objects = ext.import_external(table, files, tmp_path / "out")
    expected = ds.add_boxes(table, ds.Canvas())
    np.testing.assert_array_equal(
        objects[ds.BOX_COLUMNS].to_numpy(), expected[ds.BOX_COLUMNS].to_numpy()
    )
    assert isinstance(objects, pd.DataFrame)
