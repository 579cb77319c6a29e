# Do two features share neurons? Pairwise measures of sharing that are not sums of
# per-feature terms (docs/sharing.md): results/<model>/sharing.parquet, their
# correlations with D, M and binding accuracy, a figure, rows of the sanity table.
# Each measure or basis writes its part, results/<model>/sharing/<part>.parquet, with the
# same columns; gather_sharing stacks the parts the config asks for (sharing_parts).


localrules:
    gather_sharing,
    correlate_sharing,
    plot_sharing,


rule measure_sharing:
    """Co-tuned neuron overlap of every pair, conjunctive and separate coding (neuron basis)."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/sharing/neurons.parquet",
    log:
        "logs/measure_sharing/{model}.log",
    benchmark:
        "benchmarks/measure_sharing/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    resources:
        # one block's reduction at a time (as neuron_statistics) plus the pool's float64 copies
        mem_mb=lambda w, attempt: job_mem_mb("layer")(w, attempt) + 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        sharing=sharing_params(config),
        pool=lambda w: sharing_pool(config, LAYERS[w.model]),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/measure_sharing.py"


rule gather_sharing:
    """The parts of the sharing table (neuron basis, and the others the config enables)."""
    input:
        parts=lambda w: [
            f"results/{w.model}/sharing/{part}.parquet" for part in SHARING_PARTS
        ],
    output:
        table="results/{model}/sharing.parquet",
    log:
        "logs/gather_sharing/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/gather_sharing.py"


rule correlate_sharing:
    """Each measure of sharing (value and z) against D, M and binding accuracy."""
    input:
        sharing=rules.gather_sharing.output.table,
        separability=rules.measure_separability.output.table,
        per_pair=lambda w: targets.binding_per_pair(w.model, NO_TEXT),
    output:
        table="results/{model}/sharing_correlation.parquet",
    log:
        "logs/correlate_sharing/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        statistics=correlation_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/correlate_sharing.py"


rule plot_sharing:
    """The overlap's z against D and against M, with intervals."""
    input:
        sharing=rules.gather_sharing.output.table,
        separability=rules.measure_separability.output.table,
        correlation=rules.correlate_sharing.output.table,
    output:
        png=report(
            "results/{model}/figures/sharing.png",
            caption="../report/sharing.rst",
            category="Neuron sharing",
            subcategory="{model}",
            labels={"figure": "overlap z against D and M"},
        ),
        pdf="results/{model}/figures/sharing.pdf",
    log:
        "logs/plot_sharing/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        space=config["figures"]["space"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/plot_sharing.py"
