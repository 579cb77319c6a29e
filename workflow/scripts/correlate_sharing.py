"""Rule correlate_sharing: every measure of sharing against D, M and binding accuracy."""

import pandas as pd

from vlmbinding.analysis.sharing_stage import sharing_correlation_table
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
p = snakemake.params.statistics
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
per_pair = snakemake.input.get("per_pair")
table = sharing_correlation_table(
    pd.read_parquet(snakemake.input.sharing),
    pd.read_parquet(snakemake.input.separability),
    vocab.feature_kinds,
    per_pair=pd.read_parquet(per_pair) if per_pair else None,
    n_boot=p["bootstrap"],
    n_perm=p["permutations"],
    seed=p["seed"],
)
write_parquet(table, snakemake.output.table)
