"""Rule measure_geometry: interference and neuron sharing per block, from the patch tokens
(tokens store) or each object's pooled patch vectors (reduced store)."""

import pandas as pd

from vlmbinding.analysis.geometry_stage import geometry_part, image_sizes, object_masks
from vlmbinding.atomic import write_parquet
from vlmbinding.data.crop import crops_to_square
from vlmbinding.data.reading import open_checked_store
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction.object_pooling import object_vector_reader
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
p = snakemake.params.geometry
images = pd.read_parquet(snakemake.input.images)
objects = pd.read_parquet(snakemake.input.objects)
image_ids = images["image_id"].astype(str).tolist()
root = open_checked_store(snakemake.input.store, image_ids)
masks = object_masks(
    objects,
    image_sizes(images, *snakemake.params.canvas),
    crops_to_square(snakemake.params.preprocess),
    root.attrs["token_grid"],
)
try:
    table = geometry_part(
        None,
        snakemake.params.layers,
        objects,
        image_ids,
        vocab.features,
        masks,
        n_null=p["n_null"],
        n_bins=p["n_bins"],
        seed=p["seed"],
        read_vectors=object_vector_reader(root, objects, image_ids, masks),
    )
except ValueError as e:
    raise ValueError(f"sharing.geometry ({snakemake.wildcards.model}): {e}") from e
write_parquet(table, snakemake.output.table)
