rule specification_neurons:
    """One block's affinities and entropy under every top_k, reduce and tokens choice."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/robustness/neurons/layer_{layer}.parquet",
    log:
        "logs/specification_neurons/{model}/layer_{layer}.log",
    benchmark:
        "benchmarks/specification_neurons/{model}/layer_{layer}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    params:
        grid=robustness_neuron_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/specification_neurons.py"


rule specification_overlap:
    """The co-tuned neuron overlap z under every layer pool, reduction and token set."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/robustness/overlap.parquet",
    log:
        "logs/specification_overlap/{model}.log",
    benchmark:
        "benchmarks/specification_overlap/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    resources:
        # one block read at a time; the pools' reduced [image, neuron] and the tuning's copies
        mem_mb=lambda w, attempt: job_mem_mb("layer")(w, attempt) + 2000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        pools=lambda w: robustness_pools(config, GEOMETRY, w.model, LAYERS[w.model]),
        grid=robustness_overlap_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/specification_overlap.py"


rule specification_omega:
    """The encoding geometry's neuron sharing z (omega) under every layer pool."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/robustness/omega.parquet",
    log:
        "logs/specification_omega/{model}.log",
    benchmark:
        "benchmarks/specification_omega/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    resources:
        # one block's patch tokens at a time, and every pooled block's object vectors
        mem_mb=lambda w, attempt: job_mem_mb("layer")(w, attempt) + 2000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        pools=lambda w: robustness_pools(config, GEOMETRY, w.model, LAYERS[w.model]),
        grid=robustness_omega_params(config),
        canvas=[config["dataset"]["width"], config["dataset"]["height"]],
        preprocess=config["activations"]["preprocess"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/specification_omega.py"


rule assemble_specifications:
    """S under every specification and its correlation with D and M."""
    input:
        layers=lambda w: targets.robustness_layer_tables(
            config, GEOMETRY, w.model, LAYERS[w.model]
        ),
        separability=rules.measure_separability.output.table,
        # robustness.measure has overlap: its z per specification (none otherwise)
        overlap=targets.robustness_overlap(config, "{model}"),
        # robustness.measure has omega: the neuron sharing's z per layer pool (none otherwise)
        omega=targets.robustness_omega(config, "{model}"),
    output:
        table="results/{model}/robustness/specifications.parquet",
        summary="results/{model}/robustness/summary.tsv",
    log:
        "logs/assemble_specifications/{model}.log",
    benchmark:
        "benchmarks/assemble_specifications/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    params:
        grid=robustness_params(config),
        pools=lambda w: robustness_pools(config, GEOMETRY, w.model, LAYERS[w.model]),
        main=lambda w: robustness_main(config, LAYERS[w.model]),
        ratio_threshold=config["analysis"]["ratio_threshold"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/assemble_specifications.py"


rule plot_specification_curve:
    """The specification curve: sorted estimates with intervals over the choices made."""
    input:
        table=rules.assemble_specifications.output.table,
        summary=rules.assemble_specifications.output.summary,
    output:
        png=report(
            "results/{model}/figures/specification_curve.png",
            caption="../report/specification_curve.rst",
            category="{model}",
            subcategory="3 Superposition and separability",
            labels={"figure": "specification curve"},
        ),
        pdf="results/{model}/figures/specification_curve.pdf",
    log:
        "logs/plot_specification_curve/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        alpha=config["robustness"]["alpha"],
    script:
        "../scripts/plot_specification_curve.py"
