"""Rule correlate_superposition: S against D and M, with intervals and a Mantel test."""

import pandas as pd

from vlmbinding.analysis.correlation import correlation_table
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
p = snakemake.params.statistics
table = correlation_table(
    pd.read_parquet(snakemake.input.superposition),
    pd.read_parquet(snakemake.input.separability),
    vocab.feature_kinds,
    n_boot=p["bootstrap"],
    n_perm=p["permutations"],
    seed=p["seed"],
)
write_parquet(table, snakemake.output.table)
