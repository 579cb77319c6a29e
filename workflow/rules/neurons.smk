# Quick jobs: on a cluster they run on the submitting host.
localrules:
    gather_neurons,
    score_superposition,


rule neuron_statistics:
    """One block's neurons: token reduction, top-k affinities, entropy (METHOD.md 3)."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/neurons/layer_{layer}.parquet",
    log:
        "logs/neuron_statistics/{model}/layer_{layer}.log",
    benchmark:
        "benchmarks/neuron_statistics/{model}/layer_{layer}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=job_mem_mb("layer"),
        runtime=job_runtime("layer"),
    params:
        neurons=neuron_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/neuron_statistics.py"


rule gather_neurons:
    """All analysed blocks' neurons in one table."""
    input:
        lambda w: targets.layer_tables(w.model, LAYERS[w.model]),
    output:
        table="results/{model}/neurons.parquet",
    log:
        "logs/gather_neurons/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/gather_neurons.py"


rule score_superposition:
    """The lowest-entropy neurons and the superposition score S per pair (METHOD.md 4)."""
    input:
        neurons=rules.gather_neurons.output.table,
    output:
        feature_neurons="results/{model}/feature_neurons.parquet",
        superposition="results/{model}/superposition.parquet",
    log:
        "logs/score_superposition/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        selection=selection_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/score_superposition.py"
