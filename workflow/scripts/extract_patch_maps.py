"""Rule extract_patch_maps: one neuron's per-patch maps on the images the figure shows."""

import pandas as pd

from vlmbinding.data.reading import dataset_presence, open_checked_store
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction import patch_maps
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
p = snakemake.params.figures
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)


def model():
    """Only a reduced store needs the model (and torch)."""
    import torch

    from vlmbinding.models.loading import load_entry

    torch.set_num_threads(snakemake.threads)
    return load_entry(snakemake.params.model, snakemake.input.weights, snakemake.params.device)


maps = patch_maps.figure_maps(
    open_checked_store(snakemake.input.store, image_ids),
    pd.read_parquet(snakemake.input.neurons),
    presence,
    image_ids,
    vocab.features,
    p["neuron"],
    p["gallery_images"] - 2,
    pd.read_parquet(snakemake.input.images).set_index("image_id")["path"],
    model,
)
patch_maps.save_maps(snakemake.output.maps, *maps)
