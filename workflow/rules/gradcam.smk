rule explain_bindings:
    """GPU rule: Grad-CAM maps of true and swapped binding prompts, with object shares."""
    input:
        images=dataset_file("images"),
        objects=dataset_file("objects"),
        weights=weights_input("explain_bindings"),
    output:
        maps="results/{model}/gradcam/maps.npz",
        shares="results/{model}/gradcam/shares.parquet",
        summary="results/{model}/gradcam/localisation.tsv",
    log:
        "logs/explain_bindings/{model}.log",
    benchmark:
        "benchmarks/explain_bindings/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: job_threads("explain")
    resources:
        gpu=1,
        mem_mb=job_mem_mb("explain"),
        runtime=job_runtime("explain"),
    params:
        model=model_params,
        gradcam=gradcam_params(config),
        template=binding_template,
        preprocess=config["activations"]["preprocess"],
        device=config["device"],
    script:
        "../scripts/explain_bindings.py"
