"""Rule specification_neurons: one block's affinities under every top_k/reduce/tokens choice."""

from vlmbinding.analysis.steps import block_table, layer_specifications
from vlmbinding.atomic import write_parquet
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
params = snakemake.params
table = block_table(
    layer_specifications, snakemake.input, snakemake.wildcards.layer, params.vocabulary, params.grid
)
write_parquet(table, snakemake.output.table)
