"""Rule plot_geometry: interference and neuron sharing (z against their null) against D and M
at the deepest block."""

import pandas as pd

from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file
from vlmbinding.report.figures.sharing import geometry_scatter
from vlmbinding.report.figures.style import save_figure

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
fig = geometry_scatter(
    pd.read_parquet(snakemake.input.sharing),
    pd.read_parquet(snakemake.input.separability),
    pd.read_parquet(snakemake.input.correlation),
    vocab.feature_kinds,
    score="z",  # as the sharing page, the sanity table and the specification curve
    space=snakemake.params.space,
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
