rule extract_activations:
    """GPU rule: every block's MLP output for every token, streamed to Zarr (METHOD.md 2)."""
    input:
        images="results/dataset/images.parquet",
        weights=weights_input,
    output:
        store=directory("results/{model}/activations.zarr"),
    log:
        "logs/extract_activations/{model}.log",
    benchmark:
        "benchmarks/extract_activations/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: job_threads("extract")
    resources:
        gpu=1,
        mem_mb=job_mem_mb("extract"),
        runtime=job_runtime("extract"),
    params:
        model=model_params,
        activations=activation_params(),
        arch_cfg=arch_cfg,
        device=config["device"],
    script:
        "../scripts/extract_activations.py"
