"""Grad-CAM prompts and the swapped-caption binding test."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis import binding as bd
from vlmbinding.data.toyshapes import sample_scenes
from vlmbinding.data.vocab import Vocabulary


def objects_table(*images: list[tuple[str, str]]) -> pd.DataFrame:
    """An objects table from lists of (color, shape), one list per image."""
    return pd.DataFrame(
        [
            {"image_id": f"img_{n}", "object": k, "shape": shape, "color": color}
            for n, objs in enumerate(images)
            for k, (color, shape) in enumerate(objs)
        ]
    )


def parse(caption: str) -> list[tuple[str, str]]:
    """(color, shape) of each object of a caption made with the default template."""
    return [tuple(phrase.split()[1:]) for phrase in caption.split(" and ")]


# --- prompts -----------------------------------------------------------------------------


def test_object_phrase():
    assert bd.object_phrase("green", "square") == "a green square"
    assert bd.object_phrase("red", "circle", "{shape} in {color}") == "circle in red"


def test_prompts_for_green_circle_and_red_square():
    objs = objects_table([("green", "circle"), ("red", "square")])
    prompts = bd.binding_prompts(objs)
    expected = pd.DataFrame(
        {
            "prompt": ["a green circle", "a red square", "a green square", "a red circle"],
            "kind": ["true", "true", "swapped", "swapped"],
            "color": ["green", "red", "green", "red"],
            "shape": ["circle", "square", "square", "circle"],
            "color_object": [0, 1, 0, 1],
            "shape_object": [0, 1, 1, 0],
        }
    )
    pd.testing.assert_frame_equal(prompts, expected)


def test_prompts_follow_the_object_column_and_count_right():
    objs = objects_table([("green", "circle"), ("red", "square"), ("blue", "hexagon")])
    prompts = bd.binding_prompts(objs.iloc[::-1])  # table order must not matter
    assert list(prompts["prompt"][:3]) == ["a green circle", "a red square", "a blue hexagon"]
    assert (prompts["kind"] == "swapped").sum() == 6 and prompts["prompt"].is_unique
    row = prompts.set_index("prompt").loc["a blue square"]
    assert (row["color_object"], row["shape_object"]) == (2, 1)


def test_prompts_deduplicate():
    # with a repeated colour every swapped prompt repeats a true one
    prompts = bd.binding_prompts(objects_table([("red", "circle"), ("red", "square")]))
    assert prompts["prompt"].tolist() == ["a red circle", "a red square"]
    assert prompts["kind"].tolist() == ["true", "true"]
    with pytest.raises(ValueError, match="template"):
        bd.binding_prompts(objects_table([("green", "circle")]), "a {shape}")


# --- swapped-caption trials ----------------------------------------------------------------


@pytest.fixture
def scenes():
    return sample_scenes(Vocabulary(), [1, 2, 3, 5], images_per_count=3, seed=0)


def test_trials_cover_every_pair_of_every_image(scenes):
    trials = bd.swapped_caption_trials(scenes)
    assert list(trials.columns) == bd.TRIAL_COLUMNS
    # 1 object: no trial; k objects: k(k-1)/2 trials
    assert len(trials) == 3 * (0 + 1 + 3 + 10)
    assert set(trials["num_objects"]) == {2, 3, 5}
    assert (trials["obj_i"] < trials["obj_j"]).all()


def test_swapped_captions_really_are_swapped(scenes):
    trials = bd.swapped_caption_trials(scenes)
    for t in trials.itertuples():
        true, swapped = parse(t.true_caption), parse(t.swapped_caption)
        objs = scenes[scenes["image_id"] == t.image_id].sort_values("object")
        assert true == list(zip(objs["color"], objs["shape"]))
        assert t.swapped_caption != t.true_caption
        assert Counter(c for c, _ in true) == Counter(c for c, _ in swapped)
        assert [s for _, s in true] == [s for _, s in swapped]  # shapes stay in place
        i, j = t.obj_i, t.obj_j
        assert swapped[i] == (t.color_j, t.shape_i) and swapped[j] == (t.color_i, t.shape_j)
        assert true[i] == (t.color_i, t.shape_i) and true[j] == (t.color_j, t.shape_j)
        others = [k for k in range(t.num_objects) if k not in (i, j)]
        assert [true[k] for k in others] == [swapped[k] for k in others]


def test_trials_of_a_known_image():
    trials = bd.swapped_caption_trials(objects_table([("green", "circle"), ("red", "square")]))
    assert len(trials) == 1
    t = trials.iloc[0]
    assert t["true_caption"] == "a green circle and a red square"
    assert t["swapped_caption"] == "a red circle and a green square"


def test_repeated_colours_are_refused():
    with pytest.raises(ValueError, match="unchanged"):
        bd.swapped_caption_trials(objects_table([("red", "circle"), ("red", "square")]))


# --- scoring -------------------------------------------------------------------------------


def test_trial_similarities_and_score():
    trials = bd.swapped_caption_trials(
        objects_table([("green", "circle"), ("red", "square")], [("blue", "square")])
    )
    captions = bd.trial_captions(trials)
    assert captions == ["a green circle and a red square", "a red circle and a green square"]
    image_emb = np.array([[3.0, 4.0]])
    caption_emb = np.array([[1.0, 0.0], [0.0, 2.0]])
    sim_true, sim_swapped = bd.trial_similarities(
        trials, ["img_0"], image_emb, captions, caption_emb
    )
    np.testing.assert_allclose([sim_true[0], sim_swapped[0]], [0.6, 0.8])
    scored = bd.score_trials(trials, sim_true, sim_swapped)
    assert not scored["correct"].iloc[0]
    assert bd.score_trials(trials, [0.5], [0.5])["correct"].tolist() == [False]  # ties fail
    with pytest.raises(ValueError):
        bd.score_trials(trials, [0.1, 0.2], [0.3])


def scored_table() -> pd.DataFrame:
    rows = [
        # num_objects, color_i, color_j, shape_i, shape_j, correct
        (2, "red", "green", "circle", "square", True),
        (2, "green", "red", "square", "triangle", False),
        (3, "blue", "red", "circle", "square", True),
        (3, "red", "blue", "triangle", "circle", True),
    ]
    cols = ["num_objects", "color_i", "color_j", "shape_i", "shape_j", "correct"]
    return pd.DataFrame(rows, columns=cols)


FEATURES = Vocabulary().features


def test_binding_accuracy_overall_and_per_count():
    acc = bd.binding_accuracy(scored_table(), FEATURES)
    assert acc["overall"].to_dict("records") == [{"n": 4, "accuracy": 0.75}]
    pd.testing.assert_frame_equal(
        acc["per_count"],
        pd.DataFrame({"num_objects": [2, 3], "n": [2, 2], "accuracy": [0.5, 1.0]}),
    )


def test_binding_accuracy_per_pair_in_feature_order():
    per_pair = bd.binding_accuracy(scored_table(), FEATURES)["per_pair"]
    expected = pd.DataFrame(
        [
            ("circle", "square", 2, 1.0),
            ("circle", "triangle", 1, 1.0),
            ("square", "triangle", 1, 0.0),
            ("red", "green", 2, 0.5),
            ("red", "blue", 2, 1.0),
        ],
        columns=["f1", "f2", "n", "accuracy"],
    )
    pd.testing.assert_frame_equal(per_pair, expected)
    order = {f: r for r, f in enumerate(FEATURES)}
    assert (per_pair["f1"].map(order) < per_pair["f2"].map(order)).all()
    # another feature order flips the pairs
    flipped = bd.binding_accuracy(scored_table(), FEATURES[::-1])["per_pair"]
    assert ("green", "red") in set(zip(flipped["f1"], flipped["f2"]))
    with pytest.raises(ValueError, match="not in the feature list"):
        bd.binding_accuracy(scored_table(), ["circle", "square"])
