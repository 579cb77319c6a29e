def intervention_pool(wildcards):
    """The analysed layer pool whose tuned sets `select: shared` intersects."""
    a = config["analysis"]
    return {
        "layers": LAYERS[wildcards.model],
        "reduce": a["reduce"],
        "tokens": a["tokens"],
    }


rule intervene_neurons:
    """GPU rule: ablate each pair's shared (or pair-ratio) neurons, single-feature and
    random controls; ΔD, ΔM, Δbinding."""
    input:
        unpack(intervention_inputs),
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
        interventions=intervention_params(),
        vocabulary=vocabulary_params(),
        template=binding_template,
        statistics=correlation_params(),
        pca_variance=config["analysis"]["pca_variance"],
        device=config["device"],
        pool=intervention_pool,
    script:
        "../scripts/intervene_neurons.py"


rule plot_interventions:
    """Figures: ΔM and ΔD of each pair against S with the control band; one example pair."""
    input:
        effects="results/{model}/interventions/effects.parquet",
        summary="results/{model}/interventions/summary.tsv",
        example="results/{model}/interventions/example.npz",
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
