# Do two features share neurons? Pairwise measures of sharing that are not sums of
# per-feature terms (docs/sharing.md): results/<model>/sharing.parquet, their
# correlations with D, M and binding accuracy, a figure, rows of the sanity table.
# Each measure or basis writes its part, results/<model>/sharing/<part>.parquet, with the
# same columns; gather_sharing stacks the parts the config asks for (sharing_parts).


localrules:
    gather_sharing,
    correlate_sharing,
    plot_sharing,


rule measure_sharing:
    """Co-tuned neuron overlap of every pair, conjunctive and separate coding (neuron basis)."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/sharing/neurons.parquet",
    log:
        "logs/measure_sharing/{model}.log",
    benchmark:
        "benchmarks/measure_sharing/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    resources:
        # one block's reduction at a time (as neuron_statistics) plus the pool's float64 copies
        mem_mb=lambda w, attempt: job_mem_mb("layer")(w, attempt) + 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        sharing=sharing_params(config),
        pool=lambda w: sharing_pool(config, LAYERS[w.model]),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/measure_sharing.py"


rule gather_sharing:
    """The parts of the sharing table (neuron basis, and the others the config enables)."""
    input:
        parts=expand("results/{{model}}/sharing/{part}.parquet", part=SHARING_PARTS),
    output:
        table="results/{model}/sharing.parquet",
    log:
        "logs/gather_sharing/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/gather_sharing.py"


rule correlate_sharing:
    """Each measure of sharing (value and z) against D, M and binding accuracy."""
    input:
        sharing=rules.gather_sharing.output.table,
        separability=rules.measure_separability.output.table,
        per_pair=lambda w: targets.binding_per_pair(w.model, NO_TEXT),
    output:
        table="results/{model}/sharing_correlation.parquet",
    log:
        "logs/correlate_sharing/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        statistics=correlation_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/correlate_sharing.py"


rule plot_sharing:
    """The overlap's z against D and against M, with intervals."""
    input:
        sharing=rules.gather_sharing.output.table,
        separability=rules.measure_separability.output.table,
        correlation=rules.correlate_sharing.output.table,
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
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/plot_sharing.py"


# ---- Encoding geometry (measure 2): interference iota and neuron sharing omega per block,
# from each object's patch vector (tokens store), and omega against D, M and binding beyond
# iota. The part sharing/geometry.parquet joins sharing.parquet when sharing.geometry.enabled.
from vlmbinding.workflow.params import geometry_layers, geometry_params


localrules:
    geometry_beyond,


rule measure_geometry:
    """Interference and neuron sharing of every pair, per block (sharing.geometry)."""
    input:
        store=rules.extract_activations.output.store,
        images=dataset_file("images"),
        objects=dataset_file("objects"),
    output:
        table="results/{model}/sharing/geometry.parquet",
    log:
        "logs/measure_geometry/{model}.log",
    benchmark:
        "benchmarks/measure_geometry/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    resources:
        # one block's patch tokens at a time, one image at a time in float64
        mem_mb=lambda w, attempt: job_mem_mb("layer")(w, attempt) + 1000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        geometry=geometry_params(config),
        layers=lambda w: geometry_layers(
            config, GEOMETRY[w.model]["layers"], LAYERS[w.model]
        ),
        canvas=[config["dataset"]["width"], config["dataset"]["height"]],
        preprocess=config["activations"]["preprocess"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/measure_geometry.py"


rule geometry_beyond:
    """Neuron sharing against D, M and binding accuracy beyond interference, per block."""
    input:
        geometry=rules.measure_geometry.output.table,
        separability=rules.measure_separability.output.table,
        per_pair="results/{model}/binding/accuracy_per_pair.parquet",
    output:
        table="results/{model}/geometry_beyond.parquet",
    log:
        "logs/geometry_beyond/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        statistics=correlation_params(config),
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/geometry_beyond.py"


localrules:
    plot_geometry,


rule plot_geometry:
    """Interference and neuron sharing against D and against M at the deepest block."""
    input:
        sharing=rules.gather_sharing.output.table,
        separability=rules.measure_separability.output.table,
        correlation=rules.correlate_sharing.output.table,
    output:
        png=report(
            "results/{model}/figures/geometry.png",
            caption="../report/geometry.rst",
            category="Neuron sharing",
            subcategory="{model}",
            labels={"figure": "interference and neuron sharing against D and M"},
        ),
        pdf="results/{model}/figures/geometry.pdf",
    log:
        "logs/plot_geometry/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        space=config["figures"]["space"],
        vocabulary=vocabulary_params(config),
    script:
        "../scripts/plot_geometry.py"
