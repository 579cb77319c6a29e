# Do two features share neurons? Pairwise measures of sharing that are not sums of
# per-feature terms (docs/sharing.md): results/<model>/sharing.parquet, their
# correlations with D, M and binding accuracy, a figure, rows of the sanity table.
# Basis `neurons` here; an autoencoder basis (`sae`) adds a rule writing the same table
# from latent activations and a params block of its own.


localrules:
    correlate_sharing,
    plot_sharing,


def sharing_params():
    """The sharing block's result-changing settings (`enabled` only picks targets)."""
    return sorted_dict({k: v for k, v in config["sharing"].items() if k != "enabled"})


def sharing_pool(wildcards):
    """The layer pool and token reduction the affinities use (analysis block)."""
    a = config["analysis"]
    return {
        "layers": LAYERS[wildcards.model],
        "reduce": a["reduce"],
        "tokens": a["tokens"],
    }


def sharing_targets(name):
    """A model's sharing tables and figure, when sharing.enabled."""
    if not config["sharing"]["enabled"]:
        return []
    base = f"results/{name}"
    return [
        f"{base}/sharing.parquet",
        f"{base}/sharing_correlation.parquet",
        f"{base}/figures/sharing.png",
    ]


def sharing_sanity_inputs(wildcards):
    """The trained model's and its twin's sharing tables, for the sanity table's rows."""
    if not config["sharing"]["enabled"]:
        return {}
    out = {}
    for prefix, name in (
        ("trained", wildcards.model),
        ("random", twin_of(wildcards.model)),
    ):
        out[f"{prefix}_sharing"] = f"results/{name}/sharing.parquet"
        out[f"{prefix}_sharing_correlation"] = (
            f"results/{name}/sharing_correlation.parquet"
        )
    return out


def sharing_mem_mb(wildcards, attempt):
    """One block's reduction at a time (as neuron_statistics) plus the pool's float64 copies."""
    return job_mem_mb("layer")(wildcards, attempt) + 2000 * attempt


def _check_sharing():
    """The pool against sharing.m and the images against the tuning regression."""
    s = config["sharing"]
    if not s["enabled"]:
        return
    n_images = number_of_images()
    n_features = sum(
        len(config["dataset"][k]) for k in ("shapes", "colors", "positions")
    )
    # intercept, count, one column per feature, and as many decorrelation directions
    need = 3 + n_features * (2 if s["decorrelate"] else 1)
    if n_images < need:
        raise WorkflowError(
            f"sharing.enabled: {n_images} images are too few for the tuning regression over "
            f"{n_features} features (at least {need}); add images or set sharing.enabled: false"
        )
    for name, m in MODELS.items():
        pool = len(LAYERS[name]) * model_geometry(m)["width"]
        if s["m"] is not None and s["m"] > pool:
            raise WorkflowError(
                f"sharing.m: {s['m']} neurons per tuned set, but the layer pool of models "
                f"entry {name!r} has {pool} neurons (analysis.layers)"
            )


_check_sharing()


rule measure_sharing:
    """Co-tuned neuron overlap of every pair, conjunctive and separate coding (neuron basis)."""
    input:
        store="results/{model}/activations.zarr",
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/sharing.parquet",
    log:
        "logs/measure_sharing/{model}.log",
    benchmark:
        "benchmarks/measure_sharing/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=sharing_mem_mb,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        sharing=sharing_params(),
        pool=sharing_pool,
        vocabulary=vocabulary_params(),
    script:
        "../scripts/measure_sharing.py"


rule correlate_sharing:
    """Each measure of sharing (value and z) against D, M and binding accuracy."""
    input:
        sharing="results/{model}/sharing.parquet",
        separability="results/{model}/separability.parquet",
        per_pair="results/{model}/binding/accuracy_per_pair.parquet",
    output:
        table="results/{model}/sharing_correlation.parquet",
    log:
        "logs/correlate_sharing/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        statistics=correlation_params(),
        vocabulary=vocabulary_params(),
    script:
        "../scripts/correlate_sharing.py"


rule plot_sharing:
    """The overlap's z against D and against M, with intervals."""
    input:
        sharing="results/{model}/sharing.parquet",
        separability="results/{model}/separability.parquet",
        correlation="results/{model}/sharing_correlation.parquet",
    output:
        png=report(
            "results/{model}/figures/sharing.png",
            caption="../report/sharing.rst",
            category="Neuron sharing",
            subcategory="{model}",
            labels={"figure": "overlap z against D and M"},
        ),
        pdf="results/{model}/figures/sharing.pdf",
    log:
        "logs/plot_sharing/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        space=config["figures"]["space"],
        vocabulary=vocabulary_params(),
    script:
        "../scripts/plot_sharing.py"
