"""Rule plot_sanity: the sanity table as a figure."""

import pandas as pd

from vlmbinding.logs import to_file
from vlmbinding.report.figures import sanity_panels, save_figure

to_file(snakemake.log[0])
fig = sanity_panels(pd.read_parquet(snakemake.input.table), snakemake.wildcards.model)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
