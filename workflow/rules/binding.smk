# Quick jobs: on a cluster they run on the submitting host.
localrules:
    correlate_binding,


rule evaluate_binding:
    """GPU rule: does the model prefer the true caption over one with swapped colours?

    Image embeddings from the activation store; only the captions are encoded."""
    input:
        images=dataset_file("images"),
        objects=dataset_file("objects"),
        store=rules.extract_activations.output.store,
        weights=weights_input("evaluate_binding"),
    output:
        trials="results/{model}/binding/trials.parquet",
        overall="results/{model}/binding/accuracy.tsv",
        per_count="results/{model}/binding/accuracy_per_count.tsv",
        per_pair="results/{model}/binding/accuracy_per_pair.parquet",
    log:
        "logs/evaluate_binding/{model}.log",
    benchmark:
        "benchmarks/evaluate_binding/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: job_threads("binding")
    resources:
        gpu=1,
        mem_mb=job_mem_mb("binding"),
        runtime=job_runtime("binding"),
    params:
        model=model_params,
        template=binding_template,
        vocabulary=vocabulary_params(config),
        device=config["device"],
    script:
        "../scripts/evaluate_binding.py"


rule correlate_binding:
    """Per-pair binding accuracy against S, with the same statistics as S against D."""
    input:
        per_pair=rules.evaluate_binding.output.per_pair,
        superposition=rules.score_superposition.output.superposition,
    output:
        table="results/{model}/binding/correlation.parquet",
    log:
        "logs/correlate_binding/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        statistics=correlation_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/correlate_binding.py"
