# Quick jobs: on a cluster they run on the submitting host.
localrules:
    plot_gradcam,
    plot_neurons,
    plot_correlation,
    plot_binding,
    plot_zero_shot,
    compare_models,


rule plot_gradcam:
    """Figure 1: Grad-CAM grid (rows images, columns prompts)."""
    input:
        maps=rules.explain_bindings.output.maps,
        shares=rules.explain_bindings.output.shares,
        images=dataset_file("images"),
    output:
        png=report(
            "results/{model}/figures/gradcam.png",
            caption="../report/gradcam.rst",
            category="{model}",
            subcategory="4 Grad-CAM",
            labels={"figure": "Grad-CAM binding maps"},
        ),
        pdf="results/{model}/figures/gradcam.pdf",
    log:
        "logs/plot_gradcam/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        max_rows=config["figures"]["gradcam_rows"],
        layer=config["gradcam"]["layer"],
        module=config["gradcam"]["module"],
    script:
        "../scripts/plot_gradcam.py"


rule plot_neurons:
    """Figures 2-4: entropy histogram, feature-neuron gallery, patch-wise activation maps."""
    input:
        neurons=rules.gather_neurons.output.table,
        feature_neurons=rules.score_superposition.output.feature_neurons,
        patch_maps=rules.extract_patch_maps.output.maps,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        entropy_png=report(
            "results/{model}/figures/entropy.png",
            caption="../report/entropy.rst",
            category="{model}",
            subcategory="2 Neurons",
            labels={"figure": "entropy histogram"},
        ),
        entropy_pdf="results/{model}/figures/entropy.pdf",
        gallery_png=report(
            "results/{model}/figures/feature_neurons.png",
            caption="../report/feature_neurons.rst",
            category="{model}",
            subcategory="2 Neurons",
            labels={"figure": "feature neurons"},
        ),
        gallery_pdf="results/{model}/figures/feature_neurons.pdf",
        patches_png=report(
            "results/{model}/figures/patch_activations.png",
            caption="../report/patch_activations.rst",
            category="{model}",
            subcategory="2 Neurons",
            labels={"figure": "patch-wise activations"},
        ),
        patches_pdf="results/{model}/figures/patch_activations.pdf",
    log:
        "logs/plot_neurons/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        figures=figure_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/plot_neurons.py"


rule plot_correlation:
    """Figure 5: S against D and against M."""
    input:
        superposition=rules.score_superposition.output.superposition,
        separability=rules.measure_separability.output.table,
        correlation=rules.correlate_superposition.output.table,
    output:
        D_png=report(
            "results/{model}/figures/superposition_vs_D.png",
            caption="../report/superposition_vs_D.rst",
            category="{model}",
            subcategory="3 Superposition and separability",
            labels={"figure": "S against D"},
        ),
        D_pdf="results/{model}/figures/superposition_vs_D.pdf",
        M_png=report(
            "results/{model}/figures/superposition_vs_M.png",
            caption="../report/superposition_vs_M.rst",
            category="{model}",
            subcategory="3 Superposition and separability",
            labels={"figure": "S against M"},
        ),
        M_pdf="results/{model}/figures/superposition_vs_M.pdf",
    log:
        "logs/plot_correlation/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        space=config["figures"]["space"],
        label_extremes=config["figures"]["label_extremes"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/plot_correlation.py"


rule plot_binding:
    """Figure 6: swapped-caption binding accuracy against S."""
    input:
        per_pair=rules.evaluate_binding.output.per_pair,
        superposition=rules.score_superposition.output.superposition,
        correlation=rules.correlate_binding.output.table,
    output:
        png=report(
            "results/{model}/figures/binding_vs_S.png",
            caption="../report/binding_vs_S.rst",
            category="{model}",
            subcategory="5 Binding test",
            labels={"figure": "binding accuracy against S"},
        ),
        pdf="results/{model}/figures/binding_vs_S.pdf",
    log:
        "logs/plot_binding/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/plot_binding.py"


rule plot_zero_shot:
    """Figure 7: the toy model's zero-shot accuracies."""
    input:
        zero_shot=rules.train_toy_model.output.zero_shot,
    output:
        png=report(
            "results/{model}/figures/zero_shot.png",
            caption="../report/toy_zero_shot.rst",
            category="{model}",
            subcategory="1 Toy model",
            labels={"figure": "zero-shot accuracy"},
        ),
        pdf="results/{model}/figures/zero_shot.pdf",
    log:
        "logs/plot_zero_shot/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/plot_zero_shot.py"


rule compare_models:
    """The cross-model view: correlations, binding accuracy, entropies per model."""
    input:
        unpack(lambda w: targets.comparison_inputs(MODELS, config, NO_TEXT)),
    output:
        **comparison_sharing_output(config),
        table="results/comparison/models.tsv",
        html=report(
            "results/comparison/models.html",
            **across_models("model_comparison", "model comparison table"),
        ),
        png=report(
            "results/comparison/models.png",
            **across_models("model_comparison", "model comparison"),
        ),
        pdf="results/comparison/models.pdf",
        pooled="results/comparison/replicates.tsv",
        entropy="results/comparison/replicate_entropy.tsv",
        means="results/comparison/replicate_means.tsv",
        differences="results/comparison/replicate_differences.tsv",
        replicates_png=report(
            "results/comparison/replicates.png",
            **across_models("replicates", "replicates pooled"),
        ),
        replicates_pdf="results/comparison/replicates.pdf",
    log:
        "logs/compare_models.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        entries=comparison_params(config, MODELS, NO_TEXT),
        vocabulary=vocabulary_params(config),
        statistics=correlation_params(config),
    script:
        "../scripts/compare_models.py"
