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

from vlmbinding.analysis.separability import pair_classes
from vlmbinding.interventions import ablation as ab
from vlmbinding.interventions import controls as ctl
from vlmbinding.interventions import full_pass as fp
from vlmbinding.interventions import inference as inf
from vlmbinding.interventions import selection as iv
from vlmbinding.interventions import shared as sh
from vlmbinding.interventions.measures import (  # noqa: F401 - moved there, kept importable here
    Trials,
    binding_accuracy,
    full_space,
    no_trials,
    pair_measures,
    trials_from_table,
)
from vlmbinding.interventions.selectors import (  # noqa: F401 - moved there, kept importable
    neuron_selection,
    pair_ratio_selector,
    shared_selector,
)

log = logging.getLogger(__name__)


@dataclass
class Settings:
    select: str = "shared"
    neurons_per_pair: int = 10
    ratio_threshold: float | None = None
    control_draws: int = 5
    seed: int = 0
    batch_size: int = 256
    pca_variance: float = 0.9


def condition_key(neurons: dict[int, np.ndarray]) -> tuple:
    return tuple(
        (int(layer), tuple(int(u) for u in units)) for layer, units in sorted(neurons.items())
    )


def n_of(neurons: dict[int, np.ndarray]) -> int:
    return sum(len(u) for u in neurons.values())


def layers_of(neurons: dict[int, np.ndarray]) -> str:
    return ",".join(str(layer) for layer, u in sorted(neurons.items()) if len(u))


def run_interventions(
    model,
    ablator: ab.Ablator,
    cache: dict[int, torch.Tensor],
    stored: np.ndarray,
    presence: np.ndarray,
    features: list[str],
    pairs: pd.DataFrame,
    select,
    trials: Trials,
    controls: ctl.StratumIndex,
    settings: Settings,
    embed=ab.embed_under_ablation,
) -> tuple[pd.DataFrame, dict]:
    """(effects table, example) for the `pairs` (f1, f2, S), one row per pair.

    `select(f1, f2)` gives the pair's neuron sets: "own" (ablated and compared), and with
    `select: shared` "f1_only" and "f2_only" (equally many single-feature neurons of the
    same layers). A pair with no own neuron is recorded with n_neurons 0 and skipped (a
    log line, no effect values). `cache` holds the unablated residual stream of the images
    (rows as in `stored`, `presence` and the trials). The own set runs over all images
    (the other pairs' changes need them) and its control draws too, since draws are shared
    between pairs of one stratum profile (`controls.pick_controls`) and kept for the run;
    the single-feature sets run over the pair's own images only (its two classes and its
    binding trials). The example is the before/after embedding of the two classes of the
    pair whose own ablation moved M most beyond its controls. `embed` re-embeds under
    ablation: open_clip's cached path by default; `full_pass.embed_under_ablation` (with
    the preprocessed images as `cache` and a `full_pass.HookAblator`) for other towers.
    Without trials (`measures.no_trials`: no text tower) the binding columns are NaN.
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
    t0, passes, skipped = time.time(), 0, 0
    for k, pair in enumerate(pairs.itertuples(index=False)):
        f1, f2 = pair.f1, pair.f2
        m1, m2 = pair_classes(presence, col[f1], col[f2])
        sel = trials.involving(f1, f2)
        with threadpool_limits(limits=1, user_api="blas"):
            before = pair_measures(stored, m1, m2, trials, sel, settings.pca_variance)
        sets = select(f1, f2)
        own = sets["own"]
        singles = [kind for kind in ("f1_only", "f2_only") if kind in sets]
        row = {
            "f1": f1,
            "f2": f2,
            "S": float(pair.S),
            "select": settings.select,
            "n_neurons": n_of(own),
            "layers": layers_of(own),
            **{f"n_{kind}": n_of(sets[kind]) for kind in singles},
            **{key: v for key, v in sets.items() if key.endswith("_short")},
            "control_draws": settings.control_draws,
            "n1": int(m1.sum()),
            "n2": int(m2.sum()),
            "n_trials": int(sel.sum()),
            **{f"{m}_before": v for m, v in before.items()},
        }
        if row["n_neurons"] == 0:
            skipped += 1
            log.info("pair (%s, %s): no neuron to ablate (%s); skipped", f1, f2, settings.select)
            rows.append(row)
            continue
        pool = pools.setdefault(ctl.set_profile(own, controls.strata), [])
        drawn = ctl.pick_controls(pool, own, settings.control_draws, controls, rng)
        conditions = [own, *drawn]
        keys = [condition_key(c) for c in conditions]
        todo = [i for i, key in enumerate(keys) if key not in kept and key not in recent]
        todo = list({keys[i]: i for i in todo}.values())
        mine = np.flatnonzero(m1 | m2 | np.isin(every, trials.image_row[sel]))
        single_sets = [sets[kind] for kind in singles if n_of(sets[kind])]
        embedded = embed(
            model,
            ablator,
            cache,
            [conditions[i] for i in todo] + single_sets,
            [every] * len(todo) + [mine] * len(single_sets),
            settings.batch_size,
        )
        passes += len(todo) * len(every) + len(single_sets) * len(mine)
        for i, emb in zip(todo, embedded):
            (recent if i == 0 else kept)[keys[i]] = emb
        after = [recent.get(key, kept.get(key)) for key in keys]
        single_after = {}
        for kind, emb in zip([s for s in singles if n_of(sets[s])], embedded[len(todo) :]):
            full = stored.copy()
            full[mine] = emb
            single_after[kind] = full
        while len(recent) > 8:
            recent.pop(next(iter(recent)))
        # Small SVDs: BLAS threads only wait on each other (45x slower on a busy machine).
        with threadpool_limits(limits=1, user_api="blas"):
            measured = [pair_measures(e, m1, m2, trials, sel, settings.pca_variance) for e in after]
            single = {
                kind: pair_measures(e, m1, m2, trials, sel, settings.pca_variance)
                for kind, e in single_after.items()
            }
            others = np.array([not ({a, b} & {f1, f2}) for a, b in all_pairs])
            shift = full_space(after[0], [c for c, o in zip(classes, others) if o])
        shift = shift - base_full[others]
        for m in iv.MEASURES:
            d = [x[m] - before[m] for x in measured]
            row.update(iv.effect_columns(m, d[0], d[1:]))
            for kind in singles:
                row[f"d{m}_{kind}"] = single[kind][m] - before[m] if kind in single else np.nan
        row["dD_others_mean"], row["dM_others_mean"] = np.nanmean(shift, axis=0)
        row["dD_others_abs"], row["dM_others_abs"] = np.nanmean(np.abs(shift), axis=0)
        row["n_others"] = int(others.sum())
        rows.append(row)
        excess = abs(row["dM"]) - row["dM_control_abs"]
        if np.isfinite(excess) and excess > best:
            best = excess
            example = {"f1": f1, "f2": f2, "before": stored[m1 | m2], "after": after[0][m1 | m2]}
            example["labels"] = np.where(m1[m1 | m2], 1, 2)
        log.info(
            f"pair {k + 1}/{len(pairs)} ({f1}, {f2}): {row['n_neurons']} neurons in layers "
            f"{row['layers']}, dM {row['dM']:+.3f} (controls {row['dM_control_mean']:+.3f} "
            f"± {row['dM_control_sd']:.3f}); {len(todo)} new conditions, "
            f"{passes} image passes, {time.time() - t0:.1f} s"
        )
    effects = pd.DataFrame(rows)
    for m in iv.MEASURES:  # skipped pairs: effect columns present, empty
        for key in iv.effect_columns(m, np.nan, []):
            if key not in effects:
                effects[key] = np.nan
    effects["z"], effects["p"] = effects["dM_z"], effects["dM_p"]
    log.info(
        f"{skipped} of {len(pairs)} pairs had no neuron to ablate; "
        f"{sum(len(p) for p in pools.values())} control draws over {len(pools)} stratum "
        f"profiles; {passes} image passes"
    )
    return effects, example


def binding_not_applicable(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary of a tower without a text tower: its dbinding rows' note says
    `applicability.NEEDS_TEXT` (their values are NaN: no trial was scored)."""
    from vlmbinding.models.applicability import NEEDS_TEXT

    out = summary.copy()
    out.loc[out["measure"] == "dbinding", "note"] = NEEDS_TEXT
    return out


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
    pool: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The whole stage for one model: (effects, summary, example).

    `paths` names the store, images, objects, superposition and feature_neurons files;
    `settings` is the config's `interventions:` block, `statistics` holds bootstrap,
    permutations and seed; `pool` the analysed layer pool ({layers, reduce, tokens}: the
    blocks and token reduction of the analysis), needed by `select: shared` (tuned sets)
    and `control_match: layers_and_scale` (activation sd). Images go through the
    preprocessing the store was made with, and the unablated pass must reproduce the
    store's embeddings (else the model or the preprocessing differ from the store's, and
    every difference would be meaningless). open_clip's ViT re-runs blocks from a cached
    residual stream; every other tower family (`models.towers`) runs full forward passes
    with hooks where the extraction records (`interventions.full_pass`). A tower without a
    text tower gets D and M only: the binding columns are NaN and the summary's dbinding
    rows say `applicability.NEEDS_TEXT`.
    """
    from vlmbinding.analysis.binding import swapped_caption_trials, trial_captions
    from vlmbinding.analysis.gradcam import text_embeddings
    from vlmbinding.data.reading import dataset_presence, open_checked_store
    from vlmbinding.data.vocab import Vocabulary
    from vlmbinding.extraction.images import choose_preprocess, load_images
    from vlmbinding.models.applicability import NEEDS_TEXT, has_text_tower
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

    family = tower_family(model)
    dev = next(model.parameters()).device
    table = pd.read_parquet(paths["images"]).set_index("image_id")
    images = load_images(
        table.loc[image_ids, "path"].tolist(), choose_preprocess(loaded, root.attrs["preprocess"])
    )
    if family == "open_clip-vit":
        per_layer = len(images) * tokens * width * 4
        layers = ab.cached_layers(n_layers, per_layer, settings["cache_gib"] * 2**30)
        log.info(f"caching the residual stream entering blocks {layers} ({len(images)} images)")
        cache, emb = ab.residual_cache(model.visual, images, layers, settings["batch_size"], dev)
        emb = emb.float().cpu().numpy()
        make_ablator, embed = ab.Ablator, ab.embed_under_ablation
    else:
        log.info(
            f"a {family} tower: every condition is a full forward pass of the vision tower "
            f"(no residual cache), hooked where the extraction records ({len(images)} images)"
        )
        cache = images
        emb = fp.embed_images(model, images, settings["batch_size"], dev).numpy()
        make_ablator, embed = fp.HookAblator, fp.embed_under_ablation
    gap = np.abs(emb - stored).max() / max(1e-12, np.abs(stored).max())
    log.info(f"unablated pass vs stored embeddings: max relative difference {gap:.2e}")
    if gap > 1e-2:
        raise ValueError(
            f"{paths['store']}: the model's unablated embeddings differ from the stored ones "
            f"(max relative difference {gap:.2e}); rebuild the store with this model"
        )

    objects = pd.read_parquet(paths["objects"])
    text = loaded.tokenizer is not None and has_text_tower(loaded.geometry)
    if text:
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
    else:
        log.info(f"binding accuracy: {NEEDS_TEXT}; the interventions measure D and M only")
        trials = no_trials(stored.shape[1])

    pairs = iv.choose_pairs(
        pd.read_parquet(paths["superposition"]), settings["pairs"], settings["seed"]
    )
    select_how = settings.get("select", "shared")
    match = settings.get("control_match", "layers")
    if select_how not in sh.SELECTIONS:
        raise ValueError(f"interventions.select must be one of {sh.SELECTIONS}, not {select_how!r}")
    run = Settings(
        select=select_how,
        neurons_per_pair=settings["neurons_per_pair"],
        ratio_threshold=settings["ratio_threshold"],
        control_draws=settings["control_draws"],
        seed=settings["seed"],
        batch_size=settings["batch_size"],
        pca_variance=pca_variance,
    )
    select, strata = neuron_selection(
        settings, run, root, pool, presence, features, objects, image_ids, paths
    )
    t0 = time.time()
    with make_ablator(model, values) as ablator:
        effects, example = run_interventions(
            model,
            ablator,
            cache,
            stored,
            presence,
            features,
            pairs,
            select,
            trials,
            ctl.StratumIndex(strata),
            run,
            embed,
        )
    log.info(f"{len(pairs)} pairs in {time.time() - t0:.1f} s")
    effects["ablation"] = settings["ablation"]
    effects["control_match"] = match
    if select_how == "shared":
        effects["overlap"] = effects["n_neurons"]
    summary = inf.summarise_effects(
        effects,
        features,
        statistics["bootstrap"],
        statistics["permutations"],
        statistics["seed"],
        covariate="overlap" if select_how == "shared" else "S",
    )
    if not text:
        summary = binding_not_applicable(summary)
    return effects, summary, example
