"""Rule gather_neurons: concatenate the per-block neuron tables."""

import pandas as pd

from vlmbinding.logs import to_file

to_file(snakemake.log[0])
tables = [pd.read_parquet(path) for path in snakemake.input]
pd.concat(tables, ignore_index=True).to_parquet(snakemake.output.table, index=False)
