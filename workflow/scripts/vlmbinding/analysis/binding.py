"""Attribute binding: Grad-CAM prompts and the swapped-caption test.

METHOD.md section 7 explains maps for prompts such as "green square" on an image with a green
circle and a red square: a binding failure shows as attention on both objects. The prompts
here are every object's true colour-shape phrase and every colour of one object paired with
the shape of another (the swapped bindings). The swapped-caption test (beyond the study)
asks whether CLIP scores an image's true caption above the same caption with the colours
of two objects exchanged; its accuracy per feature pair can be set against the
superposition scores of section 4.

Objects of an image are taken in the order of the objects table's `object` column, and
"object index" below means the position in that order (0..k-1, the same as `object` for
the workflow's own tables). Torch-free: similarities come from the caller.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "a {color} {shape}"
CAPTION_JOIN = " and "
PROMPT_COLUMNS = ["prompt", "kind", "color", "shape", "color_object", "shape_object"]
TRIAL_COLUMNS = [
    "image_id",
    "num_objects",
    "obj_i",
    "obj_j",
    "color_i",
    "color_j",
    "shape_i",
    "shape_j",
    "true_caption",
    "swapped_caption",
]


def check_template(template: str) -> str:
    """`template` if it names exactly the fields {color} and {shape}, else ValueError.

    A template without {color} would make every swapped caption equal the true one.
    """
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if fields != {"color", "shape"}:
        raise ValueError(
            f"binding template {template!r} must use the fields {{color}} and {{shape}} and "
            f"no others (it uses {sorted(fields)})"
        )
    return template


def object_phrase(color: str, shape: str, template: str = DEFAULT_TEMPLATE) -> str:
    """One object named by the template, e.g. "a green square"."""
    return template.format(color=color, shape=shape)


def ordered_objects(objects_of_one_image: pd.DataFrame) -> pd.DataFrame:
    """The image's objects in `object` order (table order when there is no such column)."""
    if "object" in objects_of_one_image.columns:
        return objects_of_one_image.sort_values("object", kind="stable")
    return objects_of_one_image


def binding_prompts(
    objects_of_one_image: pd.DataFrame, template: str = DEFAULT_TEMPLATE
) -> pd.DataFrame:
    """The Grad-CAM prompts of one image: its true bindings, then the swapped ones.

    One 'true' prompt per object (its colour with its shape), in object order; then for
    every ordered pair of distinct objects (i, j), in order of i then j, a 'swapped' prompt
    with the colour of i and the shape of j. Duplicated prompts are kept at their first
    occurrence. color_object and shape_object are the indices of the objects that carry the
    prompt's colour and shape (equal for true prompts).
    """
    check_template(template)
    objs = ordered_objects(objects_of_one_image)
    colors, shapes = list(objs["color"]), list(objs["shape"])
    k = len(objs)
    pairs = [(i, i, "true") for i in range(k)]
    pairs += [(i, j, "swapped") for i in range(k) for j in range(k) if i != j]
    rows = [
        {
            "prompt": object_phrase(colors[i], shapes[j], template),
            "kind": kind,
            "color": colors[i],
            "shape": shapes[j],
            "color_object": i,
            "shape_object": j,
        }
        for i, j, kind in pairs
    ]
    prompts = pd.DataFrame(rows, columns=PROMPT_COLUMNS)
    return prompts.drop_duplicates("prompt", keep="first").reset_index(drop=True)


def swapped_caption_trials(objects: pd.DataFrame, template: str = DEFAULT_TEMPLATE) -> pd.DataFrame:
    """One trial per image with >= 2 objects and per unordered pair of its objects (i < j).

    The true caption names all objects in object order, joined with " and "; the swapped
    caption is the same with the colours of objects i and j exchanged. Images keep their
    order of first appearance in `objects`.
    """
    check_template(template)
    rows = []
    for image_id, group in objects.groupby("image_id", sort=False):
        objs = ordered_objects(group)
        colors, shapes = list(objs["color"]), list(objs["shape"])
        k = len(objs)
        true_caption = CAPTION_JOIN.join(
            object_phrase(c, s, template) for c, s in zip(colors, shapes)
        )
        for i in range(k):
            for j in range(i + 1, k):
                swapped = list(colors)
                swapped[i], swapped[j] = colors[j], colors[i]
                swapped_caption = CAPTION_JOIN.join(
                    object_phrase(c, s, template) for c, s in zip(swapped, shapes)
                )
                if swapped_caption == true_caption:
                    raise ValueError(
                        f"image {image_id}: exchanging the colours of objects {i} and {j} "
                        f"leaves the caption {true_caption!r} unchanged (repeated colours?)"
                    )
                rows.append(
                    {
                        "image_id": image_id,
                        "num_objects": k,
                        "obj_i": i,
                        "obj_j": j,
                        "color_i": colors[i],
                        "color_j": colors[j],
                        "shape_i": shapes[i],
                        "shape_j": shapes[j],
                        "true_caption": true_caption,
                        "swapped_caption": swapped_caption,
                    }
                )
    trials = pd.DataFrame(rows, columns=TRIAL_COLUMNS)
    log.info(f"{len(trials)} swapped-caption trials from {trials['image_id'].nunique()} images")
    return trials


def trial_captions(trials: pd.DataFrame) -> list[str]:
    """Every distinct caption of the trials (true and swapped), in order of appearance."""
    return list(dict.fromkeys(np.ravel(trials[["true_caption", "swapped_caption"]].to_numpy())))


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def trial_similarities(
    trials: pd.DataFrame,
    image_ids: Sequence[str],
    image_emb: np.ndarray,
    captions: Sequence[str],
    caption_emb: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of each trial's image with its true and its swapped caption.

    `image_emb` [n_images, D] has rows in `image_ids` order, `caption_emb` [n_captions, D]
    rows in `captions` order (for example `trial_captions(trials)`); neither needs to be
    normalised. Returns (sim_true, sim_swapped), each [n_trials].
    """
    img_row = {str(i): r for r, i in enumerate(image_ids)}
    cap_row = {c: r for r, c in enumerate(captions)}
    missing_images = sorted(set(trials["image_id"].astype(str)) - set(img_row))
    missing_captions = [c for c in trial_captions(trials) if c not in cap_row]
    if missing_images or missing_captions:
        raise KeyError(
            f"no embedding for image(s) {missing_images[:5]} / caption(s) {missing_captions[:5]}"
        )
    img = unit_rows(image_emb)[[img_row[str(i)] for i in trials["image_id"]]]
    cap = unit_rows(caption_emb)
    true = cap[[cap_row[c] for c in trials["true_caption"]]]
    swapped = cap[[cap_row[c] for c in trials["swapped_caption"]]]
    return (img * true).sum(axis=1), (img * swapped).sum(axis=1)


def score_trials(
    trials: pd.DataFrame, sim_true: np.ndarray, sim_swapped: np.ndarray
) -> pd.DataFrame:
    """The trials with sim_true, sim_swapped and correct (sim_true > sim_swapped; a tie fails)."""
    sim_true, sim_swapped = np.asarray(sim_true, float), np.asarray(sim_swapped, float)
    if not len(trials) == len(sim_true) == len(sim_swapped):
        raise ValueError(
            f"{len(trials)} trials but {len(sim_true)} true and {len(sim_swapped)} "
            "swapped similarities"
        )
    return trials.assign(sim_true=sim_true, sim_swapped=sim_swapped, correct=sim_true > sim_swapped)


def accuracy_table(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return (
        df.groupby(by, sort=False)["correct"]
        .agg(n="size", accuracy="mean")
        .reset_index()
        .astype({"n": "int64", "accuracy": "float64"})
    )


def binding_accuracy(scored: pd.DataFrame, features: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Accuracy of the swapped-caption test: 'overall', 'per_count' and 'per_pair'.

    overall: n, accuracy. per_count: num_objects, n, accuracy. per_pair: f1, f2, n,
    accuracy, where each trial counts once for its colour pair (color_i, color_j) and once
    for its shape pair (shape_i, shape_j); f1 is whichever of the two comes first in
    `features`, so the table joins with a superposition table keyed on f1, f2 in feature
    order (METHOD.md section 4). Rows are in feature order.
    """
    order = {f: r for r, f in enumerate(features)}
    correct = scored["correct"].astype(bool)
    overall = pd.DataFrame(
        {"n": [len(scored)], "accuracy": [correct.mean() if len(scored) else np.nan]}
    )
    per_count = accuracy_table(scored.assign(correct=correct), ["num_objects"])
    per_count = per_count.sort_values("num_objects").reset_index(drop=True)

    pairs = pd.concat(
        [
            pd.DataFrame({"a": scored[f"{kind}_i"], "b": scored[f"{kind}_j"], "correct": correct})
            for kind in ("color", "shape")
        ],
        ignore_index=True,
    )
    unknown = sorted((set(pairs["a"]) | set(pairs["b"])) - set(order))
    if unknown:
        raise ValueError(f"feature(s) {unknown} of the trials are not in the feature list")
    a_first = pairs["a"].map(order) < pairs["b"].map(order)
    pairs["f1"] = pairs["a"].where(a_first, pairs["b"])
    pairs["f2"] = pairs["b"].where(a_first, pairs["a"])
    per_pair = accuracy_table(pairs, ["f1", "f2"])
    per_pair = (
        per_pair.assign(_r1=per_pair["f1"].map(order), _r2=per_pair["f2"].map(order))
        .sort_values(["_r1", "_r2"])
        .drop(columns=["_r1", "_r2"])
        .reset_index(drop=True)
    )
    return {"overall": overall, "per_count": per_count, "per_pair": per_pair}


def swapped_caption_test(
    trials: pd.DataFrame,
    image_ids: Sequence[str],
    image_emb: np.ndarray,
    encode_texts: Callable[[list[str]], np.ndarray],
    features: Sequence[str],
    batch_size: int = 256,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Score the trials with given image embeddings; only the captions are encoded here.

    `image_emb` [n, D] (rows in `image_ids` order) can be the activation store's
    `embeddings`, which the extraction already computed with the store's preprocessing,
    so the images are not encoded a second time (at paper scale this halves the model work
    of a run). `encode_texts` maps a list of captions to [len, D] embeddings.
    Returns the scored trials and `binding_accuracy`'s tables.
    """
    captions = trial_captions(trials)
    caption_emb = np.concatenate(
        [
            np.asarray(encode_texts(captions[s : s + batch_size]), dtype=np.float64)
            for s in range(0, len(captions), batch_size)
        ]
        or [np.empty((0, np.shape(image_emb)[1]))]
    )
    sim_true, sim_swapped = trial_similarities(trials, image_ids, image_emb, captions, caption_emb)
    scored = score_trials(trials, sim_true, sim_swapped)
    return scored, binding_accuracy(scored, features)
