rule measure_separability:
    """Cluster-centre distance D and misclassification M per pair (METHOD.md 5)."""
    input:
        store="results/{model}/activations.zarr",
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
        vocabulary=vocabulary_params(),
    script:
        "../scripts/measure_separability.py"


rule correlate_superposition:
    """Correlation of S with D and M: Pearson, Spearman, bootstrap, Mantel (METHOD.md 6)."""
    input:
        superposition="results/{model}/superposition.parquet",
        separability="results/{model}/separability.parquet",
    output:
        table="results/{model}/correlation.parquet",
    log:
        "logs/correlate_superposition/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        statistics=correlation_params(),
        vocabulary=vocabulary_params(),
    script:
        "../scripts/correlate_superposition.py"
