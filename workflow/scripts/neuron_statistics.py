"""Rule neuron_statistics: affinities, entropy and top images of one block's neurons."""

from vlmbinding.analysis.steps import block_table, layer_neurons
from vlmbinding.atomic import write_parquet
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
params = snakemake.params
table = block_table(
    layer_neurons, snakemake.input, snakemake.wildcards.layer, params.vocabulary, params.neurons
)
write_parquet(table, snakemake.output.table)
