"""Rule geometry_beyond: neuron sharing against D, M and binding accuracy beyond interference."""

import pandas as pd

from vlmbinding.analysis.geometry_beyond import geometry_beyond_table
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
p = snakemake.params.statistics
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
table = geometry_beyond_table(
    pd.read_parquet(snakemake.input.geometry),
    pd.read_parquet(snakemake.input.separability),
    vocab.feature_kinds,
    per_pair=pd.read_parquet(snakemake.input.per_pair),
    n_boot=p["bootstrap"],
    n_perm=p["permutations"],
    seed=p["seed"],
)
write_parquet(table, snakemake.output.table)
