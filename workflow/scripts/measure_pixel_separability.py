"""Rule measure_pixel_separability: D and M of every pair on the model's input tensors."""

import logging

import pandas as pd
import torch

from vlmbinding.atomic import write_parquet
from vlmbinding.controls.pixels import model_inputs, pixel_separability
from vlmbinding.data.reading import dataset_presence
from vlmbinding.data.vocab import Vocabulary, all_pairs
from vlmbinding.logs import to_file
from vlmbinding.models.loading import load_entry

to_file(snakemake.log[0])
log = logging.getLogger("measure_pixel_separability")
torch.set_num_threads(snakemake.threads)
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)
paths = pd.read_parquet(snakemake.input.images)["path"].tolist()
# only the model's preprocessing is used; it is built on the CPU
loaded = load_entry(snakemake.params.model, snakemake.input.weights, "cpu")
pixels = model_inputs(loaded, paths, snakemake.params.preprocess)
log.info(f"{pixels.shape[0]} images of {pixels.shape[1]} input values each")
table = pixel_separability(
    pixels, presence, vocab.features, all_pairs(vocab.features), snakemake.params.pca_variance
)
write_parquet(table, snakemake.output.table)
