# Quick jobs: on a cluster they run on the submitting host.
localrules:
    correlate_beyond_pixels,
    tabulate_sanity,
    plot_sanity,


rule measure_pixel_separability:
    """The pixel baseline: D and M of every pair on the model's input tensors."""
    input:
        images=dataset_file("images"),
        objects=dataset_file("objects"),
        weights=weights_input("measure_pixel_separability"),
    output:
        table="results/{model}/separability_pixels.parquet",
    log:
        "logs/measure_pixel_separability/{model}.log",
    benchmark:
        "benchmarks/measure_pixel_separability/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 2
    params:
        model=model_params,
        preprocess=config["activations"]["preprocess"],
        pca_variance=config["analysis"]["pca_variance"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/measure_pixel_separability.py"


rule correlate_beyond_pixels:
    """S against the residual of the model's D and M on the pixels' D and M."""
    input:
        superposition=rules.score_superposition.output.superposition,
        separability=rules.measure_separability.output.table,
        pixels=lambda w: targets.pixel_separability(MODELS, w.model),
    output:
        table="results/{model}/controls/beyond_pixels.parquet",
    log:
        "logs/correlate_beyond_pixels/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        statistics=correlation_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/correlate_beyond_pixels.py"


rule resample_entropy:
    """Median entropy and share of selective neurons on half samples of the images."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/controls/entropy_halves.parquet",
    log:
        "logs/resample_entropy/{model}.log",
    benchmark:
        "benchmarks/resample_entropy/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    params:
        layers=lambda w: LAYERS[w.model],
        entropy=entropy_resampling_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/resample_entropy.py"


rule tabulate_sanity:
    """The trained model against its random twin and the pixels: one row per statistic."""
    input:
        unpack(lambda w: targets.sanity_inputs(MODELS, config, w.model, NO_TEXT)),
    output:
        table="results/{model}/controls/sanity.parquet",
        html=report(
            "results/{model}/controls/sanity.html",
            caption="../report/sanity_table.rst",
            category="{model}",
            subcategory="0 Sanity controls",
            labels={"figure": "sanity table"},
        ),
    log:
        "logs/tabulate_sanity/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        space=config["figures"]["space"],
        primary=config["analysis"]["primary"],
        entropy_threshold=config["controls"]["entropy_threshold"],
        statistics=correlation_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/tabulate_sanity.py"


rule plot_sanity:
    """The sanity table as a figure: trained, twin and pixels side by side."""
    input:
        table=rules.tabulate_sanity.output.table,
    output:
        png=report(
            "results/{model}/figures/sanity.png",
            caption="../report/sanity.rst",
            category="{model}",
            subcategory="0 Sanity controls",
            labels={"figure": "sanity controls"},
        ),
        pdf="results/{model}/figures/sanity.pdf",
    log:
        "logs/plot_sanity/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/plot_sanity.py"


rule summarise_verdicts:
    """The report's front page: every model's verdicts in sentences, with their numbers."""
    input:
        tables=expand(
            "results/{model}/controls/sanity.parquet",
            model=targets.sanity_models(MODELS, config),
        ),
        correlations=expand(
            "results/{model}/correlation.parquet",
            model=targets.sanity_models(MODELS, config),
        ),
    output:
        html=report(
            "results/verdicts.html",
            caption="../report/verdicts.rst",
            category="0 Verdicts",
            labels={"figure": "what survived, what was not detected"},
        ),
    log:
        "logs/summarise_verdicts.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        models=targets.sanity_models(MODELS, config),
        space=config["figures"]["space"],
    script:
        "../scripts/summarise_verdicts.py"
