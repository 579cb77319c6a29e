"""Rule measure_sharing: co-tuned neuron overlap and conjunction coding of the layer pool."""

import pandas as pd

from vlmbinding.analysis.sharing_stage import (
    layers_label,
    object_counts,
    pool_activations,
    sharing_table,
)
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
try:
    table = sharing_table(
        acts,
        presence,
        vocab.features,
        object_counts(objects, image_ids),
        layers=layers_label(pool["layers"]),
        basis="neurons",
        objects=objects,
        image_ids=image_ids,
        colors=vocab.colors,
        shapes=vocab.shapes,
        m=p["m"],
        n_null=p["n_null"],
        seed=p["seed"],
        decorrelate=p["decorrelate"],
        conjunctions=p["conjunctions"],
    )
except ValueError as e:
    raise ValueError(f"sharing ({snakemake.wildcards.model}, layers {pool['layers']}): {e}") from e
write_parquet(table, snakemake.output.table)
