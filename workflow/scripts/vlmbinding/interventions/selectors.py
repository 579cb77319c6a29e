"""Which neurons each pair's ablation takes (`interventions.select`) and the strata its
random control draws are matched in (`interventions.control_match`): the intervention
stage's choice of neurons, given the analysed layer pool.

`select: shared` ablates A_f1 & A_f2 (the pair's co-tuned neurons in the pool, with
equally many f1-only and f2-only neurons beside it); `select: pair_ratio` the pair's top
neurons by the pair ratio (a_f1 + a_f2) / sum a. Control draws are matched per layer, or
per layer and activation-scale bin (`layers_and_scale`, from the pool's activation sd).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd

from vlmbinding.interventions import controls as ctl
from vlmbinding.interventions import selection as iv
from vlmbinding.interventions import shared as sh

if TYPE_CHECKING:
    from vlmbinding.interventions.stage import Settings

log = logging.getLogger("vlmbinding.interventions.stage")  # the stage's log lines, as before


def pair_ratio_selector(feature_neurons: pd.DataFrame, features, settings: Settings):
    """select: pair_ratio: f(f1, f2) -> {"own": the top pair-ratio neurons}."""

    def select(f1, f2):
        own = iv.pair_neurons(
            feature_neurons, features, f1, f2, settings.neurons_per_pair, settings.ratio_threshold
        )
        return {"own": iv.by_layer(own)}

    return select


def shared_selector(pool: sh.TunedPool, features):
    """select: shared: f(f1, f2) -> {"own": A_f1 & A_f2, "f1_only", "f2_only", counts}."""
    col = {f: j for j, f in enumerate(features)}

    def select(f1, f2):
        sets = sh.pair_sets(pool, col[f1], col[f2])
        return {"own": sets.pop("shared"), **sets}

    return select


def neuron_selection(
    settings: dict,
    run: Settings,
    root,
    pool: dict | None,
    presence,
    features: list[str],
    objects: pd.DataFrame,
    image_ids,
    paths: dict[str, str],
):
    """(select, strata) for the stage: `select(f1, f2)` the pair's neuron sets, `strata`
    the neurons' strata for the control draws (`controls.neuron_strata`).

    `settings` is the config's `interventions:` block, `run` the stage's `Settings`, `root`
    the activation store, `pool` the analysed layer pool ({layers, reduce, tokens}), needed
    by `select: shared` (the tuned sets, m = interventions.m, seeded by its seed) and by
    `control_match: layers_and_scale` (each neuron's activation sd);
    paths["feature_neurons"] the per-feature neuron table `select: pair_ratio` reads.
    """
    select_how = settings.get("select", "shared")
    match = settings.get("control_match", "layers")
    n_layers, width = root.attrs["layers"], root.attrs["width"]
    tuned, sd = None, None
    if select_how == "shared" or match == "layers_and_scale":
        if not pool:
            raise ValueError("select: shared and layers_and_scale need the analysed layer pool")
        acts, layer, unit = sh.pool_activations(
            root, pool["layers"], pool["reduce"], pool["tokens"]
        )
        n_objects = objects.groupby("image_id").size().loc[list(image_ids)].to_numpy()
        tuned = sh.tuned_pool(
            acts, layer, unit, presence, features, n_objects, settings.get("m"), settings["seed"]
        )
        sd = sh.layer_sd(tuned, n_layers, width)
        log.info(
            f"layer pool: blocks {list(pool['layers'])}, {acts.shape[1]} neurons, m = {tuned.m}"
        )
    strata = ctl.neuron_strata(n_layers, width, match, sd, settings.get("scale_bins", 4))
    if select_how == "shared":
        select = shared_selector(tuned, features)
    else:
        select = pair_ratio_selector(pd.read_parquet(paths["feature_neurons"]), features, run)
    return select, strata
