"""Rule plot_sharing: the co-tuned neuron overlap's z against D and against M."""

import pandas as pd

from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file
from vlmbinding.report.figures.sharing import sharing_scatter
from vlmbinding.report.figures.style import save_figure

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
fig = sharing_scatter(
    pd.read_parquet(snakemake.input.sharing),
    pd.read_parquet(snakemake.input.separability),
    pd.read_parquet(snakemake.input.correlation),
    vocab.feature_kinds,
    space=snakemake.params.space,
    title=f"{snakemake.wildcards.model}: co-tuned neuron overlap (z) against D and M",
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
