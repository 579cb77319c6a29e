"""Rule specification_neurons: one block's affinities under every top_k/reduce/tokens choice."""

from vlmbinding.analysis.steps import layer_specifications
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
i = snakemake.input
table = layer_specifications(
    i.images,
    i.objects,
    i.store,
    int(snakemake.wildcards.layer),
    Vocabulary.from_config(snakemake.params.vocabulary),
    **snakemake.params.grid,
)
write_parquet(table, snakemake.output.table)
