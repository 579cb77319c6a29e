"""The toy CLIP really learns (in seconds, on a tiny config), and its Grad-CAM maps land
on the object a prompt names."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch

from vlmbinding.analysis import gradcam as gc
from vlmbinding.data.toyshapes import Canvas, add_boxes, render_image, sample_scenes
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.models import loading as models
from vlmbinding.models.toy import model as tm
from vlmbinding.models.toy import scenes as ts

VOCAB = Vocabulary()
CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 4},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def trained():
    torch.set_flush_denormal(True)
    objects, captions = ts.training_scenes(VOCAB, 900, 2, ts.stream_seeds(0), set(), [])
    images = tm.render_scenes(objects, 32)
    torch.manual_seed(0)
    model = open_clip.CLIP(**CFG)
    tokenizer = models.tokenizer_for(CFG)
    curve = tm.train(
        model,
        tokenizer,
        images,
        captions,
        epochs=3,
        batch_size=64,
        lr=3e-3,
        weight_decay=0.05,
        warmup_steps=10,
        seed=0,
        mean=open_clip.OPENAI_DATASET_MEAN,
        std=open_clip.OPENAI_DATASET_STD,
        device=torch.device("cpu"),
    )
    return model, tokenizer, models.transform_for(model), curve


def test_captions_name_every_object_with_its_position():
    objects = sample_scenes(VOCAB, [3], 1, seed=0)
    text = tm.caption(objects)
    for row in objects.itertuples():
        assert f"a {row.color} {row.shape} " in text
    assert text.count(" and ") == 2


# make test-slow: the module fixture trains the toy CLIP (about a minute on 2 cores)
@pytest.mark.slow
def test_toy_model_learns_far_above_chance(trained):
    model, tokenizer, preprocess, curve = trained
    assert curve[-1]["loss"] < curve[0]["loss"]
    scenes = ts.evaluation_scenes(VOCAB, set(), 60, seed=123)
    predicted = ts.zero_shot_predictions(
        model, tokenizer, preprocess, VOCAB, scenes, Canvas(64, 64), torch.device("cpu")
    )
    acc = ts.zero_shot_table(scenes, predicted, VOCAB)
    acc = acc[acc["split"] == "seen"].set_index("attribute")
    assert acc.loc["color", "accuracy"] >= 3 * acc.loc["color", "chance"]
    assert acc.loc["triple", "accuracy"] > 2 * acc.loc["triple", "chance"]


# make test-slow: the module fixture trains the toy CLIP (about a minute on 2 cores)
@pytest.mark.slow
def test_gradcam_of_the_true_prompt_lands_on_the_object(trained):
    model, tokenizer, preprocess, _ = trained
    canvas = Canvas(64, 64)
    objects = add_boxes(sample_scenes(VOCAB, [1], 20, seed=7), canvas)
    shares, areas = [], []
    for _, obj in objects.groupby("image_id"):
        x = preprocess(render_image(obj, canvas, 2))[None]
        text = gc.text_embeddings(
            model, tokenizer, [f"a {obj.color.iloc[0]} {obj['shape'].iloc[0]}"]
        )
        raw = gc.gradcam_maps(model, x, text, layer=-2, module="mlp")[0]
        box = obj[["x0", "y0", "x1", "y1"]].to_numpy()
        shares.append(gc.box_mass_shares(gc.upsample(raw, (64, 64))[0].numpy(), box)[0])
        areas.append((box[0, 2] - box[0, 0]) * (box[0, 3] - box[0, 1]) / 64**2)
    # an all-zero map has no share (NaN); the rest put more than twice the area on the object
    assert np.isfinite(shares).sum() >= len(shares) // 2
    assert np.nanmean(shares) > 2 * np.mean(areas)
    assert all(0 <= s <= 1 for s in shares if np.isfinite(s))
