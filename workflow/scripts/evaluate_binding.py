"""Rule evaluate_binding: the swapped-caption binding test on every multi-object image.

The image embeddings come from the activation store (computed once, by the extraction,
with its preprocessing); only the captions go through the model here.
"""

import logging

import pandas as pd
import torch

from vlmbinding.analysis import binding as bd
from vlmbinding.analysis.gradcam import text_embeddings
from vlmbinding.atomic import write_parquet
from vlmbinding.data.reading import open_checked_store
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file
from vlmbinding.models.loading import load_entry

to_file(snakemake.log[0])
log = logging.getLogger("evaluate_binding")
torch.set_num_threads(snakemake.threads)
m = snakemake.params.model
loaded = load_entry(m, snakemake.input.weights, snakemake.params.device)
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
image_ids = pd.read_parquet(snakemake.input.images)["image_id"].astype(str).tolist()
objects = pd.read_parquet(snakemake.input.objects)
embeddings = open_checked_store(snakemake.input.store, image_ids)["embeddings"][:]

trials = bd.swapped_caption_trials(objects, snakemake.params.template)
scored, accuracy = bd.swapped_caption_test(
    trials,
    image_ids,
    embeddings,
    lambda texts: text_embeddings(loaded.model, loaded.tokenizer, texts).cpu().numpy(),
    vocab.features,
)
log.info(
    f"binding accuracy {accuracy['overall']['accuracy'].iloc[0]:.3f} over {len(scored)} trials"
)
write_parquet(scored, snakemake.output.trials)
accuracy["overall"].to_csv(snakemake.output.overall, sep="\t", index=False)
accuracy["per_count"].to_csv(snakemake.output.per_count, sep="\t", index=False)
write_parquet(accuracy["per_pair"], snakemake.output.per_pair)
