"""Rule extract_patch_maps: one neuron's per-patch maps on the images the figure shows."""

import pandas as pd

from vlmbinding import patchmaps
from vlmbinding.io import dataset_presence, open_checked_store
from vlmbinding.logs import to_file
from vlmbinding.vocab import Vocabulary

to_file(snakemake.log[0])
p = snakemake.params.figures
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)


def model():
    """Only a reduced store needs the model (and torch)."""
    import torch

    from vlmbinding.models import load_entry

    torch.set_num_threads(snakemake.threads)
    return load_entry(snakemake.params.model, snakemake.input.weights, snakemake.params.device)


maps = patchmaps.figure_maps(
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
patchmaps.save_maps(snakemake.output.maps, *maps)
