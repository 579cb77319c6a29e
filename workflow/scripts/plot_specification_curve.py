"""Rule plot_specification_curve: the specification curve of each measure with D and M."""

import pandas as pd

from vlmbinding.logs import to_file
from vlmbinding.report import figures

to_file(snakemake.log[0])
specs = pd.read_parquet(snakemake.input.table)
scores = " and the overlap z" if specs["measure"].eq("overlap").any() else ""
fig = figures.specification_curve(
    specs,
    pd.read_csv(snakemake.input.summary, sep="\t"),
    alpha=snakemake.params.alpha,
    title=f"{snakemake.wildcards.model}: r of S{scores} with D and M over the analysis choices",
)
figures.save_figure(fig, snakemake.output.png, snakemake.output.pdf)
