"""The rules' `params:` blocks: pure functions of the validated config (and a models entry).

Each returns plain values with sorted keys, so that Snakemake's params rerun trigger sees
the same value for the same settings and reruns a job only when what it uses changes.
"""

from __future__ import annotations

from vlmbinding.workflow.config import ConfigError
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
    return sorted_dict(config["activations"])


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


def comparison_params(config: dict, models: dict) -> dict:
    """Per model, in model order, what the cross-model view labels its rows with: the name,
    whether it is a toy model, its base entry, its role and `entry_seeds`."""
    entries = list(models.values())
    return {
        "bases": [m["base"] for m in entries],
        "models": list(models),
        "roles": [m["role"] for m in entries],
        "seeds": [entry_seeds(config, m) for m in entries],
        "toy": [m["weights"] == "toy" for m in entries],
    }


def vocabulary_params(config: dict) -> dict:
    """The vocabulary (shapes, colors, positions): it fixes the features and their order."""
    return {kind: config["dataset"][kind] for kind in ("shapes", "colors", "positions")}


def neuron_params(config: dict) -> dict:
    a = config["analysis"]
    return {"top_k": a["top_k"], "reduce": a["reduce"], "tokens": a["tokens"]}


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
    """The sharing block's result-changing settings (`enabled` only picks targets)."""
    return sorted_dict({k: v for k, v in config["sharing"].items() if k != "enabled"})


def sharing_pool(config: dict, layers) -> dict:
    """The layer pool and token reduction the affinities use (analysis block)."""
    a = config["analysis"]
    return {"layers": list(layers), "reduce": a["reduce"], "tokens": a["tokens"]}
