# The sharing stage's sparse-autoencoder basis (docs/sharing.md, "Autoencoder basis"):
# per layer of the sharing pool, TopK autoencoders (one per sharing.sae.seeds) trained on a
# seeded token sample of a fresh dataset (sharing.sae.dataset_seed, drawn by
# generate_replicate_dataset), the sharing measures on their latents of the analysed
# images (part sharing/sae.parquet: basis sae, the mean over the seeds) and how much of
# the neuron basis's sharing the sparse basis resolves (sae/resolved.tsv).

SAE = config["sharing"]["sae"]
SAE_DATASET = f"results/dataset/seed-{SAE['dataset_seed']}"


localrules:
    resolve_sae,


rule sample_sae_tokens:
    """GPU rule: the model over the fresh dataset's images, keeping a seeded sample of each
    pool layer's MLP-output tokens (no per-token store)."""
    input:
        images=f"{SAE_DATASET}/images.parquet",
        weights=weights_input("sample_sae_tokens"),
    output:
        tokens="results/{model}/sae/tokens.npz",
    log:
        "logs/sample_sae_tokens/{model}.log",
    benchmark:
        "benchmarks/sample_sae_tokens/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: job_threads("extract")
    resources:
        gpu=1,
        mem_mb=job_mem_mb("extract"),
        runtime=job_runtime("extract"),
    params:
        model=model_params,
        sae=sae_params(config, "tokens"),
        layers=lambda w: sharing_pool(config, LAYERS[w.model])["layers"],
        batch_size=config["activations"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/sample_sae_tokens.py"


rule train_sae:
    """One layer's TopK autoencoders, one per seed: dictionaries (safetensors) and curves."""
    input:
        tokens=rules.sample_sae_tokens.output.tokens,
    output:
        training="results/{model}/sae/layer_{layer}/training.tsv",
        dictionaries=expand(
            "results/{{model}}/sae/layer_{{layer}}/seed-{seed}/dictionary.safetensors",
            seed=SAE["seeds"],
        ),
    log:
        "logs/train_sae/{model}/layer_{layer}.log",
    benchmark:
        "benchmarks/train_sae/{model}/layer_{layer}.tsv"
    conda:
        "../../envs/workflow.yaml"
    # one thread: the toy model's small matrices gain nothing from more, and on a loaded
    # machine idle threads spin (3x the CPU time with 2); a large layer trains on the GPU
    threads: 1
    resources:
        gpu=int(config["device"] != "cpu"),
        mem_mb=lambda w, attempt: 2000 * attempt,
        runtime=lambda w, attempt: 60 * attempt,
    params:
        sae=sae_params(config, "train"),
        device=config["device"],
    script:
        "../scripts/train_sae.py"


rule measure_sharing_sae:
    """The sharing measures in the autoencoder basis: each seed's latents of the analysed
    images (pool layers side by side), their tables averaged over the seeds."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
        training=lambda w: targets.sae_files(
            config,
            w.model,
            sharing_pool(config, LAYERS[w.model])["layers"],
            "training",
        ),
        dictionaries=lambda w: targets.sae_files(
            config,
            w.model,
            sharing_pool(config, LAYERS[w.model])["layers"],
            "dictionaries",
        ),
    output:
        table="results/{model}/sharing/sae.parquet",
        seeds="results/{model}/sae/seeds.parquet",
    log:
        "logs/measure_sharing_sae/{model}.log",
    benchmark:
        "benchmarks/measure_sharing_sae/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    resources:
        # one block's tokens at a time, and every seed's [image, latent] pool
        mem_mb=lambda w, attempt: job_mem_mb("layer")(w, attempt) + 4000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        sharing=sharing_params(config),
        sae=sae_params(config, "measure"),
        pool=lambda w: sharing_pool(config, LAYERS[w.model]),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/measure_sharing_sae.py"


rule resolve_sae:
    """How much of the neuron basis's sharing the autoencoder basis resolves, per measure
    (the combined seeds and each seed)."""
    input:
        sharing="results/{model}/sharing.parquet",
        seeds=rules.measure_sharing_sae.output.seeds,
    output:
        table="results/{model}/sae/resolved.tsv",
    log:
        "logs/resolve_sae/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        sae=sae_params(config, "resolved"),
    script:
        "../scripts/resolve_sae.py"


localrules:
    plot_sae,


rule plot_sae:
    """The autoencoder basis: its overlap against D and M, training curves, resolved pairs."""
    input:
        sharing="results/{model}/sharing.parquet",
        separability="results/{model}/separability.parquet",
        correlation="results/{model}/sharing_correlation.parquet",
        resolved=rules.resolve_sae.output.table,
        training=lambda w: targets.sae_files(
            config,
            w.model,
            sharing_pool(config, LAYERS[w.model])["layers"],
            "training",
        ),
    output:
        overlap_png=report(
            "results/{model}/figures/sharing_sae.png",
            caption="../report/sharing_sae.rst",
            category="Neuron sharing",
            subcategory="{model}",
            labels={"figure": "overlap z in the autoencoder basis against D and M"},
        ),
        overlap_pdf="results/{model}/figures/sharing_sae.pdf",
        training_png=report(
            "results/{model}/figures/sae_training.png",
            caption="../report/sae_training.rst",
            category="Neuron sharing",
            subcategory="{model}",
            labels={"figure": "autoencoder training curves"},
        ),
        training_pdf="results/{model}/figures/sae_training.pdf",
        resolved_png=report(
            "results/{model}/figures/sae_resolved.png",
            caption="../report/sae_resolved.rst",
            category="Neuron sharing",
            subcategory="{model}",
            labels={"figure": "pairs the autoencoder basis resolves"},
        ),
        resolved_pdf="results/{model}/figures/sae_resolved.pdf",
    log:
        "logs/plot_sae/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        space=config["figures"]["space"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/plot_sae.py"
