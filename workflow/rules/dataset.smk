if config["dataset"]["external"]:

    rule import_dataset:
        """Copy a user's dataset (validated at start-up) into results/dataset/."""
        input:
            objects=config["dataset"]["external"]["objects"],
            images=config["dataset"]["external"]["images"],
        output:
            images=directory("results/dataset/images"),
            images_table="results/dataset/images.parquet",
            objects_table="results/dataset/objects.parquet",
        log:
            "logs/import_dataset.log",
        conda:
            "../../envs/workflow.yaml"
        resources:
            mem_mb=job_mem_mb("dataset"),
            runtime=job_runtime("dataset"),
        params:
            dataset=dataset_params(config),
            preprocess=config["activations"]["preprocess"],
        script:
            "../scripts/import_dataset.py"

else:

    rule generate_dataset:
        """Draw the toy-shapes images (METHOD.md section 1) and their tables."""
        output:
            images=directory("results/dataset/images"),
            images_table="results/dataset/images.parquet",
            objects_table="results/dataset/objects.parquet",
        log:
            "logs/generate_dataset.log",
        benchmark:
            "benchmarks/generate_dataset.tsv"
        conda:
            "../../envs/workflow.yaml"
        resources:
            mem_mb=job_mem_mb("dataset"),
            runtime=job_runtime("dataset"),
        params:
            dataset=dataset_params(config),
        script:
            "../scripts/generate_dataset.py"

    rule generate_replicate_dataset:
        """The dataset drawn with another seed, for replicates over dataset seeds
        (models[].replicates.dataset_seeds)."""
        output:
            images=directory("results/dataset/seed-{seed}/images"),
            images_table="results/dataset/seed-{seed}/images.parquet",
            objects_table="results/dataset/seed-{seed}/objects.parquet",
        log:
            "logs/generate_dataset/seed-{seed}.log",
        benchmark:
            "benchmarks/generate_dataset/seed-{seed}.tsv"
        wildcard_constraints:
            seed=r"\d+",
        conda:
            "../../envs/workflow.yaml"
        resources:
            mem_mb=job_mem_mb("dataset"),
            runtime=job_runtime("dataset"),
        params:
            dataset=lambda w: dataset_seed_params(config, w.seed),
        script:
            "../scripts/generate_dataset.py"
