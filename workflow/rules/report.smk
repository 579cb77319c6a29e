# Quick jobs: on a cluster they run on the submitting host.
localrules:
    tabulate_results,
    tabulate_sharing,
    record_config,


rule tabulate_results:
    """The model's key tables (correlations, binding, localisation) as one report page."""
    input:
        unpack(lambda w: targets.result_tables(MODELS, w.model, NO_TEXT)),
    output:
        html=report(
            "results/{model}/tables.html",
            caption="../report/tables.rst",
            category="{model}",
            subcategory="6 Tables",
            labels={"figure": "result tables"},
        ),
    log:
        "logs/tabulate_results/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/tabulate_results.py"


rule tabulate_sharing:
    """The sharing page: what came out for S and each measure and basis of sharing, in words."""
    input:
        unpack(
            lambda w: targets.sharing_page_inputs(
                MODELS,
                config,
                w.model,
                sharing_pool(config, LAYERS[w.model])["layers"],
                NO_TEXT,
            )
        ),
    output:
        html=report(
            "results/{model}/sharing.html",
            caption="../report/sharing_page.rst",
            category="Neuron sharing",
            subcategory="{model}",
            labels={"figure": "what came out, in sentences"},
        ),
    log:
        "logs/tabulate_sharing/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        space=config["figures"]["space"],
    script:
        "../scripts/tabulate_sharing.py"


rule record_config:
    """The run's configuration, defaults filled in, for the report and the record."""
    output:
        yaml="results/config.yaml",
        html=report(
            "results/config.html",
            caption="../report/config.rst",
            category="Configuration",
            labels={"figure": "configuration"},
        ),
    log:
        "logs/record_config.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        config=config,
    script:
        "../scripts/record_config.py"
