"""Rule correlate_binding: per-pair binding accuracy against the superposition score S.

Features are permuted and resampled within kind (colour pairs among colours, shape pairs
among shapes), since accuracy exists only for same-kind pairs.
"""

import pandas as pd

from vlmbinding.analysis.correlation import correlation_table
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
p = snakemake.params.statistics
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
per_pair = pd.read_parquet(snakemake.input.per_pair).assign(space="binding")
table = correlation_table(
    pd.read_parquet(snakemake.input.superposition),
    per_pair,
    vocab.feature_kinds,
    n_boot=p["bootstrap"],
    n_perm=p["permutations"],
    seed=p["seed"],
    metrics=["accuracy"],
    within_kind=True,  # accuracy exists for same-kind pairs only: permute colours among colours
)
write_parquet(table, snakemake.output.table)
