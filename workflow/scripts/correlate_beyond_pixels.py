"""Rule correlate_beyond_pixels: S against the model's D and M beyond the pixel baseline."""

import pandas as pd

from vlmbinding.atomic import write_parquet
from vlmbinding.controls.beyond_pixels import beyond_pixels_table
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
p = snakemake.params.statistics
table = beyond_pixels_table(
    pd.read_parquet(snakemake.input.superposition),
    pd.read_parquet(snakemake.input.separability),
    pd.read_parquet(snakemake.input.pixels),
    vocab.feature_kinds,
    n_boot=p["bootstrap"],
    n_perm=p["permutations"],
    seed=p["seed"],
)
write_parquet(table, snakemake.output.table)
