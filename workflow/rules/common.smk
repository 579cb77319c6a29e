"""What every stage needs: the validated config, the models, their dataset and weights
inputs, job resources. Pure helpers live in the library (vlmbinding.workflow: checks,
params, targets, resources); the rules call them with `config` and wildcard values."""

import sys
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from snakemake.logging import logger

from vlmbinding.data.external import DatasetError
from vlmbinding.models.applicability import startup_notes, text_less
from vlmbinding.workflow import checks, resources, targets
from vlmbinding.workflow.config import ConfigError
from vlmbinding.workflow.entries import identity, model_entries
from vlmbinding.workflow.params import (
    comparison_params,
    correlation_params,
    dataset_params,
    dataset_seed_params,
    entropy_resampling_params,
    extraction_params,
    figure_params,
    gradcam_params,
    intervention_params,
    neuron_params,
    null_params,
    pools_objects,
    robustness_neuron_params,
    robustness_main,
    robustness_omega_params,
    robustness_overlap_params,
    robustness_params,
    robustness_pools,
    selection_params,
    sharing_params,
    sharing_pool,
    sae_params,
    toy_params,
    vocabulary_params,
)

REPO = Path(workflow.basedir)
ARCH_DIR = REPO / "resources" / "models"

# Start-up checks of the whole run (a model's weights: `weights_input`, when it is needed).
try:
    checks.check_config(config, REPO / "config" / "schema.yaml")
    MODELS = {m["name"]: m for m in model_entries(config)}
    IMAGE_IDS = checks.dataset_image_ids(config)
    GEOMETRY = checks.geometries(MODELS, ARCH_DIR)
    LAYERS = checks.check_analysis(config, GEOMETRY, IMAGE_IDS)
    checks.check_sharing(config, GEOMETRY, LAYERS, len(IMAGE_IDS))
    checks.check_pooling_head(config, GEOMETRY, MODELS)
    checks.check_sae(config, MODELS, len(IMAGE_IDS))
    SHARING_PARTS = targets.sharing_parts(config)
except (ConfigError, DatasetError, ValueError) as e:
    raise WorkflowError(str(e)) from None

# Towers without a text tower: no Grad-CAM or binding jobs; said once per models entry.
NO_TEXT = text_less(GEOMETRY)
for note in startup_notes(GEOMETRY, MODELS):
    logger.info(note)


@cache
def model_config(name):
    """The resolved architecture config of model `name` (read once)."""
    return checks.model_config(MODELS[name], ARCH_DIR)


@cache
def check_weights(name):
    """Stop the run if model `name`'s weights cannot be loaded here (torch-free)."""
    problem = checks.weights_problem_of(MODELS[name], ARCH_DIR)
    if problem:
        raise WorkflowError(problem)


def weights_input(rule):
    """Input function of `rule`: its model's checkpoint file (if the weights are a file).

    The model's weights are checked here, when the DAG holds a job of `rule` whose outputs
    are not all there yet (still before any job runs): the dataset, and the analysis of an
    existing store, need no weights."""

    def weights(wildcards):
        outputs = expand(list(getattr(rules, rule).output), **dict(wildcards.items()))
        if not all(Path(f).exists() for f in outputs):
            check_weights(wildcards.model)
        return targets.weights_file(MODELS[wildcards.model])

    return weights


def dataset_file(kind):
    """Input function: the model's dataset table `kind` (images | objects)."""
    return lambda w: targets.dataset_file(MODELS[w.model], config, kind)


def model_params(wildcards):
    """What identifies a model's weights and data, as plain values (tracked for reruns)."""
    return identity(MODELS[wildcards.model], config)


def arch_cfg(wildcards):
    """The architecture config, tracked as a param: editing resources/models reruns."""
    return model_config(wildcards.model)


def binding_template(wildcards):
    """A function, so Snakemake does not read {color} and {shape} as wildcards."""
    return config["binding"]["template"]


# --- job resources (vlmbinding.workflow.resources), from the model's geometry ---------


def job_threads(stage):
    """Threads of a model job from the model's size (2 for toy models, 8 for ViT-L)."""
    return lambda wildcards: resources.threads(stage, model_config(wildcards.model))


def job_mem_mb(stage):
    """Memory (MB) of a job from the model's geometry; doubled on a retry."""

    def mem_mb(wildcards, attempt):
        cfg = None if stage == "dataset" else model_config(wildcards.model)
        batch = config["activations"]["batch_size"]
        return resources.mem_mb(stage, cfg, len(IMAGE_IDS), batch, attempt)

    return mem_mb


def job_runtime(stage):
    """Run-time limit (minutes) of a job from the model's geometry; doubled on a retry."""

    def runtime(wildcards, attempt):
        cfg = None if stage == "dataset" else model_config(wildcards.model)
        n = resources.job_images(stage, config, len(IMAGE_IDS))
        return resources.runtime_min(stage, cfg, n, attempt)

    return runtime


def across_models(caption, label):
    """report() settings of a result of the cross-model view: the report's 'Across models'
    category, the caption report/<caption>.rst, the label `label`."""
    return dict(
        caption=f"../report/{caption}.rst",
        category="Across models",
        labels={"figure": label},
    )


def comparison_sharing_output(config):
    """The cross-model view's table of every sharing measure per model
    (results/comparison/sharing.tsv, in the report), when sharing.enabled; else nothing.
    """
    if not config["sharing"]["enabled"]:
        return {}
    return dict(
        sharing=report(
            "results/comparison/sharing.tsv",
            **across_models("comparison_sharing", "every sharing measure per model"),
        )
    )
