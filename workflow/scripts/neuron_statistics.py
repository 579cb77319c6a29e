"""Rule neuron_statistics: affinities, entropy and top images of one block's neurons."""

from vlmbinding.analysis.steps import layer_neurons
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
i = snakemake.input
table = layer_neurons(
    i.images,
    i.objects,
    i.store,
    int(snakemake.wildcards.layer),
    Vocabulary.from_config(snakemake.params.vocabulary),
    **snakemake.params.neurons,
)
write_parquet(table, snakemake.output.table)
