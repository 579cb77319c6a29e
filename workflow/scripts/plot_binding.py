"""Rule plot_binding: per-pair swapped-caption binding accuracy against S."""

import pandas as pd

from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file
from vlmbinding.report import figures

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
correlation = pd.read_parquet(snakemake.input.correlation)
row = correlation[correlation["subset"] == "all"].iloc[0]
fig = figures.binding_scatter(
    pd.read_parquet(snakemake.input.per_pair),
    pd.read_parquet(snakemake.input.superposition),
    correlation_row=row,
    kinds=vocab.feature_kinds,
    title=f"{snakemake.wildcards.model}: binding accuracy against superposition",
)
figures.save_figure(fig, snakemake.output.png, snakemake.output.pdf)
