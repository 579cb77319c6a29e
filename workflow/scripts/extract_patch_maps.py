"""Rule extract_patch_maps: one neuron's per-patch maps on the images the figure shows."""

import pandas as pd

from vlmbinding import patches as pt
from vlmbinding import patchmaps
from vlmbinding.io import dataset_presence, open_checked_store
from vlmbinding.logs import to_file
from vlmbinding.vocab import Vocabulary

to_file(snakemake.log[0])
p = snakemake.params.figures
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)
root = open_checked_store(snakemake.input.store, image_ids)
neuron = pt.pick_neuron(pd.read_parquet(snakemake.input.neurons), p["neuron"])
chosen = pt.images_to_show(neuron, presence, image_ids, vocab.features, p["gallery_images"] - 2)
layer, unit = int(neuron["layer"]), int(neuron["unit"])
if root.attrs["mode"] == "tokens":
    maps = patchmaps.maps_from_store(root, [image_ids.index(i) for i, _ in chosen], layer, unit)
else:
    import torch

    from vlmbinding.models import load_entry

    torch.set_num_threads(snakemake.threads)
    loaded = load_entry(snakemake.params.model, snakemake.input.weights, snakemake.params.device)
    paths = pd.read_parquet(snakemake.input.images).set_index("image_id")["path"]
    maps = patchmaps.maps_from_model(
        loaded, [paths[i] for i, _ in chosen], layer, unit, dict(root.attrs)
    )
patchmaps.save_maps(
    snakemake.output.maps, [i for i, _ in chosen], [t for _, t in chosen], maps, layer, unit
)
