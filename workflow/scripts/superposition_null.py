"""Rule superposition_null: S and its correlation with D and M under permuted image labels."""

import pandas as pd

from vlmbinding.analysis.null_model import null_superposition_tables
from vlmbinding.atomic import write_parquet
from vlmbinding.data.reading import dataset_presence
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)
table, correlation = null_superposition_tables(
    pd.read_parquet(snakemake.input.neurons),
    presence,
    image_ids,
    vocab,
    pd.read_parquet(snakemake.input.separability),
    n_neurons=snakemake.params.selection["n_neurons"],
    n_perm=snakemake.params.null["n_perm"],
    seed=snakemake.params.null["seed"],
)
write_parquet(table, snakemake.output.table)
write_parquet(correlation, snakemake.output.correlation)
