# Quick jobs: on a cluster they run on the submitting host.
localrules:
    correlate_superposition,


rule measure_separability:
    """Cluster-centre distance D and misclassification M per pair (METHOD.md 5)."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/separability.parquet",
    log:
        "logs/measure_separability/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    resources:
        mem_mb=job_mem_mb("separability"),
        runtime=job_runtime("separability"),
    params:
        pca_variance=config["analysis"]["pca_variance"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/measure_separability.py"


rule correlate_superposition:
    """Correlation of S with D and M: Pearson, Spearman, bootstrap, Mantel (METHOD.md 6)."""
    input:
        superposition=rules.score_superposition.output.superposition,
        separability=rules.measure_separability.output.table,
    output:
        table="results/{model}/correlation.parquet",
    log:
        "logs/correlate_superposition/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        statistics=correlation_params(config),
        primary=config["analysis"]["primary"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/correlate_superposition.py"
