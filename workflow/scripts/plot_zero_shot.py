"""Rule plot_zero_shot: the toy model's zero-shot accuracies against chance."""

import pandas as pd

from vlmbinding.logs import to_file
from vlmbinding.report import figures

to_file(snakemake.log[0])
fig = figures.zero_shot_bars(
    pd.read_csv(snakemake.input.zero_shot, sep="\t"), snakemake.wildcards.model
)
figures.save_figure(fig, snakemake.output.png, snakemake.output.pdf)
