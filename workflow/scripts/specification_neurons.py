"""Rule specification_neurons: one block's affinities under every top_k/reduce/tokens choice."""

from vlmbinding.analysis.specification import layer_affinity_grid, usable_top_ks
from vlmbinding.atomic import write_parquet
from vlmbinding.data.reading import dataset_presence, open_checked_store
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction.store import layer_slice, n_prefix_tokens
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
grid = snakemake.params.grid
layer = int(snakemake.wildcards.layer)
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)
root = open_checked_store(snakemake.input.store, image_ids)
table = layer_affinity_grid(
    layer,
    layer_slice(root, layer),
    presence,
    vocab.features,
    usable_top_ks(grid["top_k"], len(image_ids)),
    reductions=grid["reduce"],
    token_sets=grid["tokens"],
    n_prefix=n_prefix_tokens(root),
)
write_parquet(table, snakemake.output.table)
