"""The offline toy CLIP: a small open_clip model trained on captioned toy-shapes scenes.

It lets the whole study run without downloading weights. Training scenes are drawn afresh
from the dataset's vocabulary (never the analysis images) and captioned like
"a red square at the top left and a green circle in the middle"; the model is then
evaluated zero-shot on held-out single-object images against every colour-shape-position
caption.
"""

from __future__ import annotations

import itertools
import logging
import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from vlmbinding.data.toyshapes import Canvas, render_image
from vlmbinding.data.vocab import POSITION_WORDS, Vocabulary

log = logging.getLogger(__name__)


def caption(objects: pd.DataFrame, order=None) -> str:
    """'a red square at the top left and a green circle in the middle' (objects in `order`)."""
    rows = list(objects.itertuples(index=False))
    if order is not None:
        rows = [rows[i] for i in order]
    return " and ".join(f"a {r.color} {r.shape} {POSITION_WORDS[r.position]}" for r in rows)


def render_scenes(objects: pd.DataFrame, size: int, supersample: int = 2) -> np.ndarray:
    """uint8 [image, 3, size, size] of every image of a scenes table, in order."""
    canvas = Canvas(size, size)
    groups = objects.groupby("image_id", sort=False)
    out = np.empty((groups.ngroups, 3, size, size), dtype=np.uint8)
    for i, (_, group) in enumerate(groups):
        out[i] = np.asarray(render_image(group, canvas, supersample)).transpose(2, 0, 1)
    return out


SWAPPABLE = ("color", "shape", "position")


def hard_negative_caption(text: str, rng: np.random.Generator) -> str | None:
    """The same scene's caption with one attribute swapped between two of its objects.

    NegCLIP-style hard negative: `text` is a caption of `caption`'s form
    ("a red square at the top left and a green circle in the middle"); two objects and
    one attribute (colour, shape or position, uniformly) are drawn and that attribute is
    exchanged, so the negative uses exactly the same words and differs only in binding.
    None for a one-object caption (nothing to swap).
    """
    phrases = [p.split(" ") for p in text.split(" and ")]
    if len(phrases) < 2:
        return None
    i, j = rng.choice(len(phrases), size=2, replace=False)
    kind = SWAPPABLE[rng.integers(len(SWAPPABLE))]
    # words: "a", colour, shape, then the position's words
    part = {"color": slice(1, 2), "shape": slice(2, 3), "position": slice(3, None)}[kind]
    a, b = list(phrases[i]), list(phrases[j])
    a[part], b[part] = phrases[j][part], phrases[i][part]
    phrases[i], phrases[j] = a, b
    return " and ".join(" ".join(p) for p in phrases)


def hard_negative_captions(captions: list[str], seed: int) -> list[str | None]:
    """One hard negative per caption (None for one-object scenes), seeded."""
    rng = np.random.default_rng(seed)
    return [hard_negative_caption(c, rng) for c in captions]


def normalise_images(images_u8: torch.Tensor, mean, std) -> torch.Tensor:
    x = images_u8.float().div_(255)
    mean = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def contrastive_loss(model, images, tokens, caption_ids, negatives=None) -> torch.Tensor:
    """Symmetric InfoNCE over the batch (CLIP's objective).

    Single-object scenes repeat captions within a batch; pairs with identical captions
    share the target mass instead of being pushed apart as negatives. `negatives`, if
    given, is (tokens, ids, valid) of one hard-negative caption per scene: they are extra
    text columns of the image-to-text loss only (NegCLIP), never a target; a column is
    left out where it is missing (`valid` false) or equals the row's own caption.
    """
    img, txt, scale = model(images, tokens)[:3]
    logits = scale * img @ txt.T
    same = (caption_ids[:, None] == caption_ids[None, :]).float()
    target = same / same.sum(1, keepdim=True)
    text_loss = F.cross_entropy(logits.T, target)
    if negatives is not None:
        neg_tokens, neg_ids, valid = negatives
        neg = F.normalize(model.encode_text(neg_tokens), dim=-1)
        neg_logits = scale * img @ neg.T
        usable = valid[None, :] & (neg_ids[None, :] != caption_ids[:, None])
        # A finite stand-in for -inf: a soft target's 0 * log(0) would otherwise be NaN.
        neg_logits = neg_logits.masked_fill(~usable, -1e9)
        logits = torch.cat([logits, neg_logits], dim=1)
        target = torch.cat([target, torch.zeros_like(target)], dim=1)
    return (F.cross_entropy(logits, target) + text_loss) / 2


def train(
    model,
    tokenizer,
    images_u8: np.ndarray,
    captions: list[str],
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    warmup_steps: int,
    seed: int,
    mean,
    std,
    device: torch.device,
    hard_negatives: list[str | None] | None = None,
) -> list[dict]:
    """Train `model` in place; return the loss curve (one row per logged step).

    `hard_negatives` (one caption or None per scene, see `hard_negative_captions`) adds
    each batch's hard negatives to the image-to-text loss.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    tokens_all = tokenizer(captions)
    caption_ids = torch.from_numpy(pd.factorize(pd.Series(captions))[0])
    if hard_negatives is not None:
        neg_text = [n or "" for n in hard_negatives]
        codes = pd.factorize(pd.Series(list(captions) + neg_text))[0]
        caption_ids = torch.from_numpy(codes[: len(captions)])
        neg_all = (
            tokenizer(neg_text),
            torch.from_numpy(codes[len(captions) :]),
            torch.tensor([n is not None for n in hard_negatives]),
        )
    images_all = torch.from_numpy(images_u8)
    n = len(images_all)
    steps_per_epoch = n // batch_size
    total = max(1, steps_per_epoch * epochs)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "logit_scale" in name or "embedding" in name else decay).append(
            p
        )
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=lr,
        betas=(0.9, 0.98),
        eps=1e-6,
        fused=True,  # on CPU ~20x faster than the default for the large token embedding
    )

    def lr_at(step):
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total - warmup_steps)
        return lr * 0.5 * (1 + math.cos(math.pi * progress))

    model.train().to(device)
    curve, step, start = [], 0, time.time()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for b in range(steps_per_epoch):
            idx = order[b * batch_size : (b + 1) * batch_size]
            images = normalise_images(images_all[idx].to(device), mean, std)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            negatives = None
            if hard_negatives is not None:
                negatives = tuple(t[idx].to(device) for t in neg_all)
            loss = contrastive_loss(
                model, images, tokens_all[idx].to(device), caption_ids[idx].to(device), negatives
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            step += 1
            if step % 20 == 0 or step == total:
                elapsed = time.time() - start
                curve.append(
                    {"step": step, "epoch": epoch, "loss": loss.item(), "seconds": elapsed}
                )
                log.info(
                    f"step {step}/{total} epoch {epoch} loss {loss.item():.3f} "
                    f"({step * batch_size / elapsed:.0f} images/s)"
                )
    model.eval()
    return curve


def zero_shot_prompts(vocab: Vocabulary) -> pd.DataFrame:
    """Every colour-shape-position caption of one object."""
    rows = [
        {"color": c, "shape": s, "position": p}
        for c, s, p in itertools.product(vocab.colors, vocab.shapes, vocab.positions)
    ]
    df = pd.DataFrame(rows)
    df["prompt"] = [caption(df.iloc[[i]]) for i in range(len(df))]
    return df
