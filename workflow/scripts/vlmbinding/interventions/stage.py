"""The intervention stage: ablate each pair's neurons, re-embed, recompute D, M and binding.

For every analysed pair (f1, f2): its own neurons (`interventions.pair_neurons`)
and `control_draws` random neuron sets of the same layers are ablated, each condition in
one forward pass per batch, all layers at once. The pair's own images (its two classes,
METHOD.md section 5, and the images of the swapped-caption trials that involve it) are
re-embedded; D and M (full and PCA) and the binding accuracy are recomputed with the
study's own functions and compared with the stored, unablated embeddings. Specificity:
under the pair's own ablation every image is re-embedded and the full-space D and M of the
pairs that share no feature with it are measured too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from vlmbinding.analysis.separability import centroid_separability, pair_classes, pca_project
from vlmbinding.interventions import ablation as ab
from vlmbinding.interventions import selection as iv

log = logging.getLogger(__name__)


@dataclass
class Trials:
    """Swapped-caption trials as arrays: image row, unit caption embeddings, features."""

    image_row: np.ndarray  # [trial] row into the images
    true_emb: np.ndarray  # [trial, dim], unit length
    swapped_emb: np.ndarray  # [trial, dim], unit length
    pairs: list[set]  # per trial: the feature pairs it counts for ({ci, cj}, {si, sj})

    def involving(self, f1: str, f2: str) -> np.ndarray:
        key = {f1, f2}
        return np.array([key in p for p in self.pairs], dtype=bool)


def trials_from_table(trials: pd.DataFrame, image_ids, caption_emb: dict[str, np.ndarray]):
    """`Trials` of a `binding.swapped_caption_trials` table; caption_emb maps caption -> vector."""
    row = {str(i): r for r, i in enumerate(image_ids)}

    def unit(captions):
        x = np.stack([caption_emb[c] for c in captions]).astype(np.float64)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return Trials(
        image_row=np.array([row[str(i)] for i in trials["image_id"]], dtype=np.int64),
        true_emb=unit(trials["true_caption"]),
        swapped_emb=unit(trials["swapped_caption"]),
        pairs=[
            [{a, b} for a, b in ((r.color_i, r.color_j), (r.shape_i, r.shape_j))]
            for r in trials.itertuples(index=False)
        ],
    )


def binding_accuracy(emb: np.ndarray, trials: Trials, sel: np.ndarray) -> float:
    """Fraction of the selected trials whose image is nearer its true caption (cosine)."""
    if not sel.any():
        return float("nan")
    img = emb[trials.image_row[sel]].astype(np.float64)
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    true = (img * trials.true_emb[sel]).sum(axis=1)
    swapped = (img * trials.swapped_emb[sel]).sum(axis=1)
    return float(np.mean(true > swapped))


def pair_measures(emb, m1, m2, trials: Trials, sel, pca_variance: float) -> dict[str, float]:
    """D, M (full and PCA) of one pair's classes and its binding accuracy (METHOD.md 5)."""
    out = dict.fromkeys(iv.MEASURES, float("nan"))
    if m1.any() and m2.any():
        e1, e2 = emb[m1], emb[m2]
        out["D"], out["M"] = centroid_separability(e1, e2)
        z = pca_project(np.concatenate([e1, e2]), pca_variance)
        out["D_pca"], out["M_pca"] = centroid_separability(z[: len(e1)], z[len(e1) :])
    out["binding"] = binding_accuracy(emb, trials, sel)
    return out


def full_space(emb, classes) -> np.ndarray:
    """[pair, 2]: full-space D and M of every pair's classes."""
    return np.array(
        [
            centroid_separability(emb[m1], emb[m2]) if m1.any() and m2.any() else (np.nan, np.nan)
            for m1, m2 in classes
        ]
    )


@dataclass
class Settings:
    neurons_per_pair: int = 10
    ratio_threshold: float | None = None
    control_draws: int = 5
    seed: int = 0
    batch_size: int = 256
    pca_variance: float = 0.9
    control_match: str = "layer_counts"


def condition_key(neurons: dict[int, np.ndarray]) -> tuple:
    return tuple(
        (int(layer), tuple(int(u) for u in units)) for layer, units in sorted(neurons.items())
    )


def run_interventions(
    model,
    ablator: ab.Ablator,
    cache: dict[int, torch.Tensor],
    stored: np.ndarray,
    presence: np.ndarray,
    features: list[str],
    pairs: pd.DataFrame,
    feature_neurons: pd.DataFrame,
    trials: Trials,
    width: int,
    settings: Settings,
) -> tuple[pd.DataFrame, dict]:
    """(effects table, example) for the `pairs` (f1, f2, S), one row per pair.

    `cache` holds the unablated residual stream of the images (rows as in `stored`,
    `presence` and the trials). Every condition (a pair's own neurons, a control draw) is
    run once over all images and its embeddings kept for reuse: control draws are shared
    between pairs with the same layer profile (`interventions.pick_controls`), own sets
    repeat when pairs share their top neurons. Kept: every control draw's embeddings (their
    number is bounded by the profiles times the draws, not by the pairs) and the last few
    own sets. The example is the before/after embedding of the two classes of the pair
    whose own ablation moved M most beyond its controls.
    """
    col = {f: j for j, f in enumerate(features)}
    all_pairs = [(a, b) for i, a in enumerate(features) for b in features[i + 1 :]]
    classes = [pair_classes(presence, col[a], col[b]) for a, b in all_pairs]
    base_full = full_space(stored, classes)
    rng = np.random.default_rng(settings.seed)
    every = np.arange(len(stored))
    pools: dict[tuple, list] = {}
    kept: dict[tuple, np.ndarray] = {}  # control draws: kept for the whole run
    recent: dict[tuple, np.ndarray] = {}  # own sets: the last few
    rows, example, best = [], {}, -np.inf
    t0, passes = time.time(), 0
    for k, pair in enumerate(pairs.itertuples(index=False)):
        f1, f2 = pair.f1, pair.f2
        m1, m2 = pair_classes(presence, col[f1], col[f2])
        sel = trials.involving(f1, f2)
        with threadpool_limits(limits=1, user_api="blas"):
            before = pair_measures(stored, m1, m2, trials, sel, settings.pca_variance)
        own = iv.pair_neurons(
            feature_neurons, features, f1, f2, settings.neurons_per_pair, settings.ratio_threshold
        )
        row = {
            "f1": f1,
            "f2": f2,
            "S": float(pair.S),
            "n_ablated": len(own),
            "layers": ",".join(str(x) for x in sorted(set(own["layer"]))),
            "control_draws": settings.control_draws,
            "n1": int(m1.sum()),
            "n2": int(m2.sum()),
            "n_trials": int(sel.sum()),
            **{f"{m}_before": v for m, v in before.items()},
        }
        if len(own) == 0:
            log.warning("pair (%s, %s): no selected neuron carries it; nothing ablated", f1, f2)
            for m in iv.MEASURES:
                row.update(iv.effect_columns(m, np.nan, []))
            rows.append(row)
            continue
        own_cond = iv.by_layer(own)
        pool = pools.setdefault(iv.control_profile(own_cond, settings.control_match), [])
        controls = iv.pick_controls(
            pool, own_cond, settings.control_draws, width, rng, settings.control_match
        )
        conditions = [own_cond, *controls]
        keys = [condition_key(c) for c in conditions]
        todo = [i for i, key in enumerate(keys) if key not in kept and key not in recent]
        todo = list({keys[i]: i for i in todo}.values())
        embedded = ab.embed_under_ablation(
            model,
            ablator,
            cache,
            [conditions[i] for i in todo],
            [every] * len(todo),
            settings.batch_size,
        )
        passes += len(todo) * len(every)
        for i, emb in zip(todo, embedded):
            (recent if i == 0 else kept)[keys[i]] = emb
        after = [recent.get(key, kept.get(key)) for key in keys]
        while len(recent) > 8:
            recent.pop(next(iter(recent)))
        # Small SVDs: BLAS threads only wait on each other (45x slower on a busy machine).
        with threadpool_limits(limits=1, user_api="blas"):
            measured = [pair_measures(e, m1, m2, trials, sel, settings.pca_variance) for e in after]
            others = np.array([not ({a, b} & {f1, f2}) for a, b in all_pairs])
            shift = full_space(after[0], [c for c, o in zip(classes, others) if o])
        shift = shift - base_full[others]
        for m in iv.MEASURES:
            d = [x[m] - before[m] for x in measured]
            row.update(iv.effect_columns(m, d[0], d[1:]))
        row["dD_others_mean"], row["dM_others_mean"] = np.nanmean(shift, axis=0)
        row["n_others"] = int(others.sum())
        rows.append(row)
        excess = abs(row["dM"]) - row["dM_control_abs"]
        if np.isfinite(excess) and excess > best:
            best = excess
            example = {"f1": f1, "f2": f2, "before": stored[m1 | m2], "after": after[0][m1 | m2]}
            example["labels"] = np.where(m1[m1 | m2], 1, 2)
        log.info(
            f"pair {k + 1}/{len(pairs)} ({f1}, {f2}): {len(own)} neurons in layers "
            f"{row['layers']}, dM {row['dM']:+.3f} (controls {row['dM_control_mean']:+.3f} "
            f"± {row['dM_control_sd']:.3f}); {len(todo)} new conditions, "
            f"{passes} image passes, {time.time() - t0:.1f} s"
        )
    effects = pd.DataFrame(rows)
    effects["z"], effects["p"] = effects["dM_z"], effects["dM_p"]
    log.info(
        f"{sum(len(p) for p in pools.values())} control draws over {len(pools)} layer profiles"
    )
    return effects, example


def run_stage(
    entry: dict,
    weights: str | None,
    paths: dict[str, str],
    settings: dict,
    vocabulary: dict,
    template: str,
    statistics: dict,
    pca_variance: float,
    device: str = "auto",
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The whole stage for one model: (effects, summary, example).

    `paths` names the store, images, objects, superposition and feature_neurons files;
    `settings` is the config's `interventions:` block, `statistics` holds bootstrap,
    permutations and seed. Images go through the preprocessing the store was made with,
    and the unablated pass must reproduce the store's embeddings (else the model or the
    preprocessing differ from the store's, and every difference would be meaningless).
    """
    from vlmbinding.analysis.binding import swapped_caption_trials, trial_captions
    from vlmbinding.analysis.gradcam import text_embeddings
    from vlmbinding.data.reading import dataset_presence, open_checked_store
    from vlmbinding.data.vocab import Vocabulary
    from vlmbinding.extraction.recording import choose_preprocess, load_images
    from vlmbinding.models.loading import load_entry

    vocab = Vocabulary.from_config(vocabulary)
    features = list(vocab.features)
    image_ids, presence = dataset_presence(paths["images"], paths["objects"], vocab)
    root = open_checked_store(paths["store"], image_ids)
    stored = root["embeddings"][:].astype(np.float32)
    n_layers, width, tokens = root.attrs["layers"], root.attrs["width"], root.attrs["tokens"]
    means = ab.token_means(root) if settings["ablation"] == "mean" else None
    values = ab.ablation_values(settings["ablation"], n_layers, width, means, tokens)

    loaded = load_entry(entry, weights, device)
    model = loaded.model.eval()
    from vlmbinding.models.towers import tower_family

    if (family := tower_family(model)) != "open_clip-vit":
        raise ValueError(
            f"models entry {entry.get('name')!r}: interventions re-run open_clip's ViT blocks "
            f"from a cached residual stream; a {family} tower is not supported by them yet "
            "(the other stages are)"
        )
    dev = next(model.parameters()).device
    table = pd.read_parquet(paths["images"]).set_index("image_id")
    images = load_images(
        table.loc[image_ids, "path"].tolist(), choose_preprocess(loaded, root.attrs["preprocess"])
    )
    per_layer = len(images) * tokens * width * 4
    layers = ab.cached_layers(n_layers, per_layer, settings["cache_gib"] * 2**30)
    log.info(f"caching the residual stream entering blocks {layers} ({len(images)} images)")
    cache, emb = ab.residual_cache(model.visual, images, layers, settings["batch_size"], dev)
    emb = emb.float().cpu().numpy()
    gap = np.abs(emb - stored).max() / max(1e-12, np.abs(stored).max())
    log.info(f"unablated pass vs stored embeddings: max relative difference {gap:.2e}")
    if gap > 1e-2:
        raise ValueError(
            f"{paths['store']}: the model's unablated embeddings differ from the stored ones "
            f"(max relative difference {gap:.2e}); rebuild the store with this model"
        )

    objects = pd.read_parquet(paths["objects"])
    trial_table = swapped_caption_trials(objects, template)
    captions = trial_captions(trial_table)
    with torch.no_grad():
        cap = torch.cat(
            [
                text_embeddings(model, loaded.tokenizer, captions[s : s + 256]).float().cpu()
                for s in range(0, len(captions), 256)
            ]
        ).numpy()
    trials = trials_from_table(trial_table, image_ids, dict(zip(captions, cap)))

    pairs = iv.choose_pairs(
        pd.read_parquet(paths["superposition"]), settings["pairs"], settings["seed"]
    )
    run = Settings(
        neurons_per_pair=settings["neurons_per_pair"],
        ratio_threshold=settings["ratio_threshold"],
        control_draws=settings["control_draws"],
        seed=settings["seed"],
        batch_size=settings["batch_size"],
        pca_variance=pca_variance,
        control_match=settings.get("control_match", "layer_counts"),
    )
    t0 = time.time()
    with ab.Ablator(model, values) as ablator:
        effects, example = run_interventions(
            model,
            ablator,
            cache,
            stored,
            presence,
            features,
            pairs,
            pd.read_parquet(paths["feature_neurons"]),
            trials,
            width,
            run,
        )
    log.info(f"{len(pairs)} pairs in {time.time() - t0:.1f} s")
    effects["ablation"] = settings["ablation"]
    summary = iv.summarise_effects(
        effects, features, statistics["bootstrap"], statistics["permutations"], statistics["seed"]
    )
    return effects, summary, example
