# Do VLMs have bad eyes? Neuron superposition and attribute binding in CLIP.
#
# Paths (all under the working directory, see README.md):
#   results/dataset/...            the toy-shapes images and their tables
#   results/<model>/...            everything computed for one model of `models:`
#   logs/<rule>/<wildcards>.log    one log per job; benchmarks/ likewise
#
# Run:  snakemake --cores 8 --resources gpu=1 [--configfile my.yaml]
import re

from snakemake.utils import min_version

min_version("9.14.8")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    model="|".join(re.escape(name) for name in MODELS),
    layer=r"\d+",


include: "workflow/rules/dataset.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/neurons.smk"
include: "workflow/rules/separability.smk"
include: "workflow/rules/gradcam.smk"
include: "workflow/rules/binding.smk"
include: "workflow/rules/robustness.smk"
include: "workflow/rules/null.smk"
include: "workflow/rules/sharing.smk"
include: "workflow/rules/sae.smk"
include: "workflow/rules/controls.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/interventions.smk"
include: "workflow/rules/report.smk"


# On a cluster, each .smk's `localrules` (quick jobs, figures) run on the submitting host.
localrules:
    all,


rule all:
    default_target: True
    input:
        targets.all_targets(MODELS, config, NO_TEXT),
