# Quick jobs: on a cluster they run on the submitting host.
localrules:
    plot_interventions,


rule intervene_neurons:
    """GPU rule: ablate each pair's shared (or pair-ratio) neurons, single-feature and
    random controls; ΔD, ΔM, Δbinding."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
        superposition=rules.score_superposition.output.superposition,
        feature_neurons=rules.score_superposition.output.feature_neurons,
        weights=weights_input("intervene_neurons"),
    output:
        effects="results/{model}/interventions/effects.parquet",
        summary="results/{model}/interventions/summary.tsv",
        example="results/{model}/interventions/example.npz",
    log:
        "logs/intervene_neurons/{model}.log",
    benchmark:
        "benchmarks/intervene_neurons/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        model=model_params,
        interventions=intervention_params(config),
        vocabulary=vocabulary_params(config),
        template=binding_template,
        statistics=correlation_params(config),
        pca_variance=config["analysis"]["pca_variance"],
        device=config["device"],
        pool=lambda w: sharing_pool(config, LAYERS[w.model]),
    script:
        "../scripts/intervene_neurons.py"


rule plot_interventions:
    """Figures: ΔM and ΔD of each pair against S with the control band; one example pair."""
    input:
        effects=rules.intervene_neurons.output.effects,
        summary=rules.intervene_neurons.output.summary,
        example=rules.intervene_neurons.output.example,
    output:
        png=report(
            "results/{model}/figures/interventions.png",
            caption="../report/interventions.rst",
            category="{model}",
            subcategory="7 Interventions",
            labels={"figure": "neuron ablation vs S"},
        ),
        pdf="results/{model}/figures/interventions.pdf",
        example_png=report(
            "results/{model}/figures/interventions_example.png",
            caption="../report/interventions_example.rst",
            category="{model}",
            subcategory="7 Interventions",
            labels={"figure": "ablation example"},
        ),
        example_pdf="results/{model}/figures/interventions_example.pdf",
    log:
        "logs/plot_interventions/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/plot_interventions.py"
