"""Result paths: the workflow's targets and the inputs a rule gathers from several models.

Pure functions of the validated config and the models entries (`models`: name -> entry, as
`entries.model_entries` gives them); paths are relative to the working directory.
"""

from __future__ import annotations

from collections.abc import Collection

from vlmbinding.models.weights import weights_kind
from vlmbinding.workflow.entries import dataset_dir, extra_twin, random_twins_of
from vlmbinding.workflow.params import replicated_models, robustness_pools

# figures of stages that need a text tower (Grad-CAM, the binding test)
TEXT_FIGURES = ("gradcam", "binding_vs_S")
FIGURES = (
    "gradcam",
    "entropy",
    "feature_neurons",
    "patch_activations",
    "superposition_vs_D",
    "superposition_vs_M",
    "binding_vs_S",
    "superposition_null",
)
# the autoencoder basis's figures (rule plot_sae), when sharing.sae is on
SAE_FIGURES = ("sharing_sae", "sae_training", "sae_resolved")


def toy_checkpoint(name: str) -> str:
    return f"results/{name}/toy_model/checkpoint.pt"


def dataset_file(entry: dict, config: dict, kind: str) -> str:
    """The entry's dataset table `kind` (images | objects), from its replicate's dataset
    (models[].replicates.dataset_seeds) or the one dataset."""
    return f"{dataset_dir(entry, config)}/{kind}.parquet"


def weights_file(entry: dict) -> str | list:
    """The checkpoint file a model's jobs read, if its weights are a file; else []."""
    kind = weights_kind(entry["weights"])
    if kind == "toy":
        return toy_checkpoint(entry["name"])
    if kind == "file":
        return entry["weights"]
    return []


def layer_tables(model: str, layers, folder: str = "neurons") -> list[str]:
    """The per-block tables of `model` (results/<model>/<folder>/layer_<l>.parquet)."""
    return [f"results/{model}/{folder}/layer_{layer}.parquet" for layer in sorted(set(layers))]


def robustness_layer_tables(
    config: dict, geometries: dict[str, dict], model: str, main_blocks=None
) -> list[str]:
    """The per-block grid tables of every block in the model's robustness layer pools (and
    the main analysis's blocks, `main_blocks`, which are one of the specifications)."""
    pools = robustness_pools(config, geometries, model, main_blocks)
    blocks = sorted({b for pool in pools.values() for b in pool})
    return layer_tables(model, blocks, "robustness/neurons")


def robustness_overlap(config: dict, model: str) -> list[str]:
    """The overlap z per specification (results/<model>/robustness/overlap.parquet) when
    robustness.measure has overlap; else none."""
    if "overlap" not in config["robustness"]["measure"]:
        return []
    return [f"results/{model}/robustness/overlap.parquet"]


def robustness_omega(config: dict, model: str) -> list[str]:
    """The neuron sharing omega per specification (results/<model>/robustness/omega.parquet)
    when robustness.measure has omega; else none."""
    if "omega" not in config["robustness"]["measure"]:
        return []
    return [f"results/{model}/robustness/omega.parquet"]


def twins_of(models: dict, config: dict, name: str) -> list[str]:
    """The random twins (controls.random_twins) that control trained model `name`; none for
    a replicate on another dataset than the twins' (the sanity table pairs images by id)."""
    twins = random_twins_of(list(models.values()), name)
    if twins and dataset_dir(models[twins[0]], config) != dataset_dir(models[name], config):
        return []
    return twins


def twin_of(models: dict, config: dict, name: str) -> str | None:
    """The first random twin of trained model `name`, or None."""
    twins = twins_of(models, config, name)
    return twins[0] if twins else None


def sanity_models(models: dict, config: dict) -> list[str]:
    """The trained models with a twin: each has a sanity table."""
    return [n for n, m in models.items() if m["role"] != "random" and twin_of(models, config, n)]


def pixel_model(models: dict, name: str) -> str:
    """Whose pixel baseline a model uses: its own; a twin its trained model's (the same
    inputs: the twin has the trained model's preprocessing)."""
    m = models[name]
    if m["role"] != "random":
        return name
    return next(n for n, e in models.items() if e["base"] == m["base"] and e["role"] != "random")


def pixel_separability(models: dict, name: str) -> str:
    return f"results/{pixel_model(models, name)}/separability_pixels.parquet"


def sanity_inputs(
    models: dict, config: dict, name: str, no_text: Collection[str] = ()
) -> dict[str, str]:
    """The trained model's and its twin's tables the sanity table compares; no binding
    trials or Grad-CAM shares for a model in `no_text` (a tower without a text tower)."""
    files = {
        "neurons": "neurons.parquet",
        "superposition": "superposition.parquet",
        "separability": "separability.parquet",
        "correlation": "correlation.parquet",
        "entropy_halves": "controls/entropy_halves.parquet",
    }
    if name not in no_text:
        files |= {"trials": "binding/trials.parquet", "shares": "gradcam/shares.parquet"}
    pixels = config["controls"]["pixel_baseline"]
    if pixels:
        files["beyond"] = "controls/beyond_pixels.parquet"
    out = {}
    named = [("trained", name)]
    named += [(f"random{j}", twin) for j, twin in enumerate(twins_of(models, config, name))]
    for prefix, model in named:
        out |= {f"{prefix}_{k}": f"results/{model}/{v}" for k, v in files.items()}
    if pixels:
        out["trained_pixel_separability"] = pixel_separability(models, name)
    return out | sharing_sanity_inputs(models, config, name)


def sae_enabled(config: dict) -> bool:
    """Whether the sharing stage has the autoencoder basis (sharing.sae.enabled)."""
    s = config["sharing"]
    return bool(s["enabled"] and s.get("sae", {}).get("enabled", False))


def sharing_parts(config: dict) -> list[str]:
    """The parts of a model's sharing table (results/<model>/sharing/<part>.parquet) that
    gather_sharing stacks: the neuron basis always; the encoding geometry when
    sharing.geometry.enabled; the autoencoder basis (sae) when sharing.sae.enabled."""
    parts = ["neurons"]
    if config["sharing"]["geometry"]["enabled"]:
        parts.append("geometry")
    if sae_enabled(config):
        parts.append("sae")
    return parts


def sae_files(config: dict, model: str, layers, name: str) -> list[str]:
    """The autoencoder basis's per-layer files of `model` over `layers` (the sharing pool):
    name 'training' = each layer's training.tsv, 'dictionaries' = each layer's dictionary of
    every seed of sharing.sae.seeds (results/<model>/sae/layer_<L>/seed-<s>/...)."""
    base = f"results/{model}/sae"
    if name == "training":
        return [f"{base}/layer_{layer}/training.tsv" for layer in layers]
    seeds = config["sharing"]["sae"]["seeds"]
    return [
        f"{base}/layer_{layer}/seed-{seed}/dictionary.safetensors"
        for layer in layers
        for seed in seeds
    ]


def sharing_targets(config: dict, name: str) -> list[str]:
    """A model's sharing tables and figure, when sharing.enabled."""
    if not config["sharing"]["enabled"]:
        return []
    base = f"results/{name}"
    tables = ["sharing.parquet", "sharing_correlation.parquet", "figures/sharing.png"]
    tables.append("sharing.html")
    if config["sharing"]["geometry"]["enabled"]:
        tables += ["geometry_beyond.parquet", "figures/geometry.png"]
    if sae_enabled(config):
        tables.append("sae/resolved.tsv")
        tables += [f"figures/{f}.png" for f in SAE_FIGURES]
    return [f"{base}/{t}" for t in tables]


def sharing_page_inputs(
    models: dict, config: dict, name: str, layers, no_text: Collection[str] = ()
) -> dict:
    """Inputs of a model's sharing page (rule tabulate_sharing): S's and the measures'
    correlations; the sanity table when the model has one (a trained model with a twin);
    the partial correlations beyond interference when sharing.geometry is on (and the
    model has a text tower: they read binding accuracy); the resolved pairs and every
    layer's training curves (`layers`: the sharing pool's) when sharing.sae is on."""
    base = f"results/{name}"
    out = {
        "correlation": f"{base}/correlation.parquet",
        "sharing_correlation": f"{base}/sharing_correlation.parquet",
    }
    if name in sanity_models(models, config):
        out["sanity"] = f"{base}/controls/sanity.parquet"
    if config["sharing"]["geometry"]["enabled"] and name not in no_text:
        out["beyond"] = f"{base}/geometry_beyond.parquet"
    if sae_enabled(config):
        out["resolved"] = f"{base}/sae/resolved.tsv"
        out["training"] = sae_files(config, name, layers, "training")
    return out


def sharing_sanity_inputs(models: dict, config: dict, name: str) -> dict[str, str]:
    """The trained model's and every twin's sharing tables (random<j>_sharing, ...), for the
    sanity table's overlap rows, combined over twins as the S rows are."""
    twins = twins_of(models, config, name)
    if not config["sharing"]["enabled"] or not twins:
        return {}
    out = {}
    named = [("trained", name)] + [(f"random{j}", t) for j, t in enumerate(twins)]
    for prefix, model in named:
        out[f"{prefix}_sharing"] = f"results/{model}/sharing.parquet"
        out[f"{prefix}_sharing_correlation"] = f"results/{model}/sharing_correlation.parquet"
    return out


def comparison_sharing(models: dict, config: dict, table: str) -> list[str]:
    """Every model's sharing table `table` (sharing.parquet or sharing_correlation.parquet),
    in model order, for the cross-model view; none when sharing.enabled is off."""
    if not config["sharing"]["enabled"]:
        return []
    return [f"results/{name}/{table}" for name in models]


def result_tables(models: dict, name: str, no_text: Collection[str] = ()) -> dict[str, str]:
    """Inputs of the model's table page (the zero-shot table only for toy models; the
    binding and Grad-CAM tables only for a model with a text tower, not in `no_text`)."""
    base = f"results/{name}"
    tables = {
        "correlation": f"{base}/correlation.parquet",
        "null": f"{base}/superposition_null.parquet",
        "null_correlation": f"{base}/superposition_null_correlation.parquet",
    }
    if name not in no_text:
        tables |= {
            "binding_correlation": f"{base}/binding/correlation.parquet",
            "binding": f"{base}/binding/accuracy.tsv",
            "binding_per_count": f"{base}/binding/accuracy_per_count.tsv",
            "localisation": f"{base}/gradcam/localisation.tsv",
        }
    if models[name]["weights"] == "toy":
        tables["zero_shot"] = f"{base}/toy_model/zero_shot.tsv"
    return tables


def comparison_inputs(
    models: dict, config: dict, no_text: Collection[str] = ()
) -> dict[str, list[str]]:
    """The tables of every model the cross-model view reads, in model order (a zero-shot
    table only for each toy model; binding tables only for models with a text tower, not in
    `no_text`; the sharing tables when sharing.enabled, else none; the entropy half samples
    of each trained replicate of a base with two or more, `params.replicated_models`)."""
    tables = {
        "correlation": "correlation.parquet",
        "neurons": "neurons.parquet",
        "superposition": "superposition.parquet",
        "separability": "separability.parquet",
    }
    out = {k: [f"results/{name}/{v}" for name in models] for k, v in tables.items()}
    texts = with_text(models, no_text)
    out["binding"] = [f"results/{name}/binding/accuracy.tsv" for name in texts]
    out["binding_correlation"] = [f"results/{name}/binding/correlation.parquet" for name in texts]
    toys = [name for name, m in models.items() if m["weights"] == "toy"]
    out["zero_shot"] = [f"results/{name}/toy_model/zero_shot.tsv" for name in toys]
    out["entropy_halves"] = [
        f"results/{name}/controls/entropy_halves.parquet" for name in replicated_models(models)
    ]
    for key in ("sharing", "sharing_correlation"):
        out[key] = comparison_sharing(models, config, f"{key}.parquet")
    return out


def binding_per_pair(name: str, no_text: Collection[str] = ()) -> list[str]:
    """The per-pair binding accuracy a model's sharing correlations read ([] without a text
    tower: the sharing table is then correlated with D and M only)."""
    return [] if name in no_text else [f"results/{name}/binding/accuracy_per_pair.parquet"]


def with_text(models, no_text: Collection[str] = ()) -> list[str]:
    """The models (names, in order) that have a text tower: the binding test runs on them."""
    return [name for name in models if name not in no_text]


def intervention_targets(config: dict, name: str) -> list[str]:
    """The intervention figures of a model, when interventions.enabled."""
    if not config["interventions"]["enabled"]:
        return []
    return [f"results/{name}/figures/{f}.png" for f in ("interventions", "interventions_example")]


def control_targets(models: dict, config: dict) -> list[str]:
    """The sanity table and figure of every model with a twin, the verdicts' front page;
    the pixel baseline's tables."""
    targets = ["results/verdicts.html"] if sanity_models(models, config) else []
    for name, m in models.items():
        if m["role"] == "random":
            continue
        if config["controls"]["pixel_baseline"]:
            targets.append(f"results/{name}/controls/beyond_pixels.parquet")
        if twin_of(models, config, name):
            sanity = ("controls/sanity.html", "figures/sanity.png")
            targets += [f"results/{name}/{f}" for f in sanity]
    return targets


def all_targets(models: dict, config: dict, no_text: Collection[str] = ()) -> list[str]:
    """Every figure of every model, the cross-model view and the tables behind them; no
    Grad-CAM or binding figure for a model in `no_text` (without a text tower)."""
    targets = ["results/comparison/models.png", "results/config.html"]
    for name, m in models.items():
        if extra_twin(m):  # only the sanity table reads a second or later twin
            continue
        names = list(FIGURES) + (["zero_shot"] if m["weights"] == "toy" else [])
        if name in no_text:
            names = [f for f in names if f not in TEXT_FIGURES]
        targets += [f"results/{name}/figures/{f}.png" for f in names]
        targets.append(f"results/{name}/tables.html")
        if config["robustness"]["enabled"]:
            targets.append(f"results/{name}/figures/specification_curve.png")
        targets += intervention_targets(config, name)
        targets += sharing_targets(config, name)
    return targets + control_targets(models, config)
