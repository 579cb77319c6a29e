"""Helpers shared by the rules: config validation, the vocabulary, models, targets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from vlmbinding.workflow.config import ConfigError, validate_config  # noqa: E402
from vlmbinding.data.vocab import Vocabulary  # noqa: E402
from vlmbinding.data import external as ext  # noqa: E402
from vlmbinding.workflow import startup  # noqa: E402
from vlmbinding.data.crop import crops_to_square  # noqa: E402

REPO = Path(workflow.basedir)


def _check_config(config):
    """Schema first, then the checks a schema cannot express; exit with the key named."""
    try:
        validate_config(config, REPO / "config" / "schema.yaml")
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
            _check_external(dataset["external"], vocab, config["activations"])
        else:
            startup.check_generated_canvas(
                vocab, dataset["width"], dataset["height"], crop
            )
    except (ConfigError, ext.DatasetError) as e:
        raise WorkflowError(str(e)) from None


def _check_external(external, vocab, activations):
    """Validate a user's dataset at start-up (table, images' headers, boxes against the
    model's crop), so a defect stops the run before any job."""
    objects = ext.read_objects_table(external["objects"])
    ext.validate_external(
        objects,
        external["images"],
        vocab,
        source=f"dataset.external ({external['objects']})",
        crop=crops_to_square(activations["preprocess"]),
    )


_check_config(config)


def sorted_dict(block):
    """A config block as a plain dict with sorted keys: a stable value for params."""
    return {k: block[k] for k in sorted(block)}


def dataset_params():
    """The dataset block (tracked for reruns)."""
    return sorted_dict(config["dataset"])


def all_targets():
    """Every figure of every model, the cross-model view and the tables behind them."""
    targets = ["results/comparison/models.png", "results/config.html"]
    figures = [
        "gradcam",
        "entropy",
        "feature_neurons",
        "patch_activations",
        "superposition_vs_D",
        "superposition_vs_M",
        "binding_vs_S",
        "superposition_null",
    ]
    for name, m in MODELS.items():
        names = figures + (["zero_shot"] if m["weights"] == "toy" else [])
        targets += [f"results/{name}/figures/{f}.png" for f in names]
        targets.append(f"results/{name}/tables.html")
        if config["robustness"]["enabled"]:
            targets.append(f"results/{name}/figures/specification_curve.png")
        targets += intervention_targets(name)
        targets += sharing_targets(name)  # workflow/rules/sharing.smk
    targets += control_targets()
    return targets


# --- models ---------------------------------------------------------------------------

from vlmbinding.models.architectures import (
    architecture_config,
    hub_model_config,
    vision_geometry,
)  # noqa: E402
from vlmbinding.models.weights import weights_kind  # noqa: E402

from vlmbinding.workflow.entries import (
    dataset_dir,
    identity,
    model_entries,
)  # noqa: E402

try:
    MODELS = {m["name"]: m for m in model_entries(config)}
except ValueError as e:
    raise WorkflowError(str(e)) from None
ARCH_DIR = REPO / "resources" / "models"


def dataset_file(kind):
    """Input function: the model's dataset table `kind` (images | objects), from its
    replicate's dataset (models[].replicates.dataset_seeds) or the one dataset."""
    return (
        lambda wildcards: f"{dataset_dir(MODELS[wildcards.model], config)}/{kind}.parquet"
    )


def dataset_seed_params(wildcards):
    """The dataset block with a replicate dataset's seed (tracked for reruns)."""
    return {**dataset_params(), "seed": int(wildcards.seed)}


def entry_seeds(m):
    """[training seed, dataset seed] an entry ran with; None where it has none (a model
    the workflow does not train; a dataset the user brought)."""
    train, data = None, None
    if m["weights"] == "toy":
        train = toy_settings(m)["seed"]
    if not config["dataset"]["external"]:
        data = m.get("dataset_seed", config["dataset"]["seed"])
    return [train, data]


def model_params(wildcards):
    """What identifies a model's weights and data, as plain values (tracked for reruns)."""
    return identity(MODELS[wildcards.model], config)


def toy_checkpoint(name):
    return f"results/{name}/toy_model/checkpoint.pt"


def weights_input(wildcards):
    """The checkpoint file the activation rule reads, if the weights are a file."""
    m = MODELS[wildcards.model]
    kind = weights_kind(m["weights"])
    if kind == "toy":
        return toy_checkpoint(m["name"])
    if kind == "file":
        return m["weights"]
    return []


def model_config(m):
    """The resolved architecture config of a models entry (hf-hub: the hub's config)."""
    try:
        # a random twin has the architecture of the weights it is the twin of
        weights = m.get("twin_of", m["weights"])
        if weights_kind(weights) == "hf-hub":
            return hub_model_config(weights)
        return architecture_config(m["arch"], ARCH_DIR, m.get("model_cfg"))
    except (ValueError, OSError) as e:
        raise WorkflowError(f"models entry {m['name']!r}: {e}") from None


def arch_cfg(wildcards):
    """The architecture config, tracked as a param: editing resources/models reruns."""
    return model_config(MODELS[wildcards.model])


def model_geometry(m):
    """Depth, width and token grid of a model's vision tower."""
    return vision_geometry(model_config(m))


def _check_weights():
    """Weights files and open_clip tags, before any job (torch-free, fast offline).

    Skipped by `snakemake --lint`, which reads the rules, not the weights (and so works
    offline with the paper's config)."""
    if "--lint" in sys.argv:
        return
    for name, m in MODELS.items():
        kind = weights_kind(m["weights"])
        geometry = model_geometry(m) if kind == "file" else None
        problem = startup.weights_problem(m, kind, geometry)
        if problem:
            raise WorkflowError(f"models entry {name!r}: {problem}")


_check_weights()


def toy_settings(m):
    """The toy block a models entry trains with: the config's, its entry's own toy
    overrides and its replicate's training seed (models[].replicates.seeds)."""
    toy = {**config["toy"], **m.get("toy", {})}
    if m.get("toy_seed") is not None:
        toy["seed"] = m["toy_seed"]
    return toy


def toy_params(wildcards):
    """Training settings of a toy model (`toy_settings`), plus the vocabulary."""
    toy = toy_settings(MODELS[wildcards.model])
    vocab = {
        k: config["dataset"][k]
        for k in ("shapes", "colors", "positions", "width", "height")
    }
    return {**sorted_dict(toy), "vocabulary": vocab}


def activation_params():
    return sorted_dict(config["activations"])


# --- analysis -------------------------------------------------------------------------

from vlmbinding.workflow.config import resolve_layers  # noqa: E402


def dataset_image_ids():
    """The image ids the dataset will have (read from an external table)."""
    dataset = config["dataset"]
    if dataset["external"]:
        table = ext.read_objects_table(dataset["external"]["objects"])
        return list(dict.fromkeys(table["image_id"].astype(str)))
    n = dataset["images_per_count"] * len(dataset["object_counts"])
    return startup.generated_image_ids(n)


def number_of_images():
    return len(dataset_image_ids())


def _check_analysis():
    """Layer indices against each model's depth, top_k against the number of images,
    gradcam.images and figures.neuron against the dataset and the analysed layers."""
    ids = dataset_image_ids()
    n_images = len(ids)
    if config["analysis"]["top_k"] > n_images:
        raise WorkflowError(
            f"analysis.top_k: {config['analysis']['top_k']} top images per neuron, but "
            f"the dataset has only {n_images} images"
        )
    layers = {}
    for name, m in MODELS.items():
        depth = model_geometry(m)["layers"]
        try:
            layers[name] = resolve_layers(config["analysis"]["layers"], depth)
            resolve_layers([config["gradcam"]["layer"]], depth, key="gradcam.layer")
            startup.check_gradcam_images(config["gradcam"]["images"], ids)
            width = model_geometry(m)["width"]
            startup.check_figure_neuron(
                config["figures"]["neuron"], layers[name], width, name
            )
        except ConfigError as e:
            raise WorkflowError(f"{e} (models entry {name!r})") from None
    return layers


LAYERS = _check_analysis()


def layer_tables(wildcards):
    return expand(
        "results/{model}/neurons/layer_{layer}.parquet",
        model=wildcards.model,
        layer=LAYERS[wildcards.model],
    )


def neuron_params():
    a = config["analysis"]
    return {"top_k": a["top_k"], "reduce": a["reduce"], "tokens": a["tokens"]}


def selection_params():
    a = config["analysis"]
    return {"n_neurons": a["n_neurons"], "ratio_threshold": a["ratio_threshold"]}


def null_params():
    a = config["analysis"]
    return {"n_perm": a["null_permutations"], "seed": a["seed"]}


def vocabulary_params():
    """The vocabulary (shapes, colors, positions): it fixes the features and their order."""
    return {kind: config["dataset"][kind] for kind in ("shapes", "colors", "positions")}


def correlation_params():
    a = config["analysis"]
    return {
        "bootstrap": a["bootstrap"],
        "permutations": a["permutations"],
        "seed": a["seed"],
    }


def gradcam_params():
    return sorted_dict(config["gradcam"])


def binding_template(wildcards):
    """A function, so Snakemake does not read {color} and {shape} as wildcards."""
    return config["binding"]["template"]


def figure_params():
    return sorted_dict(config["figures"])


def result_tables(wildcards):
    """Inputs of the model's table page (the zero-shot table only for toy models)."""
    base = f"results/{wildcards.model}"
    tables = {
        "correlation": f"{base}/correlation.parquet",
        "binding_correlation": f"{base}/binding/correlation.parquet",
        "binding": f"{base}/binding/accuracy.tsv",
        "binding_per_count": f"{base}/binding/accuracy_per_count.tsv",
        "localisation": f"{base}/gradcam/localisation.tsv",
        "null": f"{base}/superposition_null.parquet",
        "null_correlation": f"{base}/superposition_null_correlation.parquet",
    }
    if MODELS[wildcards.model]["weights"] == "toy":
        tables["zero_shot"] = f"{base}/toy_model/zero_shot.tsv"
    return tables


# --- robustness: the specification curve ----------------------------------------------

from vlmbinding.analysis.specification import layer_pools  # noqa: E402


def robustness_params():
    """The robustness block (the grid and its statistics), tracked for reruns."""
    return sorted_dict(config["robustness"])


def robustness_neuron_params():
    """Only what the per-block grid jobs use, so other grid edits do not rerun them."""
    r = config["robustness"]
    return {"reduce": r["reduce"], "tokens": r["tokens"], "top_k": r["top_k"]}


def robustness_pools(wildcards):
    """Layer pool name -> blocks, for this model's depth."""
    depth = model_geometry(MODELS[wildcards.model])["layers"]
    try:
        return layer_pools(config["robustness"]["layers"], depth)
    except ValueError as e:
        raise WorkflowError(f"{e} (models entry {wildcards.model!r})") from None


def robustness_layer_tables(wildcards):
    blocks = sorted({b for pool in robustness_pools(wildcards).values() for b in pool})
    return expand(
        "results/{model}/robustness/neurons/layer_{layer}.parquet",
        model=wildcards.model,
        layer=blocks,
    )


# --- interventions ---------------------------------------------------------------------


def intervention_params():
    """The interventions block (tracked for reruns; `enabled` only picks targets)."""
    block = {k: v for k, v in config["interventions"].items() if k != "enabled"}
    return sorted_dict(block)


def intervention_targets(name):
    """The intervention figures of a model, when interventions.enabled."""
    if not config["interventions"]["enabled"]:
        return []
    return [
        f"results/{name}/figures/interventions.png",
        f"results/{name}/figures/interventions_example.png",
    ]


def intervention_inputs(wildcards):
    base = f"results/{wildcards.model}"
    return {
        "store": f"{base}/activations.zarr",
        "images": dataset_file("images")(wildcards),
        "objects": dataset_file("objects")(wildcards),
        "superposition": f"{base}/superposition.parquet",
        "feature_neurons": f"{base}/feature_neurons.parquet",
        "weights": weights_input(wildcards),
    }


# --- sanity controls ---------------------------------------------------------------

from vlmbinding.workflow.entries import random_twin_of  # noqa: E402


def twin_of(name):
    """The random twin that controls trained model `name`, or None; none for a replicate
    on another dataset than the twin's (the sanity table pairs their images by id)."""
    twin = random_twin_of(list(MODELS.values()), name)
    if twin and dataset_dir(MODELS[twin], config) != dataset_dir(MODELS[name], config):
        return None
    return twin


def pixel_model(name):
    """Whose pixel baseline a model uses: its own; a twin its trained model's (the same
    inputs: the twin has the trained model's preprocessing)."""
    m = MODELS[name]
    if m["role"] != "random":
        return name
    return next(
        n for n, e in MODELS.items() if e["base"] == m["base"] and e["role"] != "random"
    )


def pixel_separability_input(wildcards):
    return f"results/{pixel_model(wildcards.model)}/separability_pixels.parquet"


def sanity_inputs(wildcards):
    """The trained model's and its twin's tables the sanity table compares."""
    files = {
        "neurons": "neurons.parquet",
        "superposition": "superposition.parquet",
        "separability": "separability.parquet",
        "correlation": "correlation.parquet",
        "trials": "binding/trials.parquet",
        "shares": "gradcam/shares.parquet",
    }
    if config["controls"]["pixel_baseline"]:
        files["beyond"] = "controls/beyond_pixels.parquet"
    out = {}
    for prefix, name in (
        ("trained", wildcards.model),
        ("random", twin_of(wildcards.model)),
    ):
        out |= {f"{prefix}_{k}": f"results/{name}/{v}" for k, v in files.items()}
    if config["controls"]["pixel_baseline"]:
        out["trained_pixel_separability"] = pixel_separability_input(wildcards)
    return out


def control_targets():
    """The sanity table and figure of every model with a twin; the pixel baseline's tables."""
    targets = []
    for name, m in MODELS.items():
        if m["role"] == "random":
            continue
        if config["controls"]["pixel_baseline"]:
            targets.append(f"results/{name}/controls/beyond_pixels.parquet")
        if twin_of(name):
            targets += [
                f"results/{name}/controls/sanity.html",
                f"results/{name}/figures/sanity.png",
            ]
    return targets


# --- resources ------------------------------------------------------------------------

from vlmbinding.workflow import resources as res  # noqa: E402

_CONFIGS = {}


def _job_model_config(wildcards):
    """The model's resolved config (read once per model)."""
    name = wildcards.model
    if name not in _CONFIGS:
        _CONFIGS[name] = model_config(MODELS[name])
    return _CONFIGS[name]


def _job_images(stage):
    """What a job's run time scales with (vlmbinding.workflow.resources.runtime_min)."""
    if stage == "explain":
        g = config["gradcam"]
        return 10 * max(g["n_images"], len(g["images"]))  # ~10 prompts per image
    if stage == "train":
        return config["toy"]["scenes"] * config["toy"]["epochs"]
    return number_of_images()


def job_threads(stage):
    """Threads of a model job from the model's size (2 for toy models, 8 for ViT-L)."""
    return lambda wildcards: res.threads(stage, _job_model_config(wildcards))


def job_mem_mb(stage):
    """Memory (MB) of a job from the model's geometry; doubled on a retry."""

    def mem_mb(wildcards, attempt):
        cfg = None if stage == "dataset" else _job_model_config(wildcards)
        n, batch = number_of_images(), config["activations"]["batch_size"]
        return res.mem_mb(stage, cfg, n, batch, attempt)

    return mem_mb


def job_runtime(stage):
    """Run-time limit (minutes) of a job from the model's geometry; doubled on a retry."""

    def runtime(wildcards, attempt):
        cfg = None if stage == "dataset" else _job_model_config(wildcards)
        return res.runtime_min(stage, cfg, _job_images(stage), attempt)

    return runtime
