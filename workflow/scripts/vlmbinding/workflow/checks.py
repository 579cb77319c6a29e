"""The checks that stop a run before any job: what the workflow runs them on, and when.

`check_config` and `check_analysis` concern the whole run and run at parse time;
`weights_problem_of` concerns one model and runs when the DAG holds a job of that model
(common.smk calls it from the model's input functions), so the dataset, or the analysis of
an existing store, need no weights. Torch-free; each raises `ConfigError` (or the dataset's
`DatasetError`) naming the key or the models entry.
"""

from __future__ import annotations

from pathlib import Path

from vlmbinding.data import external as ext
from vlmbinding.data.crop import crops_to_square
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction.pooling_head import pooling_head_problem
from vlmbinding.models.architectures import architecture_config, hub_model_config, vision_geometry
from vlmbinding.models.hf_config import transformers_model_config
from vlmbinding.models.weights import weights_kind
from vlmbinding.workflow import startup
from vlmbinding.workflow.config import ConfigError, resolve_layers, validate_config
from vlmbinding.workflow.entries import user_entry


def check_config(config: dict, schema: Path) -> None:
    """Schema first (defaults filled in), then the checks a schema cannot express."""
    check_refused_measures(config)
    validate_config(config, schema)
    check_robustness(config)
    dataset = config["dataset"]
    try:
        vocab = Vocabulary.from_config(dataset)
    except ValueError as e:
        raise ConfigError(f"dataset: {e}") from None
    most = min(len(vocab.shapes), len(vocab.colors), len(vocab.positions))
    if max(dataset["object_counts"]) > most:
        raise ConfigError(
            f"dataset.object_counts: {max(dataset['object_counts'])} objects per image, "
            f"but shapes, colours and positions are distinct within an image and the "
            f"smallest vocabulary has {most} values"
        )
    names = [m["name"] for m in config["models"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"models: model names must be unique, got {names}")
    crop = crops_to_square(config["activations"]["preprocess"])
    if dataset["external"]:
        check_external(dataset["external"], vocab, crop)
    else:
        startup.check_generated_canvas(vocab, dataset["width"], dataset["height"], crop)


REFUSED_MEASURES = ("sae", "overlap_sae")  # the autoencoder basis: refused in the grid


def check_refused_measures(config: dict) -> None:
    """robustness.measure naming the autoencoder basis: an error that says why (before the
    schema, whose message would only list the measures allowed)."""
    robustness = config.get("robustness") or {}
    asked = robustness.get("measure") or [] if isinstance(robustness, dict) else []
    refused = [m for m in asked if str(m) in REFUSED_MEASURES]
    if refused:
        raise ConfigError(
            f"robustness.measure: {refused[0]!r} (the autoencoder basis) is not a measure of "
            "the specification curve: its dictionaries are trained for the sharing stage's "
            "analysed blocks only (sharing.sae), and every layer pool of the grid (all, "
            "thirds, last-N) would need dictionaries of its own blocks, one per seed of "
            "sharing.sae.seeds, trained on a fresh dataset (GPU jobs on a real model). The "
            "autoencoder basis's rows are in sharing.parquet, the sanity table and the "
            "cross-model view; use S, overlap or omega here (docs/statistics.md)"
        )


def check_robustness(config: dict) -> None:
    """robustness.measure against the store: omega reads the patch tokens in each object's
    box, which only a tokens store keeps."""
    r = config["robustness"]
    if not r["enabled"] or "omega" not in r["measure"]:
        return
    if config["activations"]["store"] != "tokens":
        raise ConfigError(
            "robustness.measure: omega (the encoding geometry's neuron sharing) reads the "
            "patch tokens inside each object's box, but activations.store is "
            f"{config['activations']['store']!r} (per-image reductions only); set "
            "activations.store: tokens or leave omega out of robustness.measure"
        )


def check_external(external: dict, vocab: Vocabulary, crop: bool) -> None:
    """A user's dataset: its table, its images' headers, its boxes against the model's crop."""
    objects = ext.read_objects_table(external["objects"])
    source = f"dataset.external ({external['objects']})"
    ext.validate_external(objects, external["images"], vocab, source=source, crop=crop)


def dataset_image_ids(config: dict) -> list[str]:
    """The image ids the dataset will have (read from an external table)."""
    dataset = config["dataset"]
    if dataset["external"]:
        table = ext.read_objects_table(dataset["external"]["objects"])
        return list(dict.fromkeys(table["image_id"].astype(str)))
    n = dataset["images_per_count"] * len(dataset["object_counts"])
    return startup.generated_image_ids(n)


def model_config(entry: dict, arch_dir: Path) -> dict:
    """The resolved architecture config of a models entry (hf-hub: the hub's config)."""
    try:
        # a random twin has the architecture of the weights it is the twin of
        weights = entry.get("twin_of", entry["weights"])
        if entry["arch"] == "transformers":
            return transformers_model_config(weights, user_entry(entry))
        if weights_kind(weights) == "hf-hub":
            return hub_model_config(weights)
        return architecture_config(entry["arch"], arch_dir, entry.get("model_cfg"))
    except (ValueError, OSError) as e:
        raise ConfigError(f"models entry {user_entry(entry)!r}: {e}") from None


def check_analysis(config: dict, geometries: dict[str, dict], ids: list[str]) -> dict:
    """Layer indices against each model's depth, top_k against the number of images,
    gradcam.images and figures.neuron against the dataset and the analysed layers.

    `geometries`: model name -> `vision_geometry`; `ids`: the dataset's image ids.
    Returns model name -> the analysed layers (0-based, sorted)."""
    top_k = config["analysis"]["top_k"]
    if top_k > len(ids):
        raise ConfigError(
            f"analysis.top_k: {top_k} top images per neuron, but the dataset has only "
            f"{len(ids)} images"
        )
    layers = {}
    for name, geometry in geometries.items():
        depth = geometry["layers"]
        try:
            layers[name] = resolve_layers(config["analysis"]["layers"], depth)
            resolve_layers([config["gradcam"]["layer"]], depth, key="gradcam.layer")
            startup.check_gradcam_images(config["gradcam"]["images"], ids)
            startup.check_figure_neuron(
                config["figures"]["neuron"], layers[name], geometry["width"], name
            )
        except ConfigError as e:
            raise ConfigError(f"{e} (models entry {name!r})") from None
    return layers


def check_pooling_head(config: dict, geometries: dict[str, dict], models: dict) -> None:
    """activations.pooling_head: true needs an attention-pooling head in every tower; the
    error names the first models entry without one (torch-free, from the geometry)."""
    if not config["activations"].get("pooling_head"):
        return
    for name, geometry in geometries.items():
        problem = pooling_head_problem(geometry)
        if problem:
            raise ConfigError(f"models entry {user_entry(models[name])!r}: {problem}")


def model_geometry(entry: dict, arch_dir: Path) -> dict:
    """Depth, width, token grid and prefix tokens of an entry's vision tower; refused by the
    entry's name if the workflow cannot hook it."""
    cfg = model_config(entry, arch_dir)  # its errors name the entry already
    try:
        return vision_geometry(cfg)
    except ValueError as e:
        raise ConfigError(f"models entry {user_entry(entry)!r}: {e}") from None


def geometries(models: dict, arch_dir: Path) -> dict[str, dict]:
    """Model name -> depth, width and token grid of its vision tower."""
    return {name: model_geometry(m, arch_dir) for name, m in models.items()}


def weights_problem_of(entry: dict, arch_dir: Path) -> str | None:
    """Why an entry's weights cannot be loaded here (file missing or not a checkpoint, a
    checkpoint of another architecture, a tag unknown or not cached offline), or None;
    prefixed with the models entry's name."""
    kind = weights_kind(entry["weights"])
    geometry = model_geometry(entry, arch_dir) if kind == "file" else None
    problem = startup.weights_problem(entry, kind, geometry)
    if not problem and kind in ("tag", "hf-hub", "random"):
        problem = startup.tokenizer_problem(model_config(entry, arch_dir))
    return f"models entry {user_entry(entry)!r}: {problem}" if problem else None


def check_sharing(config: dict, geometries: dict[str, dict], layers: dict, n_images: int):
    """The layer pools against sharing.m, and the images against the tuning regression."""
    s = config["sharing"]
    if not s["enabled"]:
        return
    check_geometry(config, geometries)
    n_features = sum(len(config["dataset"][k]) for k in ("shapes", "colors", "positions"))
    # intercept, count, one column per feature, and as many decorrelation directions
    need = 3 + n_features * (2 if s["decorrelate"] else 1)
    if n_images < need:
        raise ConfigError(
            f"sharing.enabled: {n_images} images are too few for the tuning regression over "
            f"{n_features} features (at least {need}); add images or set sharing.enabled: false"
        )
    for name, geometry in geometries.items():
        pool = len(layers[name]) * geometry["width"]
        if s["m"] is not None and s["m"] > pool:
            raise ConfigError(
                f"sharing.m: {s['m']} neurons per tuned set, but the layer pool of models "
                f"entry {name!r} has {pool} neurons (analysis.layers)"
            )


def check_geometry(config: dict, geometries: dict[str, dict]) -> None:
    """sharing.geometry's layers against each model's depth. Either store mode serves it: a
    reduced store then pools each object's patch vectors (`extraction.object_pooling`)."""
    g = config["sharing"]["geometry"]
    if not (config["sharing"]["enabled"] and g["enabled"]):
        return
    if g["layers"] is None:
        return
    for name, geometry in geometries.items():
        try:
            resolve_layers(g["layers"], geometry["layers"], key="sharing.geometry.layers")
        except ConfigError as e:
            raise ConfigError(f"{e} (models entry {name!r})") from None


def check_sae(config: dict, models: dict, n_images: int) -> None:
    """The autoencoder basis (sharing.sae) against what it needs: a dataset the workflow
    can draw afresh, a seed not analysed (either store mode: a reduced store's latents are
    recomputed by the model)."""
    s = config["sharing"]
    sae = s["sae"]
    if not (s["enabled"] and sae["enabled"]):
        return
    if config["dataset"]["external"]:
        raise ConfigError(
            "sharing.sae.enabled: the autoencoders train on a fresh dataset drawn with "
            "sharing.sae.dataset_seed, which cannot be drawn for dataset.external; set "
            "sharing.sae.enabled: false"
        )
    seed = sae["dataset_seed"]
    if seed == config["dataset"]["seed"]:
        raise ConfigError(
            f"sharing.sae.dataset_seed: {seed} is dataset.seed, the analysed images; the "
            "autoencoders must train on other images (choose another seed)"
        )
    analysed = sorted(n for n, m in models.items() if m.get("dataset_seed") == seed)
    if analysed:
        raise ConfigError(
            f"sharing.sae.dataset_seed: {seed} is the dataset seed that models entries "
            f"{analysed} are analysed on (models[].replicates.dataset_seeds); choose another"
        )
    if sae["n_images"] is not None and sae["n_images"] > n_images:
        raise ConfigError(
            f"sharing.sae.n_images: {sae['n_images']} images, but the fresh dataset has "
            f"{n_images} (dataset.images_per_count x object_counts)"
        )
