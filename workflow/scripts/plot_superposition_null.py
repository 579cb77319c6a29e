"""Rule plot_superposition_null: each pair's S against S under permuted image labels."""

import pandas as pd

from vlmbinding.logs import to_file
from vlmbinding.report import figures

to_file(snakemake.log[0])
fig = figures.superposition_null(pd.read_parquet(snakemake.input.table))
figures.save_figure(fig, snakemake.output.png, snakemake.output.pdf)
