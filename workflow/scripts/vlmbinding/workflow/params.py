"""The rules' `params:` blocks: pure functions of the validated config (and a models entry).

Each returns plain values with sorted keys, so that Snakemake's params rerun trigger sees
the same value for the same settings and reruns a job only when what it uses changes.
"""

from __future__ import annotations

from vlmbinding.workflow.config import ConfigError, resolve_layers
from vlmbinding.workflow.grid import grid_with_main, layer_pools, pools_with_main


def sorted_dict(block: dict) -> dict:
    """A config block as a plain dict with sorted keys: a stable value for params."""
    return {k: block[k] for k in sorted(block)}


def dataset_params(config: dict) -> dict:
    """The dataset block (tracked for reruns)."""
    return sorted_dict(config["dataset"])


def dataset_seed_params(config: dict, seed: int | str) -> dict:
    """The dataset block with a replicate dataset's seed (tracked for reruns)."""
    return {**dataset_params(config), "seed": int(seed)}


def activation_params(config: dict) -> dict:
    """The activations block; `pooling_head` only when on, so that stores written before the
    option existed (the same arrays) are not rerun."""
    block = sorted_dict(config["activations"])
    if not block.get("pooling_head"):
        block.pop("pooling_head", None)
    return block


def pools_objects(config: dict) -> bool:
    """Does the extraction pool each object's patch vectors? Only into a reduced store, and
    only for the encoding geometry (sharing.enabled and sharing.geometry.enabled): a tokens
    store holds every token already."""
    s = config["sharing"]
    return config["activations"]["store"] == "reduced" and s["enabled"] and s["geometry"]["enabled"]


def extraction_params(config: dict, depth: int, pool) -> dict:
    """The activations block (tracked for reruns), plus, when the extraction pools objects
    (`pools_objects`), what the pooling depends on: `object_pooling` with the blocks the
    geometry measures (`geometry_layers`) and the generated canvas (boxes to patches). A
    tokens store's params stay the activations block alone."""
    out = activation_params(config)
    if pools_objects(config):
        d = config["dataset"]
        layers = geometry_layers(config, depth, pool)
        out["object_pooling"] = {"canvas": [d["width"], d["height"]], "layers": layers}
    return sorted_dict(out)


def toy_settings(config: dict, entry: dict) -> dict:
    """The toy block a models entry trains with: the config's, its entry's own toy
    overrides and its replicate's training seed (models[].replicates.seeds)."""
    toy = {**config["toy"], **entry.get("toy", {})}
    if entry.get("toy_seed") is not None:
        toy["seed"] = entry["toy_seed"]
    return toy


def toy_params(config: dict, entry: dict) -> dict:
    """Training settings of a toy model (`toy_settings`), plus the vocabulary."""
    keys = ("shapes", "colors", "positions", "width", "height")
    vocab = {k: config["dataset"][k] for k in keys}
    return {**sorted_dict(toy_settings(config, entry)), "vocabulary": vocab}


def entry_seeds(config: dict, entry: dict) -> list[int | None]:
    """[training seed, dataset seed] an entry ran with; None where it has none (a model
    the workflow does not train; a dataset the user brought)."""
    train, data = None, None
    if entry["weights"] == "toy":
        train = toy_settings(config, entry)["seed"]
    if not config["dataset"]["external"]:
        data = entry.get("dataset_seed", config["dataset"]["seed"])
    return [train, data]


def comparison_params(config: dict, models: dict, no_text=()) -> dict:
    """Per model, in model order, what the cross-model view labels its rows with: the name,
    whether it is a toy model, its base entry, its role, `entry_seeds`, whether it has a
    text tower (not in `no_text`: the binding test ran) and whether its entropy half
    samples are pooled over seeds (`replicated_models`)."""
    entries = list(models.values())
    pooled = replicated_models(models)
    return {
        "bases": [m["base"] for m in entries],
        "entropy_replicates": [name in pooled for name in models],
        "models": list(models),
        "roles": [m["role"] for m in entries],
        "seeds": [entry_seeds(config, m) for m in entries],
        "text": [name not in no_text for name in models],
        "toy": [m["weights"] == "toy" for m in entries],
    }


def replicated_models(models: dict) -> list[str]:
    """The trained models (names, in order) whose base entry has two or more trained
    replicates: their entropy half samples are pooled over seeds in the cross-model view."""
    trained = [(n, m["base"]) for n, m in models.items() if m["role"] != "random"]
    bases = [b for _, b in trained]
    return [n for n, b in trained if bases.count(b) >= 2]


def vocabulary_params(config: dict) -> dict:
    """The vocabulary (shapes, colors, positions): it fixes the features and their order."""
    return {kind: config["dataset"][kind] for kind in ("shapes", "colors", "positions")}


def neuron_params(config: dict) -> dict:
    a = config["analysis"]
    return {"top_k": a["top_k"], "reduce": a["reduce"], "tokens": a["tokens"]}


def entropy_resampling_params(config: dict) -> dict:
    """Rule resample_entropy: the neuron settings, the threshold and the half samples."""
    c = config["controls"]
    return neuron_params(config) | {
        "threshold": c["entropy_threshold"],
        "n_draws": c["entropy_half_samples"],
        "seed": config["analysis"]["seed"],
    }


def selection_params(config: dict) -> dict:
    a = config["analysis"]
    return {"n_neurons": a["n_neurons"], "ratio_threshold": a["ratio_threshold"]}


def null_params(config: dict) -> dict:
    a = config["analysis"]
    return {"n_perm": a["null_permutations"], "seed": a["seed"]}


def correlation_params(config: dict) -> dict:
    a = config["analysis"]
    return {"bootstrap": a["bootstrap"], "permutations": a["permutations"], "seed": a["seed"]}


def gradcam_params(config: dict) -> dict:
    return sorted_dict(config["gradcam"])


def figure_params(config: dict) -> dict:
    return sorted_dict(config["figures"])


def robustness_params(config: dict) -> dict:
    """The robustness block (the grid and its statistics), tracked for reruns; the main
    analysis's settings are added to the grid's lists, so it is one of the specifications."""
    return sorted_dict(grid_with_main(config["robustness"], config["analysis"]))


def robustness_neuron_params(config: dict) -> dict:
    """Only what the per-block grid jobs use, so other grid edits do not rerun them."""
    r = grid_with_main(config["robustness"], config["analysis"])
    return {"reduce": r["reduce"], "tokens": r["tokens"], "top_k": r["top_k"]}


def robustness_overlap_params(config: dict) -> dict:
    """What the overlap's specifications use: the grid's reductions and token sets (the
    main analysis's among them), the sharing stage's m, seed and decorrelate, and
    robustness.overlap_n_null null draws."""
    r, s = grid_with_main(config["robustness"], config["analysis"]), config["sharing"]
    return {
        "reduce": r["reduce"],
        "tokens": r["tokens"],
        "m": s["m"],
        "seed": s["seed"],
        "decorrelate": s["decorrelate"],
        "n_null": config["robustness"]["overlap_n_null"],
    }


def robustness_omega_params(config: dict) -> dict:
    """What the neuron sharing omega's specifications use: robustness.omega_n_null null
    draws, and the encoding geometry's variance bins and seed (sharing.geometry)."""
    g = config["sharing"]["geometry"]
    return {
        "n_null": config["robustness"]["omega_n_null"],
        "n_bins": g["n_bins"],
        "seed": g["seed"],
    }


def robustness_pools(
    config: dict, geometries: dict[str, dict], model: str, main_blocks=None
) -> dict:
    """Layer pool name -> blocks, for the depth of `model` (`geometries`: name -> geometry);
    with `main_blocks` (the main analysis's layers) those are a pool of their own (`main`)
    unless a pool has them already."""
    try:
        pools = layer_pools(config["robustness"]["layers"], geometries[model]["layers"])
    except ValueError as e:
        raise ConfigError(f"{e} (models entry {model!r})") from None
    return pools if main_blocks is None else pools_with_main(pools, list(main_blocks))


def robustness_main(config: dict, main_blocks) -> dict:
    """The main analysis's choices, to mark its specification."""
    a = config["analysis"]
    main = {k: a[k] for k in ("top_k", "n_neurons", "reduce", "tokens")}
    return main | {"blocks": list(main_blocks)}


def intervention_params(config: dict) -> dict:
    """The interventions block (tracked for reruns; `enabled` only picks targets)."""
    return sorted_dict({k: v for k, v in config["interventions"].items() if k != "enabled"})


def sharing_params(config: dict) -> dict:
    """The sharing block's result-changing settings of the neuron basis (`enabled` only picks
    targets; the encoding geometry's, sharing.geometry, and the autoencoder basis's,
    sharing.sae (`sae_params`), belong to their own rules)."""
    skip = ("enabled", "geometry", "sae")  # each has its own rules and params
    return sorted_dict({k: v for k, v in config["sharing"].items() if k not in skip})


SAE_STEPS = {
    # the token sample: the fresh dataset, its images and tokens (the model's recording
    # settings are added by `sae_params`)
    "tokens": ("dataset_seed", "n_images", "n_tokens"),
    "train": ("seeds", "expansion", "k", "epochs", "lr"),
    "measure": ("seeds", "m"),
    # a reduced store's latents of the analysed images, recomputed by the model (the
    # recording settings are added by `sae_params`)
    "latents": ("seeds",),
    "resolved": ("threshold",),
}


def sae_params(config: dict, step: str) -> dict:
    """The settings of sharing.sae that change the results of one step of the autoencoder
    basis (SAE_STEPS), so that changing e.g. sharing.sae.k reruns training and what follows,
    not the token sample. The token sample and a reduced store's recomputed latents also
    track how activations are recorded."""
    sae = config["sharing"]["sae"]
    out = {k: sae[k] for k in SAE_STEPS[step]}
    if step in ("tokens", "latents"):
        a = config["activations"]
        out |= {k: a[k] for k in ("dtype", "preprocess", "center_mlp_out", "autocast")}
    return sorted_dict(out)


def sharing_pool(config: dict, layers) -> dict:
    """The layer pool and token reduction the affinities use (analysis block)."""
    a = config["analysis"]
    return {"layers": list(layers), "reduce": a["reduce"], "tokens": a["tokens"]}


def geometry_params(config: dict) -> dict:
    """sharing.geometry's result-changing settings (`enabled` and `layers` pick targets and
    blocks: the blocks go to the rule as their own param)."""
    g = config["sharing"]["geometry"]
    return {k: g[k] for k in ("n_bins", "n_null", "seed")}


def geometry_layers(config: dict, depth: int, pool) -> list[int]:
    """The blocks the encoding geometry measures: sharing.geometry.layers resolved against
    the model's depth, or the analysed blocks (`pool`) when it is null."""
    layers = config["sharing"]["geometry"]["layers"]
    if layers is None:
        return sorted(int(b) for b in pool)
    return resolve_layers(layers, depth, key="sharing.geometry.layers")
