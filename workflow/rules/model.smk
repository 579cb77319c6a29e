rule train_toy_model:
    """Train the offline toy CLIP on captioned toy scenes and test it zero-shot."""
    input:
        analysis_objects=dataset_file("objects"),  # scenes training must avoid
    output:
        checkpoint=targets.toy_checkpoint("{model}"),
        zero_shot="results/{model}/toy_model/zero_shot.tsv",
        curve="results/{model}/toy_model/training_curve.tsv",
        evaluation="results/{model}/toy_model/evaluation.tsv",
    log:
        "logs/train_toy_model/{model}.log",
    benchmark:
        "benchmarks/train_toy_model/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: job_threads("train")
    resources:
        gpu=1,
        mem_mb=job_mem_mb("train"),
        runtime=job_runtime("train"),
    params:
        model=model_params,
        toy=lambda w: toy_params(config, MODELS[w.model]),
        arch_cfg=arch_cfg,
        device=config["device"],
    script:
        "../scripts/train_toy_model.py"
