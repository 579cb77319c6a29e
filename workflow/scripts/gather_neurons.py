"""Rule gather_neurons: concatenate the per-block neuron tables."""

from vlmbinding.analysis.steps import gather_tables
from vlmbinding.atomic import write_parquet
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
write_parquet(gather_tables(snakemake.input), snakemake.output.table)
