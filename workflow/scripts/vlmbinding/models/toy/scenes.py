"""Clean data for the toy CLIP: training scenes that never meet the analysis or test scenes.

The toy model's scene space is small (5 shapes x 6 colours x 5 positions = 150 one-object
scenes), so a training stream drawn like the analysis dataset covers it, and a zero-shot
test on one-object scenes would measure fit to seen scenes. Here, from one root seed
(`toy.seed`), separate named streams (numpy SeedSequence spawn) draw:

- the held-out colour-shape-position combinations (`toy.holdout`): never in any training
  scene, so the "unseen" zero-shot accuracy measures generalisation to new combinations;
- the "seen" evaluation scenes (`toy.eval_images` one-object scenes of combinations that
  are not held out: each combination occurs in training, but only inside other scenes);
- the training scenes, drawn by rejection: a scene with a held-out combination, or equal
  (as the set of its (shape, colour, position) objects) to an analysis or an evaluation
  scene, is redrawn.

`check_no_overlap` verifies the result independently and fails loudly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from vlmbinding.data.vocab import POSITION_WORDS, Vocabulary

log = logging.getLogger(__name__)

STREAMS = ("holdout", "eval", "train", "captions")
SPLITS = ("seen", "unseen")
ATTRIBUTES = ("color", "shape", "position")
Triple = tuple[str, str, str]  # (shape, color, position)


def stream_seeds(root: int) -> dict[str, int]:
    """One independent seed per named stream, all derived from `root` (SeedSequence.spawn)."""
    children = np.random.SeedSequence(root).spawn(len(STREAMS))
    return {name: int(child.generate_state(1)[0]) for name, child in zip(STREAMS, children)}


def all_triples(vocab: Vocabulary) -> list[Triple]:
    return [(s, c, p) for s in vocab.shapes for c in vocab.colors for p in vocab.positions]


def scene_keys(objects: pd.DataFrame) -> list[frozenset[Triple]]:
    """Each image's set of (shape, colour, position) objects, in order of first image_id."""
    scenes: dict[str, set[Triple]] = {}
    for image, *triple in zip(
        objects["image_id"].astype(str),
        objects["shape"].astype(str),
        objects["color"].astype(str),
        objects["position"].astype(str),
    ):
        scenes.setdefault(image, set()).add(tuple(triple))
    return [frozenset(v) for v in scenes.values()]


def held_out_triples(vocab: Vocabulary, holdout, seed: int) -> set[Triple]:
    """The combinations kept out of training: a seeded fraction, or a list of them.

    `holdout` is a fraction in [0, 1) of all colour-shape-position combinations (drawn
    with numpy default_rng(seed)), or a list of strings "color shape position" such as
    "red square TL".
    """
    triples = all_triples(vocab)
    if isinstance(holdout, (int, float)) and not isinstance(holdout, bool):
        if not 0 <= holdout < 1:
            raise ValueError(f"toy.holdout={holdout} must be a fraction in [0, 1) or a list")
        rng = np.random.default_rng(seed)
        picked = rng.choice(len(triples), size=round(holdout * len(triples)), replace=False)
        return {triples[i] for i in sorted(picked)}
    out = set()
    for item in holdout:
        words = str(item).split()
        if len(words) != 3:
            raise ValueError(f"toy.holdout entry {item!r} is not 'color shape position'")
        color, shape, position = words
        if (shape, color, position) not in set(triples):
            raise ValueError(
                f"toy.holdout entry {item!r}: not a combination of the dataset's "
                f"colours {vocab.colors}, shapes {vocab.shapes} and positions {vocab.positions}"
            )
        out.add((shape, color, position))
    return out


def _one_object_scenes(triples: Sequence[Triple], split: str | None = None) -> pd.DataFrame:
    rows = [
        {"image_id": f"eval_{i:05d}", "object": 0, "shape": s, "color": c, "position": p}
        for i, (s, c, p) in enumerate(triples)
    ]
    df = pd.DataFrame(rows, columns=["image_id", "object", "shape", "color", "position"])
    return df if split is None else df.assign(split=split)


def evaluation_scenes(
    vocab: Vocabulary, held_out: set[Triple], n_seen: int, seed: int
) -> pd.DataFrame:
    """One-object test scenes: every held-out combination (split 'unseen') and `n_seen`
    other combinations (split 'seen', at most all of them; drawn with default_rng(seed)).

    Rendering is deterministic, so each combination is one scene.
    """
    held = sorted(held_out)
    rest = [t for t in all_triples(vocab) if t not in held_out]
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(rest), size=min(n_seen, len(rest)), replace=False))
    df = pd.concat(
        [
            _one_object_scenes([rest[i] for i in picked], "seen"),
            _one_object_scenes(held, "unseen"),
        ],
        ignore_index=True,
    )
    df["image_id"] = [f"eval_{i:05d}" for i in range(len(df))]
    return df


def _draw_scene(vocab: Vocabulary, k: int, rng: np.random.Generator) -> list[Triple]:
    """k objects with distinct shapes, colours and positions (as dataset.sample_scenes)."""
    s = rng.permutation(len(vocab.shapes))[:k]
    c = rng.permutation(len(vocab.colors))[:k]
    p = rng.permutation(len(vocab.positions))[:k]
    return [(vocab.shapes[a], vocab.colors[b], vocab.positions[d]) for a, b, d in zip(s, c, p)]


def training_scenes(
    vocab: Vocabulary,
    n: int,
    max_objects: int,
    seeds: dict[str, int],
    held_out: set[Triple],
    forbidden: Iterable[frozenset[Triple]],
    max_tries: int = 200,
) -> tuple[pd.DataFrame, list[str]]:
    """`n` (rounded up to a multiple of max_objects) captioned scenes of 1..max_objects
    objects, none with a held-out combination and none equal to a `forbidden` scene.

    Scenes are drawn from the 'train' stream and rejected until acceptable; captions list
    the objects in an order drawn from the 'captions' stream. A count whose scenes are
    all forbidden (one-object scenes when the analysis and test sets take them all) gives
    its share to the larger counts, with a warning.
    """
    forbidden = set(forbidden)
    rng = np.random.default_rng(seeds["train"])
    counts = list(range(1, max_objects + 1))
    per_count = math.ceil(n / len(counts))
    allowed_single = [
        t for t in all_triples(vocab) if t not in held_out and frozenset([t]) not in forbidden
    ]
    scenes: list[list[Triple]] = []
    carry = 0
    for k in counts:
        want = per_count + carry
        carry = 0
        if k == 1 and not allowed_single:
            if max_objects == 1:
                raise ValueError(
                    "every one-object scene is held out or used by the analysis or test "
                    "set; raise toy.max_objects or lower toy.holdout / toy.eval_images"
                )
            log.warning("no one-object scene is free for training; drawing more of %d", k + 1)
            carry = want
            continue
        drawn = 0
        for _ in range(max_tries * want):
            if drawn == want:
                break
            scene = _draw_scene(vocab, k, rng)
            if any(t in held_out for t in scene) or frozenset(scene) in forbidden:
                continue
            scenes.append(scene)
            drawn += 1
        else:
            raise ValueError(f"could not draw {want} allowed training scenes of {k} objects")
    rows = [
        {"image_id": f"train_{i:06d}", "object": j, "shape": s, "color": c, "position": p}
        for i, scene in enumerate(scenes)
        for j, (s, c, p) in enumerate(scene)
    ]
    objects = pd.DataFrame(rows, columns=["image_id", "object", "shape", "color", "position"])
    order_rng = np.random.default_rng(seeds["captions"])
    captions = [_caption([scene[i] for i in order_rng.permutation(len(scene))]) for scene in scenes]
    return objects, captions


def _caption(scene: Sequence[Triple]) -> str:
    """toymodel.caption of the scene's objects in this order (without a DataFrame)."""
    return " and ".join(f"a {c} {s} {POSITION_WORDS[p]}" for s, c, p in scene)


def check_no_overlap(
    training: pd.DataFrame,
    analysis: pd.DataFrame,
    evaluation: pd.DataFrame,
    held_out: set[Triple],
) -> None:
    """Raise if a training scene equals an analysis or evaluation scene (as a set of
    (shape, colour, position) objects) or holds a held-out combination."""
    train_keys = set(scene_keys(training))
    for name, other in (("analysis dataset", analysis), ("zero-shot evaluation", evaluation)):
        shared = train_keys & set(scene_keys(other))
        if shared:
            example = sorted(next(iter(shared)))
            raise ValueError(
                f"{len(shared)} training scenes equal a scene of the {name}, e.g. {example}; "
                "the toy model's training stream must not overlap it"
            )
    used = set(zip(training["shape"], training["color"], training["position"]))
    leaked = used & held_out
    if leaked:
        raise ValueError(f"held-out combinations appear in training: {sorted(leaked)[:5]}")


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def zero_shot_table(
    truth: pd.DataFrame, predicted: pd.DataFrame, vocab: Vocabulary
) -> pd.DataFrame:
    """Accuracy of colour, shape, position and the triple, per split (seen / unseen).

    `truth` has split, color, shape, position (one row per one-object scene);
    `predicted` the predicted color, shape, position in the same order. Columns split,
    attribute, accuracy, ci_low, ci_high (95% Wilson; the scene is the unit), chance, n.
    """
    hits = {a: predicted[a].to_numpy() == truth[a].to_numpy() for a in ATTRIBUTES}
    hits["triple"] = hits["color"] & hits["shape"] & hits["position"]
    chance = {
        "color": 1 / len(vocab.colors),
        "shape": 1 / len(vocab.shapes),
        "position": 1 / len(vocab.positions),
    }
    chance["triple"] = chance["color"] * chance["shape"] * chance["position"]
    rows = []
    for split in SPLITS:
        mask = truth["split"].to_numpy() == split
        n = int(mask.sum())
        for attribute in (*ATTRIBUTES, "triple"):
            k = int(hits[attribute][mask].sum())
            low, high = _wilson(k, n)
            rows.append(
                {
                    "split": split,
                    "attribute": attribute,
                    "accuracy": k / n if n else float("nan"),
                    "ci_low": low,
                    "ci_high": high,
                    "chance": chance[attribute],
                    "n": n,
                }
            )
    return pd.DataFrame(rows)


def zero_shot_predictions(model, tokenizer, preprocess, vocab, scenes, canvas, device):
    """The best-matching one-object caption (color, shape, position) for each scene.

    `scenes` has one row per one-object scene (as `evaluation_scenes`); images are drawn
    on `canvas` and fed through the model's own preprocessing.
    """
    import torch
    import torch.nn.functional as F

    from vlmbinding.data.toyshapes import render_image
    from vlmbinding.models.toy.model import zero_shot_prompts

    prompts = zero_shot_prompts(vocab)
    rows = []
    with torch.no_grad():
        tokens = tokenizer(prompts["prompt"].tolist()).to(device)
        text = F.normalize(model.encode_text(tokens), dim=-1)
        for start in range(0, len(scenes), 64):
            batch = scenes.iloc[start : start + 64]
            images = torch.stack(
                [preprocess(render_image(batch.iloc[[i]], canvas)) for i in range(len(batch))]
            ).to(device)
            best = (F.normalize(model.encode_image(images), dim=-1) @ text.T).argmax(1)
            rows.append(prompts.iloc[best.cpu().numpy()][list(ATTRIBUTES)])
    if not rows:
        return pd.DataFrame(columns=list(ATTRIBUTES))
    return pd.concat(rows, ignore_index=True)


def clean_split(vocab: Vocabulary, toy: dict, analysis: pd.DataFrame):
    """Training scenes and captions, and the one-object test scenes, from `toy.seed`.

    `toy` is the `toy` config block (seed, holdout, eval_images, scenes, max_objects);
    `analysis` the analysis dataset's objects table, whose scenes training avoids.
    Returns (training objects, captions, evaluation scenes with a split column).
    """
    seeds = stream_seeds(toy["seed"])
    held = held_out_triples(vocab, toy["holdout"], seeds["holdout"])
    evaluation = evaluation_scenes(vocab, held, toy["eval_images"], seeds["eval"])
    forbidden = set(scene_keys(analysis)) | set(scene_keys(evaluation))
    objects, captions = training_scenes(
        vocab, toy["scenes"], toy["max_objects"], seeds, held, forbidden
    )
    check_no_overlap(objects, analysis, evaluation, held)
    log.info(
        "%d training scenes; %d combinations held out of training; test scenes: %d seen, "
        "%d unseen; no training scene equals an analysis or test scene",
        objects["image_id"].nunique(),
        len(held),
        int(evaluation["split"].eq("seen").sum()),
        int(evaluation["split"].eq("unseen").sum()),
    )
    return objects, captions, evaluation
