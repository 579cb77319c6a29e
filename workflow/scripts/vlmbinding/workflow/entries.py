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


def replicate_seeds(entry: dict, config: dict) -> list[tuple[int | None, int | None]]:
    """(training seed, dataset seed) of each replicate an entry asks for, in order.

    `replicates.seeds` are training seeds of a toy model; `replicates.dataset_seeds` are
    seeds of the generated dataset (any model). Given both, every training seed runs on
    every dataset seed (training seed varying slowest). None where a list is empty; [] for
    an entry without replicates.
    """
    rep = entry.get("replicates") or {}
    seeds, data_seeds = list(rep.get("seeds", [])), list(rep.get("dataset_seeds", []))
    name = entry["name"]
    for key, values in (("seeds", seeds), ("dataset_seeds", data_seeds)):
        if len(set(values)) != len(values):
            raise ValueError(f"models entry {name!r}: replicates.{key} repeat: {values}")
    if seeds and entry["weights"] != "toy":
        raise ValueError(
            f"models entry {name!r}: replicates.seeds are training seeds of a toy "
            f"model, but its weights are {entry['weights']!r} (not trained by the workflow); "
            "use replicates.dataset_seeds, or remove replicates.seeds from this entry"
        )
    if data_seeds and config.get("dataset", {}).get("external"):
        raise ValueError(
            f"models entry {name!r}: replicates.dataset_seeds draw new generated datasets, "
            "but dataset.external brings its own; remove replicates.dataset_seeds"
        )
    if not seeds and not data_seeds:
        return []
    return [(t, d) for t in (seeds or [None]) for d in (data_seeds or [None])]


def expand_replicates(entries: list[dict], config: dict) -> list[dict]:
    """Replicate entries of each entry that asks for them.

    An entry with `replicates: {seeds: [...], dataset_seeds: [...]}` runs itself with the
    first (training seed, dataset seed) of `replicate_seeds` and gains
    `<name>/replicate-<k>` for every later one, each a copy of the entry with `toy_seed`
    and/or `dataset_seed` set, `replicate: k`, `base` the entry's name and `role` trained.
    A `dataset_seed` other than `dataset.seed` gives the replicate its own dataset,
    results/dataset/seed-<s>/. The `replicates` key itself is dropped from every entry (it
    is not part of what a model is). Entries without replicates pass through unchanged.
    """
    out = []
    for entry in entries:
        pairs = replicate_seeds(entry, config)
        entry = copy.deepcopy(entry)
        entry.pop("replicates", None)
        if not pairs:
            out.append(entry)
            continue
        for k, (train_seed, data_seed) in enumerate(pairs):
            replicate = copy.deepcopy(entry)
            replicate["replicate"] = k
            if train_seed is not None:
                replicate["toy_seed"] = int(train_seed)
            if data_seed is not None:
                replicate["dataset_seed"] = int(data_seed)
            if k:
                replicate.update(name=f"{entry['name']}/replicate-{k}", role="trained")
            out.append(replicate)
    return out


def dataset_dir(entry: dict, config: dict) -> str:
    """The folder of the dataset an entry is analysed on: results/dataset, or
    results/dataset/seed-<s> for a replicate whose dataset seed is not dataset.seed."""
    seed = entry.get("dataset_seed")
    if seed is None or seed == config.get("dataset", {}).get("seed", 0):
        return "results/dataset"
    return f"results/dataset/seed-{seed}"


def identity(entry: dict, config: dict) -> dict:
    """What of an entry is tracked as a rule param (a change reruns the rule), sorted.

    Leaves out the replicate's index, the training seed (the toy block's params track it,
    and the new checkpoint reruns what reads it) and a dataset seed equal to dataset.seed
    (the one dataset): adding replicates to an entry then adds the replicates' jobs without
    rerunning the entry's own.
    """
    drop = {"replicate", "toy_seed", "twin"}
    if entry.get("dataset_seed") == config.get("dataset", {}).get("seed", 0):
        drop.add("dataset_seed")
    return {k: entry[k] for k in sorted(entry) if k not in drop}


TWIN_SUFFIX = "/controls/random"


def twin_name(base: str, index: int = 0) -> str:
    """The name of a config entry's random-weights twin `index`: `<base>/controls/random`
    for the first, `<base>/controls/random-<index>` for the others."""
    return f"{base}{TWIN_SUFFIX}" + (f"-{index}" if index else "")


def n_twins(config: dict) -> int:
    """`controls.random_twins`: how many random-weights twins (seeds) a model gets."""
    n = int(config.get("controls", {}).get("random_twins", 1))
    if n < 1:
        raise ValueError(f"controls.random_twins must be at least 1, got {n}")
    return n


def wants_twin(entry: dict, config: dict) -> bool:
    """The entry's `random_twin` if set, else `controls.random_weights` (default true)."""
    own = entry.get("random_twin")
    if own is not None:
        return bool(own)
    return bool(config.get("controls", {}).get("random_weights", True))


def add_random_twins(entries: list[dict], config: dict) -> list[dict]:
    """The random-weights twins after the trained entries of each config entry that gets them.

    A twin is the model's architecture and preprocessing with the weights open_clip (or,
    for a toy model, the toy model's own init code) gives it before any training:
    `weights: random`, `twin_of` the parent's weights (which fix the preprocessing and the
    activation function), `role: random`. `controls.random_twins` (k, default 1) twins per
    config entry, twin j (`twin: j`, named by `twin_name(base, j)`) drawn with seed
    `controls.seed + j`: the unit of the sanity verdicts' prediction interval is the
    twin's seed (controls.twins). Built from the config entry (not from a replicate):
    replicates differ in what training or the dataset seed does, and an untrained model has
    no training. Twins are analysed on the dataset of their base's first replicate
    (replicates with other dataset seeds are compared with them across datasets drawn the
    same way), and placed after the last trained entry of their base.
    """
    seed = int(config.get("controls", {}).get("seed", 0))
    count = n_twins(config)
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
            first = next(e for e in entries if e["name"] == base)
            if first.get("dataset_seed") is not None:  # the dataset of replicate 0
                twin["dataset_seed"] = first["dataset_seed"]
            twin.update(
                base=base,
                role="random",
                weights="random",
                twin_of=parent["weights"],
            )
            for j in range(count):
                out.append({**copy.deepcopy(twin), "name": twin_name(base, j), "seed": seed + j})
                if j:
                    out[-1]["twin"] = j
    return out


def random_twins_of(entries: list[dict], name: str) -> list[str]:
    """The names of the twins that control trained entry `name`, first twin first ([] if none)."""
    by_name = {e["name"]: e for e in entries}
    if by_name[name].get("role") != "trained":
        return []
    base = by_name[name].get("base", name)
    return [e["name"] for e in entries if e.get("role") == "random" and e.get("base") == base]


def random_twin_of(entries: list[dict], name: str) -> str | None:
    """The name of the first twin that controls trained entry `name`, or None if it has none."""
    twins = random_twins_of(entries, name)
    return twins[0] if twins else None


def extra_twin(entry: dict) -> bool:
    """A twin after the first: only the sanity table needs its results, not the figures."""
    return entry.get("role") == "random" and bool(entry.get("twin"))


def user_entry(entry: dict) -> str:
    """The name of the config entry a models entry came from (`base`: the user's own, for a
    random twin or a replicate too): what an error about its architecture or weights names."""
    return entry.get("base") or entry["name"]


def model_entries(config: dict) -> list[dict]:
    """Every model entry the workflow runs, in config order, derived entries after their parent."""
    return add_random_twins(expand_replicates(_base_entries(config), config), config)
