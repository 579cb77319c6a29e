"""The toy model's data: training scenes never equal an analysis or test scene, held-out
combinations never reach training, and zero-shot accuracy is split into seen and unseen."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from vlmbinding.data.toyshapes import sample_scenes
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.models.toy import model as tm
from vlmbinding.models.toy import scenes as ts

VOCAB = Vocabulary()
TOY = {"seed": 0, "holdout": 0.2, "eval_images": 30, "scenes": 2000, "max_objects": 2}


@pytest.fixture(scope="module")
def analysis():
    """The default analysis dataset's objects (dataset.seed 0, 100 images of 1-5 objects)."""
    return sample_scenes(VOCAB, [1, 2, 3, 4, 5], 100, seed=0)


@pytest.fixture(scope="module")
def split(analysis):
    return ts.clean_split(VOCAB, TOY, analysis)


def triples(objects):
    return set(zip(objects["shape"], objects["color"], objects["position"]))


def test_streams_are_distinct_and_reproducible():
    seeds = ts.stream_seeds(0)
    assert set(seeds) == set(ts.STREAMS) and len(set(seeds.values())) == len(seeds)
    assert seeds == ts.stream_seeds(0) and seeds != ts.stream_seeds(1)
    assert 0 not in seeds.values()  # none is the analysis dataset's default seed


def test_the_old_shared_seed_did_overlap(analysis):
    # The bug this module fixes: toy.seed == dataset.seed == 0 made the analysis images
    # training scenes, and the check says so.
    objects = sample_scenes(VOCAB, [1, 2], 500, 0)
    with pytest.raises(ValueError, match="equal a scene of the analysis dataset"):
        ts.check_no_overlap(objects, analysis, analysis.head(0), set())


def test_no_analysis_or_test_scene_is_a_training_scene(split, analysis):
    objects, captions, evaluation = split
    train = set(ts.scene_keys(objects))
    assert not train & set(ts.scene_keys(analysis))
    assert not train & set(ts.scene_keys(evaluation))
    assert objects["image_id"].nunique() == len(captions) == 2000
    for (_, group), text in list(zip(objects.groupby("image_id", sort=False), captions))[:50]:
        objs = group.reset_index(drop=True)
        orders = [[0], [0, 1], [1, 0]]
        assert text in [tm.caption(objs, o) for o in orders if len(o) == len(objs)]
    # Both counts are present and one-object scenes still train (those left free).
    sizes = objects.groupby("image_id").size()
    assert set(sizes) == {1, 2} and (sizes == 1).sum() == 1000


def test_held_out_combinations_never_appear_in_training(split):
    objects, captions, evaluation = split
    unseen = triples(evaluation[evaluation["split"] == "unseen"])
    assert len(unseen) == 30  # 20% of 5 x 6 x 5
    assert not unseen & triples(objects)
    for text in captions:
        for s, c, p in unseen:
            assert f"a {c} {s} {tm.POSITION_WORDS[p]}" not in text
    # Seen test combinations do occur in training, but only inside other scenes.
    seen = evaluation[evaluation["split"] == "seen"]
    assert len(seen) == 30 and triples(seen) <= triples(objects)
    singles = {k for k in ts.scene_keys(objects) if len(k) == 1}
    assert not {frozenset([t]) for t in triples(seen)} & singles
    # Every colour, shape and position is still trained on.
    for kind in ("shape", "color", "position"):
        assert set(objects[kind]) == set(VOCAB.values(kind))


def test_split_is_seeded(analysis, split):
    again = ts.clean_split(VOCAB, TOY, analysis)
    pd.testing.assert_frame_equal(again[0], split[0])
    assert again[1] == split[1]
    other = ts.clean_split(VOCAB, {**TOY, "seed": 1}, analysis)
    assert triples(other[2][other[2]["split"] == "unseen"]) != triples(
        split[2][split[2]["split"] == "unseen"]
    )


def test_overlap_check_fires_on_planted_overlaps(split, analysis):
    objects, _, evaluation = split
    planted = analysis[analysis["image_id"] == analysis["image_id"].iloc[500]]
    with pytest.raises(ValueError, match="analysis dataset"):
        ts.check_no_overlap(pd.concat([objects, planted]), analysis, evaluation, set())
    test_scene = evaluation.iloc[[0]].drop(columns="split").assign(image_id="x")
    with pytest.raises(ValueError, match="zero-shot evaluation"):
        ts.check_no_overlap(pd.concat([objects, test_scene]), analysis, evaluation, set())
    held = next(iter(triples(evaluation[evaluation["split"] == "unseen"])))
    leak = pd.DataFrame(
        [
            {"image_id": "y", "object": 0, "shape": held[0], "color": held[1], "position": "M"},
            {"image_id": "y", "object": 1, "shape": "x", "color": "x", "position": "x"},
        ]
    )
    leak.loc[0, "position"] = held[2]
    with pytest.raises(ValueError, match="held-out combinations"):
        ts.check_no_overlap(pd.concat([objects, leak]), analysis, evaluation, {held})


def test_holdout_as_a_list_and_bad_entries_are_named():
    held = ts.held_out_triples(VOCAB, ["red square TL", "blue circle M"], seed=0)
    assert held == {("square", "red", "TL"), ("circle", "blue", "M")}
    with pytest.raises(ValueError, match="toy.holdout entry 'purple square TL'"):
        ts.held_out_triples(VOCAB, ["purple square TL"], seed=0)
    with pytest.raises(ValueError, match="toy.holdout"):
        ts.held_out_triples(VOCAB, 1.5, seed=0)
    assert ts.held_out_triples(VOCAB, 0.0, seed=0) == set()


def test_when_every_one_object_scene_is_taken_two_object_scenes_fill_in(caplog):
    forbidden = {frozenset([t]) for t in ts.all_triples(VOCAB)}
    with caplog.at_level(logging.WARNING):
        objects, _ = ts.training_scenes(
            VOCAB, 100, 2, ts.stream_seeds(0), held_out=set(), forbidden=forbidden
        )
    assert (objects.groupby("image_id").size() == 2).all()
    assert objects["image_id"].nunique() == 100 and "no one-object scene" in caplog.text
    with pytest.raises(ValueError, match="toy.max_objects"):
        ts.training_scenes(VOCAB, 10, 1, ts.stream_seeds(0), set(), forbidden)


def test_zero_shot_table_splits_seen_and_unseen():
    truth = pd.DataFrame(
        {
            "split": ["seen", "seen", "unseen", "unseen"],
            "shape": ["circle", "square", "circle", "square"],
            "color": ["red", "red", "blue", "blue"],
            "position": ["M", "TL", "M", "TL"],
        }
    )
    predicted = truth[["shape", "color", "position"]].copy()
    predicted.loc[1, "color"] = "green"  # seen: one colour wrong
    predicted.loc[2:3, "position"] = "BR"  # unseen: both positions wrong
    table = ts.zero_shot_table(truth, predicted, VOCAB).set_index(["split", "attribute"])
    assert list(table.columns) == ["accuracy", "ci_low", "ci_high", "chance", "n"]
    assert table.loc[("seen", "color"), "accuracy"] == 0.5
    assert table.loc[("seen", "triple"), "accuracy"] == 0.5
    assert table.loc[("unseen", "position"), "accuracy"] == 0.0
    assert table.loc[("unseen", "shape"), "accuracy"] == 1.0
    assert (table["n"] == 2).all()
    assert (table["ci_low"] <= table["accuracy"]).all()
    assert (table["accuracy"] <= table["ci_high"]).all()
    assert table.loc[("seen", "color"), "chance"] == pytest.approx(1 / 6)
    # Wilson interval of 1 in 2.
    assert table.loc[("seen", "color"), "ci_low"] == pytest.approx(0.0945, abs=1e-4)
    assert np.isfinite(table["ci_high"]).all()


def test_model_comparison_quotes_unseen_zero_shot_accuracy():
    from vlmbinding.analysis.cross_model import model_summary

    zero_shot = pd.DataFrame(
        {
            "split": ["seen"] * 4 + ["unseen"] * 4,
            "attribute": ["color", "shape", "position", "triple"] * 2,
            "accuracy": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],
        }
    )
    empty = pd.DataFrame(columns=["metric", "space", "subset"])
    row = model_summary("toy", empty, pd.DataFrame({"entropy": [1.0]}), zero_shot=zero_shot)
    assert row["zero_shot_color"] == 0.5 and row["zero_shot_triple"] == 0.2
