rule extract_activations:
    """GPU rule: every block's MLP output for every token, streamed to Zarr (METHOD.md 2);
    a reduced store pools each object's patch vectors when the geometry needs them."""
    input:
        images=dataset_file("images"),
        objects=lambda w: dataset_file("objects")(w) if pools_objects(config) else [],
        weights=weights_input("extract_activations"),
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
        activations=lambda w: extraction_params(
            config, GEOMETRY[w.model]["layers"], LAYERS[w.model]
        ),
        arch_cfg=arch_cfg,
        device=config["device"],
    script:
        "../scripts/extract_activations.py"


rule extract_patch_maps:
    """Per-patch maps of the figure's neuron on its few images: read from a tokens store,
    recomputed by the model for a reduced store (activations.store)."""
    input:
        store=rules.extract_activations.output.store,
        neurons="results/{model}/neurons.parquet",
        images=dataset_file("images"),
        objects=dataset_file("objects"),
        weights=weights_input("extract_patch_maps"),
    output:
        maps="results/{model}/patch_maps.npz",
    log:
        "logs/extract_patch_maps/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    resources:
        gpu=int(config["activations"]["store"] == "reduced"),
    params:
        figures=figure_params(config),
        vocabulary=vocabulary_params(config),
        model=model_params,
        device=config["device"],
    script:
        "../scripts/extract_patch_maps.py"
