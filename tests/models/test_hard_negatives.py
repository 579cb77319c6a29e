"""Hard-negative captions for binding pressure in toy training."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from helpers import tiny_model

from vlmbinding.data.vocab import POSITION_WORDS, Vocabulary
from vlmbinding.models.toy import model as tm
from vlmbinding.models.toy import scenes as ts

WORD_POSITION = {w: p for p, w in POSITION_WORDS.items()}


def parse(caption: str) -> list[tuple[str, str, str]]:
    """(colour, shape, position) of each object phrase, in caption order."""
    out = []
    for phrase in caption.split(" and "):
        words = phrase.split(" ")
        assert words[0] == "a"
        out.append((words[1], words[2], WORD_POSITION[" ".join(words[3:])]))
    return out


def test_hard_negatives_swap_one_attribute_between_two_objects_of_the_same_scene():
    vocab = Vocabulary()
    objects, captions = ts.training_scenes(vocab, 300, 4, ts.stream_seeds(5), set(), [])
    negatives = tm.hard_negative_captions(captions, seed=7)
    assert negatives == tm.hard_negative_captions(captions, seed=7)
    kinds = Counter()
    for (_, scene), caption, negative in zip(
        objects.groupby("image_id", sort=False), captions, negatives
    ):
        truth = parse(caption)
        assert sorted(truth) == sorted(zip(scene["color"], scene["shape"], scene["position"]))
        if len(scene) == 1:
            assert negative is None
            continue
        assert negative != caption
        assert Counter(negative.split()) == Counter(caption.split())  # the same words
        swapped = parse(negative)
        changed = [k for k in range(len(truth)) if truth[k] != swapped[k]]
        assert len(changed) == 2  # two objects of the scene, the rest untouched
        i, j = changed
        diff = [a for a in range(3) if truth[i][a] != swapped[i][a]]
        assert len(diff) == 1  # one attribute ...
        a = diff[0]
        assert swapped[i][a] == truth[j][a] and swapped[j][a] == truth[i][a]  # ... exchanged
        assert set(swapped) != set(truth)  # a different scene: binding changed
        kinds[a] += 1
    assert set(kinds) == {0, 1, 2}  # colour, shape and position all get swapped


def test_hard_negatives_only_add_to_the_image_to_text_loss():
    torch.manual_seed(0)
    loaded = tiny_model(seed=1)
    model = loaded.model
    images = torch.randn(4, 3, 56, 56)
    captions = [
        "a red square in the middle and a blue circle at the top left",
        "a green triangle at the top right",
        "a pink hexagon at the bottom left and a black circle in the middle",
        "a blue circle at the top left and a red square in the middle",
    ]
    negatives = tm.hard_negative_captions(captions, seed=0)
    ids = torch.arange(4)
    tokens = loaded.tokenizer(captions)
    neg = (
        loaded.tokenizer([n or "" for n in negatives]),
        torch.arange(4, 8),
        torch.tensor([n is not None for n in negatives]),
    )
    with torch.no_grad():
        plain = tm.contrastive_loss(model, images, tokens, ids)
        harder = tm.contrastive_loss(model, images, tokens, ids, neg)
        none_valid = tm.contrastive_loss(
            model, images, tokens, ids, (neg[0], neg[1], torch.zeros(4, dtype=torch.bool))
        )
    assert harder > plain
    torch.testing.assert_close(none_valid, plain)


def test_training_with_hard_negatives_runs_and_is_seeded():
    vocab = Vocabulary()
    objects, captions = ts.training_scenes(vocab, 16, 2, ts.stream_seeds(0), set(), [])
    images = tm.render_scenes(objects, 56)

    def run():
        loaded = tiny_model(seed=2)
        curve = tm.train(
            loaded.model,
            loaded.tokenizer,
            images,
            captions,
            1,
            8,
            1e-3,
            0.0,
            1,
            0,
            (0.5, 0.5, 0.5),
            (0.5, 0.5, 0.5),
            torch.device("cpu"),
            hard_negatives=tm.hard_negative_captions(captions, 3),
        )
        return curve, loaded.model.visual.proj.detach().clone()

    (c1, p1), (c2, p2) = run(), run()
    assert c1[-1]["loss"] == c2[-1]["loss"] and torch.equal(p1, p2)
    assert np.isfinite(c1[-1]["loss"])


def test_binding_pressure_config_trains_the_same_model_with_and_without_hard_negatives():
    import yaml
    from conftest import REPO

    from vlmbinding.workflow.config import validate_config

    config = yaml.safe_load((REPO / "config" / "binding-pressure.yaml").read_text())
    validate_config(config, REPO / "config" / "schema.yaml")
    models = config["models"]
    plain = [m for m in models if not m.get("toy", {}).get("hard_negatives")]
    pressed = [m for m in models if m.get("toy", {}).get("hard_negatives")]
    assert len(plain) == 1 and len(pressed) == 1
    # the same seeds, at least 3, for both: replicates pooled per base model
    seeds = [m["replicates"]["seeds"] for m in (plain[0], pressed[0])]
    assert seeds[0] == seeds[1] and len(seeds[0]) >= 3
    strip = [{k: v for k, v in m.items() if k not in ("name", "toy")} for m in models]
    assert all(s == strip[0] for s in strip)  # one architecture, one kind of weights
