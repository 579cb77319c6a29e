rule superposition_null:
    """S under permuted image labels: each pair's null and the correlation's null."""
    input:
        neurons=rules.gather_neurons.output.table,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
        separability=rules.measure_separability.output.table,
    output:
        table="results/{model}/superposition_null.parquet",
        correlation="results/{model}/superposition_null_correlation.parquet",
    log:
        "logs/superposition_null/{model}.log",
    benchmark:
        "benchmarks/superposition_null/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    params:
        null=null_params(config),
        selection=selection_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/superposition_null.py"


rule plot_superposition_null:
    """Each pair's S against its null under permuted image labels."""
    input:
        table=rules.superposition_null.output.table,
    output:
        png=report(
            "results/{model}/figures/superposition_null.png",
            caption="../report/superposition_null.rst",
            category="{model}",
            subcategory="3 Superposition and separability",
            labels={"figure": "S against its null"},
        ),
        pdf="results/{model}/figures/superposition_null.pdf",
    log:
        "logs/plot_superposition_null/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/plot_superposition_null.py"
