"""Rule plot_sae: the autoencoder basis's overlap against D and M, its training curves and
the pairs it resolves."""

import re

import pandas as pd

from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file
from vlmbinding.report.figures.sae import sae_resolved, sae_training
from vlmbinding.report.figures.sharing import sharing_scatter
from vlmbinding.report.figures.style import save_figure

to_file(snakemake.log[0])
i, o, model = snakemake.input, snakemake.output, snakemake.wildcards.model
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
fig = sharing_scatter(
    pd.read_parquet(i.sharing),
    pd.read_parquet(i.separability),
    pd.read_parquet(i.correlation),
    vocab.feature_kinds,
    basis="sae",
    space=snakemake.params.space,
    title=f"{model}: co-tuned overlap (z) in the autoencoder basis against D and M",
)
save_figure(fig, o.overlap_png, o.overlap_pdf)
curves = {re.search(r"layer_(-?\d+)", p).group(1): pd.read_csv(p, sep="\t") for p in i.training}
save_figure(sae_training(curves), o.training_png, o.training_pdf)
save_figure(sae_resolved(pd.read_csv(i.resolved, sep="\t")), o.resolved_png, o.resolved_pdf)
