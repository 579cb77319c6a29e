"""Rule gather_neurons: concatenate the per-block neuron tables."""

import pandas as pd

from vlmbinding.atomic import write_parquet
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
tables = [pd.read_parquet(path) for path in snakemake.input]
write_parquet(pd.concat(tables, ignore_index=True), snakemake.output.table)
