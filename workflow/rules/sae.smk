# The sharing stage's sparse-autoencoder basis (docs/sharing.md, "Autoencoder basis"):
# per layer of the sharing pool, TopK autoencoders (one per sharing.sae.seeds) trained on a
# seeded token sample of a fresh dataset (sharing.sae.dataset_seed, drawn by
# generate_replicate_dataset), the sharing measures on their latents of the analysed
# images (part sharing/sae.parquet: basis sae, the mean over the seeds) and how much of
# the neuron basis's sharing the sparse basis resolves (sae/resolved.tsv). A reduced store
# (activations.store: reduced) has no per-token values: encode_sae_latents recomputes the
# analysed images' latents by running the model again, and only then is it in the DAG.

from vlmbinding.extraction.sae_encoding import sae_latents_mb

SAE = config["sharing"]["sae"]
SAE_DATASET = f"results/dataset/seed-{SAE['dataset_seed']}"
SAE_REDUCED = config["activations"]["store"] == "reduced"
# MB of every seed's [image, latent pool] of a model's analysed images
SAE_LATENTS_MB = {
    m: sae_latents_mb(SAE, GEOMETRY[m], LAYERS[m], len(IMAGE_IDS)) for m in MODELS
}


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


rule encode_sae_latents:
    """GPU rule, in the DAG only with a reduced store (no per-token values): the model over
    the analysed images again, each pool layer's tokens encoded by every seed's dictionary
    and reduced per image as measure_sharing_sae reduces a tokens store's."""
    input:
        images=dataset_file("images"),
        weights=weights_input("encode_sae_latents"),
        dictionaries=lambda w: targets.sae_files(
            config,
            w.model,
            sharing_pool(config, LAYERS[w.model])["layers"],
            "dictionaries",
        ),
    output:
        latents="results/{model}/sae/latents.npz",
    log:
        "logs/encode_sae_latents/{model}.log",
    benchmark:
        "benchmarks/encode_sae_latents/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: job_threads("extract")
    resources:
        gpu=1,
        # the model and a batch (as the extraction), and the latents it keeps
        mem_mb=lambda w, attempt: job_mem_mb("extract")(w, attempt)
        + SAE_LATENTS_MB[w.model] * attempt,
        runtime=job_runtime("extract"),
    params:
        model=model_params,
        sae=sae_params(config, "latents"),
        pool=lambda w: sharing_pool(config, LAYERS[w.model]),
        batch_size=config["activations"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/encode_sae_latents.py"


rule measure_sharing_sae:
    """The sharing measures in the autoencoder basis: each seed's latents of the analysed
    images (pool layers side by side; from the tokens store, or recomputed by
    encode_sae_latents for a reduced store), their tables averaged over the seeds."""
    input:
        store=[] if SAE_REDUCED else rules.extract_activations.output.store,
        latents=rules.encode_sae_latents.output.latents if SAE_REDUCED else [],
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
        # a tokens store: one block's tokens at a time, and every seed's [image, latent]
        # pool; a reduced store: the recomputed latents (the tables need them all)
        mem_mb=lambda w, attempt: (
            (4000 + SAE_LATENTS_MB[w.model]) * attempt
            if SAE_REDUCED
            else job_mem_mb("layer")(w, attempt) + 4000 * attempt
        ),
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
