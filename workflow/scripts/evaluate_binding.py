"""Rule evaluate_binding: the swapped-caption binding test on every multi-object image."""

import logging

import pandas as pd
import torch

from vlmbinding import binding as bd
from vlmbinding.activations import choose_preprocess, load_images
from vlmbinding.atomic import write_parquet
from vlmbinding.gradcam import text_embeddings
from vlmbinding.logs import to_file
from vlmbinding.models import load_entry
from vlmbinding.vocab import Vocabulary

to_file(snakemake.log[0])
log = logging.getLogger("evaluate_binding")
torch.set_num_threads(snakemake.threads)
m = snakemake.params.model
loaded = load_entry(m, snakemake.input.weights, snakemake.params.device)
device = next(loaded.model.parameters()).device
# The same view of each image as the activations had (activations.preprocess).
transform = choose_preprocess(loaded, snakemake.params.preprocess)
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
images = pd.read_parquet(snakemake.input.images)
objects = pd.read_parquet(snakemake.input.objects)

trials = bd.swapped_caption_trials(objects, snakemake.params.template)
ids = list(dict.fromkeys(trials["image_id"]))
paths = images.set_index("image_id").loc[ids, "path"]
embeddings = []
with torch.no_grad():
    for start in range(0, len(ids), 64):
        batch = load_images(paths[start : start + 64].tolist(), transform).to(device)
        embeddings.append(loaded.model.encode_image(batch).float().cpu())
captions = bd.trial_captions(trials)
caption_emb = torch.cat(
    [
        text_embeddings(loaded.model, loaded.tokenizer, captions[s : s + 256]).cpu()
        for s in range(0, len(captions), 256)
    ]
)
sim_true, sim_swapped = bd.trial_similarities(
    trials, ids, torch.cat(embeddings).numpy(), captions, caption_emb.numpy()
)
scored = bd.score_trials(trials, sim_true, sim_swapped)
accuracy = bd.binding_accuracy(scored, vocab.features)
log.info(
    f"binding accuracy {accuracy['overall']['accuracy'].iloc[0]:.3f} over {len(scored)} trials"
)
write_parquet(scored, snakemake.output.trials)
accuracy["overall"].to_csv(snakemake.output.overall, sep="\t", index=False)
accuracy["per_count"].to_csv(snakemake.output.per_count, sep="\t", index=False)
write_parquet(accuracy["per_pair"], snakemake.output.per_pair)
