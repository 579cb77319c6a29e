"""Rule plot_interventions: each pair's ΔM and ΔD against S, and one pair before and after."""

import numpy as np
import pandas as pd

from vlmbinding.logs import to_file
from vlmbinding.report import figures

to_file(snakemake.log[0])
model = snakemake.wildcards.model
effects = pd.read_parquet(snakemake.input.effects)
summary = pd.read_csv(snakemake.input.summary, sep="\t")
fig = figures.intervention_effects(effects, summary, model)
figures.save_figure(fig, snakemake.output.png, snakemake.output.pdf)
ex = np.load(snakemake.input.example)
fig = figures.intervention_example(
    ex["before"], ex["after"], ex["labels"], str(ex["f1"]), str(ex["f2"]), model
)
figures.save_figure(fig, snakemake.output.example_png, snakemake.output.example_pdf)
