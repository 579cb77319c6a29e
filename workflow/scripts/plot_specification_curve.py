"""Rule plot_specification_curve: the specification curve of r(S, D) and r(S, M)."""

import pandas as pd

from vlmbinding.logs import to_file
from vlmbinding.report import figures

to_file(snakemake.log[0])
fig = figures.specification_curve(
    pd.read_parquet(snakemake.input.table),
    pd.read_csv(snakemake.input.summary, sep="\t"),
    alpha=snakemake.params.alpha,
    title=f"{snakemake.wildcards.model}: r(S, D) and r(S, M) over the analysis choices",
)
figures.save_figure(fig, snakemake.output.png, snakemake.output.pdf)
