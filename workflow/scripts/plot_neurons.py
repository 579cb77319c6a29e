"""Rule plot_neurons: entropy histogram, feature-neuron gallery, patch-wise activation maps."""

import numpy as np
import pandas as pd
from PIL import Image

from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction import patch_maps
from vlmbinding.logs import to_file
from vlmbinding.report import figures

to_file(snakemake.log[0])
model, p = snakemake.wildcards.model, snakemake.params.figures
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
features = vocab.features
neurons = pd.read_parquet(snakemake.input.neurons)
selected = pd.read_parquet(snakemake.input.feature_neurons)
paths = pd.read_parquet(snakemake.input.images).set_index("image_id")["path"]


def load(image_id):
    with Image.open(paths[image_id]) as im:
        return np.asarray(im.convert("RGB"))


cut = float(selected["entropy"].max())
fig = figures.entropy_histogram(
    neurons["entropy"],
    cut,
    len(selected),
    max_bits=np.log2(len(features)),
    title=f"{model}: how feature-selective are the MLP output neurons?",
)
figures.save_figure(fig, snakemake.output.entropy_png, snakemake.output.entropy_pdf)

shown = selected.head(p["gallery_neurons"])
ids = {i for row in shown["top_images"] for i in row.split(",")[: p["gallery_images"]]}
fig = figures.feature_neuron_gallery(
    shown,
    {i: load(i) for i in ids},
    features,
    n_images=p["gallery_images"],
    title=f"{model}: the lowest-entropy neurons and their top-activating images",
)
figures.save_figure(fig, snakemake.output.gallery_png, snakemake.output.gallery_pdf)

neuron = patch_maps.pick_neuron(neurons, p["neuron"])
shown = patch_maps.load_maps(snakemake.input.patch_maps)
label = f"L{shown['layer']} U{shown['unit']}"
fig = figures.patch_activation_maps(
    [load(i) for i in shown["image_ids"]],
    list(shown["maps"]),
    shown["titles"],
    label,
    title=f"{model}: neuron {label}, top features "
    + ", ".join(f"{f} {neuron[f]:.2f}" for f in patch_maps.top_features(neuron, features, 3)),
)
figures.save_figure(fig, snakemake.output.patches_png, snakemake.output.patches_pdf)
