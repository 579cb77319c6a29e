"""The model entries the workflow runs: the config's `models:` plus the entries derived from them.

A config entry may ask for replicates (several training or dataset seeds) and, by default,
gets a random-weights twin. Each derived entry is a full models entry with its own name, and
so its own results folder `results/<name>/`; its name extends its parent's with a path
(`<name>/replicate-<k>`, `<name>/controls/random`), so a model's derived results sit under
its own folder. Every entry carries:

- `base`: the config entry it comes from (the cross-model view pools by it);
- `role`: `trained` for the model itself and its replicates, `random` for a twin.

Pure functions of the validated config: no torch, so parsing the Snakefile stays cheap.
"""

from __future__ import annotations

import copy


def _base_entries(config: dict) -> list[dict]:
    """The config's own entries, each marked as its own base and trained."""
    out = []
    for m in config["models"]:
        entry = copy.deepcopy(m)
        entry.setdefault("base", m["name"])
        entry.setdefault("role", "trained")
        out.append(entry)
    return out


def expand_replicates(entries: list[dict], config: dict) -> list[dict]:
    """Replicate entries of each entry that asks for them (issue 10, replicates).

    An entry with `replicates: {seeds: [s0, s1, ...]}` (toy models: training seeds) runs
    itself with seed s0 and gains `<name>/replicate-<k>` for every later seed s_k, each a copy
    of the entry with `toy_seed: s_k`, `replicate: k`, `base` the entry's name and `role`
    trained. The `replicates` key itself is dropped from every entry (it is not part of
    what a model is). Entries without seeds are passed through unchanged.
    """
    out = []
    for entry in entries:
        entry = copy.deepcopy(entry)
        seeds = list((entry.pop("replicates", None) or {}).get("seeds", []))
        if not seeds:
            out.append(entry)
            continue
        if entry["weights"] != "toy":
            raise ValueError(
                f"models entry {entry['name']!r}: replicates.seeds are training seeds of a toy "
                f"model, but its weights are {entry['weights']!r} (not trained by the workflow); "
                "remove `replicates` from this entry"
            )
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"models entry {entry['name']!r}: replicates.seeds repeat: {seeds}")
        out.append({**entry, "toy_seed": int(seeds[0]), "replicate": 0})
        for k, seed in enumerate(seeds[1:], start=1):
            replicate = copy.deepcopy(entry)
            replicate.update(
                name=f"{entry['name']}/replicate-{k}",
                base=entry["base"],
                role="trained",
                toy_seed=int(seed),
                replicate=k,
            )
            out.append(replicate)
    return out


TWIN_SUFFIX = "/controls/random"


def twin_name(base: str) -> str:
    """The name of a config entry's random-weights twin: `<base>/controls/random`."""
    return f"{base}{TWIN_SUFFIX}"


def wants_twin(entry: dict, config: dict) -> bool:
    """The entry's `random_twin` if set, else `controls.random_weights` (default true)."""
    own = entry.get("random_twin")
    if own is not None:
        return bool(own)
    return bool(config.get("controls", {}).get("random_weights", True))


def add_random_twins(entries: list[dict], config: dict) -> list[dict]:
    """A random-weights twin after the trained entries of each config entry that gets one.

    The twin (issue 14) is the model's architecture and preprocessing with the weights
    open_clip (or, for a toy model, the toy model's own init code) gives it before any
    training, drawn with `controls.seed`: `weights: random`, `twin_of` the parent's
    weights (which fix the preprocessing and the activation function), `role: random`.
    One twin per config entry, built from that entry (not from a replicate): replicates
    differ in what training or the dataset seed does, and an untrained model has no
    training. It is placed after the last trained entry of its base.
    """
    seed = int(config.get("controls", {}).get("seed", 0))
    config_entries = {m["name"]: m for m in config["models"]}
    last: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if entry.get("role", "trained") == "trained" and entry.get("base") in config_entries:
            last[entry["base"]] = i
    out = []
    for i, entry in enumerate(entries):
        # the switch is not part of what identifies a model's results (no reruns for it)
        out.append({k: v for k, v in entry.items() if k != "random_twin"})
        base = entry.get("base")
        if last.get(base) == i and wants_twin(config_entries[base], config):
            parent = config_entries[base]
            twin = {
                k: copy.deepcopy(v)
                for k, v in parent.items()
                if k not in ("name", "weights", "random_twin") and not k.startswith("replicate")
            }
            twin.update(
                name=twin_name(base),
                base=base,
                role="random",
                weights="random",
                twin_of=parent["weights"],
                seed=seed,
            )
            out.append(twin)
    return out


def random_twin_of(entries: list[dict], name: str) -> str | None:
    """The name of the twin that controls trained entry `name`, or None if it has none."""
    by_name = {e["name"]: e for e in entries}
    base = by_name[name].get("base", name)
    twin = twin_name(base)
    return twin if twin in by_name and by_name[name].get("role") == "trained" else None


def model_entries(config: dict) -> list[dict]:
    """Every model entry the workflow runs, in config order, derived entries after their parent."""
    return add_random_twins(expand_replicates(_base_entries(config), config), config)
