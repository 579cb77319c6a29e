"""Diagnosing attribute-binding failures of vision-language models through neuron
superposition: the library behind the workflow, usable without Snakemake.

The subpackages follow the workflow's data flow:

    data/           the toy-shapes vocabulary and generator, external datasets, the crop
    models/         weights kinds, pretrained tags, architectures, checkpoints, loading, toy CLIP
    extraction/     recording MLP outputs into the activation store, patch maps
    analysis/       neurons (affinity, entropy, S), separability, correlations, resampling,
                    null model, specification curve, Grad-CAM, binding test, cross-model view
    controls/       pixel baseline, beyond-pixels test, sanity table and its verdicts
    interventions/  which neurons to ablate, the ablation hooks, the stage loop
    report/         figures and HTML pages
    workflow/       pure helpers of the Snakefile (config and start-up checks, entries, resources)

The documented functions are importable from the top (``from vlmbinding import
separability_table``); they are loaded on first use, so ``import vlmbinding`` imports neither
torch nor the subpackages. docs/api.md lists them with one line each.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

# public name -> the module that defines it (relative to this package)
_PUBLIC = {
    # data
    "Vocabulary": "data.vocab",
    "all_pairs": "data.vocab",
    "presence_matrix": "data.vocab",
    "sample_scenes": "data.toyshapes",
    "generate_dataset": "data.toyshapes",
    "import_external": "data.external",
    "dataset_presence": "data.reading",
    "open_checked_store": "data.reading",
    # extraction
    "open_store": "extraction.store",
    "read_pooling_head": "extraction.pooling_head",
    # analysis: neurons and S
    "reduce_tokens": "analysis.neurons",
    "top_k_images": "analysis.neurons",
    "affinities": "analysis.neurons",
    "entropy_bits": "analysis.neurons",
    "neuron_table": "analysis.neurons",
    "select_feature_neurons": "analysis.neurons",
    "feature_mass": "analysis.neurons",
    "superposition_scores": "analysis.neurons",
    # analysis: separability and correlation
    "pair_classes": "analysis.separability",
    "centroid_separability": "analysis.separability",
    "separability_table": "analysis.separability",
    "correlation_table": "analysis.correlation",
    "dependence_aware": "analysis.correlation",
    "mantel_test": "analysis.correlation",
    "pairs_to_matrix": "analysis.correlation",
    "feature_permutations": "analysis.resampling",
    "feature_bootstrap_ci": "analysis.resampling",
    "null_superposition": "analysis.null_model",
    "null_correlation": "analysis.null_model",
    "specification_table": "analysis.specification",
    "random_effects": "analysis.cross_model",
    # analysis: sharing (pairwise, not additive)
    "neuron_tuning": "analysis.tuning",
    "tuned_sets": "analysis.sharing",
    "neuron_overlap": "analysis.sharing",
    "additive_r2": "analysis.sharing",
    "conjunction_presence": "analysis.conjunctions",
    "conjunction_coding": "analysis.conjunctions",
    "object_patch_masks": "analysis.geometry",
    "object_vectors": "analysis.geometry",
    "encoding_geometry": "analysis.geometry",
    "geometry_part": "analysis.geometry_stage",
    "geometry_beyond_table": "analysis.geometry_beyond",
    "train_topk_sae": "analysis.sae",
    "save_dictionary": "analysis.sae",
    "load_dictionary": "analysis.sae",
    "sae_pool_activations": "analysis.sae_tokens",
    "sharing_table": "analysis.sharing_stage",
    "sharing_correlation_table": "analysis.sharing_stage",
    "pool_replicates": "analysis.cross_model",
    "pool_replicate_entropy": "analysis.pooling",
    "pool_replicate_pairs": "analysis.pooling",
    # controls
    "pixel_separability": "controls.pixels",
    "beyond_pixels_table": "controls.beyond_pixels",
    "sanity_table": "controls.sanity",
    "twin_band": "controls.twins",
    # interventions
    "summarise_effects": "interventions.inference",
    # workflow helpers
    "validate_config": "workflow.config",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    """Load a public function's module on first access (PEP 562)."""
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'vlmbinding' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
