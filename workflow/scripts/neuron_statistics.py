"""Rule neuron_statistics: affinities, entropy and top images of one block's neurons."""

from vlmbinding.analysis.neurons import neuron_table
from vlmbinding.atomic import write_parquet
from vlmbinding.data.reading import dataset_presence, open_checked_store
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction.store import reduced_layer
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
p = snakemake.params.neurons
layer = int(snakemake.wildcards.layer)
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)
root = open_checked_store(snakemake.input.store, image_ids)
table = neuron_table(
    layer,
    reduced_layer(root, layer, p["reduce"], p["tokens"]),
    presence,
    vocab.features,
    image_ids,
    p["top_k"],
)
write_parquet(table, snakemake.output.table)
