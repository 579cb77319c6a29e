"""Rule plot_correlation: S against D and against M, with fits and intervals."""

import pandas as pd

from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file
from vlmbinding.report import figures

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
superposition = pd.read_parquet(snakemake.input.superposition)
separability = pd.read_parquet(snakemake.input.separability)
correlation = pd.read_parquet(snakemake.input.correlation)
for metric in ("D", "M"):
    fig = figures.superposition_scatter(
        superposition,
        separability,
        correlation,
        metric,
        vocab.feature_kinds,
        space=snakemake.params.space,
        label_extremes=snakemake.params.label_extremes,
        title=f"{snakemake.wildcards.model}: superposition score S against "
        + ("cluster-centre distance D" if metric == "D" else "misclassification rate M"),
    )
    figures.save_figure(fig, snakemake.output[f"{metric}_png"], snakemake.output[f"{metric}_pdf"])
