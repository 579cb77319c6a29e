"""The region of an image the model sees, maps laid over it, and RGB conversion."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vlmbinding.data import crop as views


def test_model_preprocessing_sees_the_centre_square():
    assert views.seen_region(1000, 100, crop=True) == (450, 0, 550, 100)
    assert views.seen_region(100, 300, crop=True) == (0, 100, 100, 200)
    assert views.seen_region(64, 64, crop=True) == (0, 0, 64, 64)
    assert views.seen_region(1000, 100, crop=False) == (0, 0, 1000, 100)
    assert views.crops_to_square("model") and not views.crops_to_square("reference")
    with pytest.raises(ValueError, match="activations.preprocess"):
        views.crops_to_square("squash")


def test_the_crop_window_matches_the_model_transform():
    """The region equals what open_clip's resize + centre crop keeps (a marked column)."""
    from helpers import tiny_model

    loaded = tiny_model()
    img = np.full((100, 300, 3), 255, np.uint8)
    img[:, 99] = 0  # just left of the window (100..200): cropped away
    img[:, 150] = 0  # inside
    x = loaded.preprocess(Image.fromarray(img))
    x0, _, x1, _ = views.seen_region(300, 100, crop=True)
    assert (x0, x1) == (100, 200)
    column = x[0].mean(dim=0)  # darkest column of the 56 px view
    assert int(column.argmin()) == pytest.approx(28, abs=1)
    assert column[:5].min() > column.min() + 1  # the left mark is gone


def test_boxes_cut_by_the_crop_are_found():
    region = views.seen_region(1000, 100, crop=True)
    boxes = [[460, 10, 500, 50], [10, 10, 60, 60], [449.5, 0, 470, 20]]
    assert views.boxes_outside(boxes, region).tolist() == [False, True, False]


def test_maps_go_back_over_the_region_the_model_saw():
    maps = np.ones((2, 100, 100))
    canvas = views.place_on_image(maps, 100, 1000, (450, 0, 550, 100))
    assert canvas.shape == (2, 100, 1000)
    assert canvas[:, :, 450:550].min() == 1 and canvas[:, :, :450].max() == 0
    with pytest.raises(ValueError, match="do not fit"):
        views.place_on_image(maps, 100, 1000, (0, 0, 1000, 100))


def test_transparency_becomes_white_not_black():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((1, 1), (255, 0, 0, 255))
    rgb = np.asarray(views.to_rgb(rgba))
    assert rgb[0, 0].tolist() == [255, 255, 255]
    assert rgb[1, 1].tolist() == [255, 0, 0]
    gray = Image.new("L", (2, 2), 128)
    assert np.asarray(views.to_rgb(gray))[0, 0].tolist() == [128, 128, 128]
    la = Image.new("LA", (2, 2), (0, 0))
    assert np.asarray(views.to_rgb(la))[0, 0].tolist() == [255, 255, 255]


def test_boxes_move_into_the_region_the_model_saw():
    import pandas as pd

    objects = pd.DataFrame({"x0": [460, 440], "y0": [10, 0], "x1": [500, 470], "y1": [50, 20]})
    inside = views.boxes_in_region(objects, (450, 0, 550, 100))
    assert inside.values.tolist() == [[10, 10, 50, 50], [0, 0, 20, 20]]


def test_rgb_images_stay_usable_after_their_file_is_closed(tmp_path):
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as im:
        rgb = views.to_rgb(im)
    assert np.asarray(rgb.resize((2, 2)))[0, 0].tolist() == [1, 2, 3]
