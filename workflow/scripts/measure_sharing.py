"""Rule measure_sharing: co-tuned neuron overlap and conjunction coding of the layer pool."""

import pandas as pd

from vlmbinding.analysis.sharing_stage import pool_activations, stage_sharing_table
from vlmbinding.atomic import write_parquet
from vlmbinding.data.reading import dataset_presence, open_checked_store
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction.store import reduced_layer
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
p, pool = snakemake.params.sharing, snakemake.params.pool
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)
objects = pd.read_parquet(snakemake.input.objects)
root = open_checked_store(snakemake.input.store, image_ids)
acts = pool_activations(
    lambda layer: reduced_layer(root, layer, pool["reduce"], pool["tokens"]), pool["layers"]
)
table = stage_sharing_table(
    acts,
    presence,
    vocab,
    objects,
    image_ids,
    layers=pool["layers"],
    basis="neurons",
    sharing=p,
    m=p["m"],
    context=f"sharing ({snakemake.wildcards.model}, layers {pool['layers']})",
)
write_parquet(table, snakemake.output.table)
