"""Rule train_toy_model: train the offline toy CLIP and evaluate it zero-shot.

Training scenes avoid the analysis dataset's scenes, the test scenes and the held-out
combinations (vlmbinding.models.toy.scenes); zero-shot accuracy is reported for seen and unseen
combinations separately.
"""

import logging

import open_clip
import pandas as pd
import torch

from vlmbinding.data.toyshapes import Canvas
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file
from vlmbinding.models.loading import from_config, pick_device, save_checkpoint
from vlmbinding.models.toy import model as tm
from vlmbinding.models.toy import scenes as ts

to_file(snakemake.log[0])
log = logging.getLogger("train_toy_model")
toy, cfg = snakemake.params.toy, snakemake.params.arch_cfg
vocab = Vocabulary.from_config(toy["vocabulary"])
device = pick_device(snakemake.params.device)
torch.set_num_threads(snakemake.threads)
torch.set_flush_denormal(True)

analysis = pd.read_parquet(snakemake.input.analysis_objects)
objects, captions, evaluation = ts.clean_split(vocab, toy, analysis)
images = tm.render_scenes(objects, cfg["vision_cfg"]["image_size"])
log.info(f"{len(images)} training scenes drawn, e.g. {captions[0]!r}")

torch.manual_seed(toy["seed"])
loaded = from_config(cfg, snakemake.params.model["arch"], "toy")
model, tokenizer, preprocess = loaded.model, loaded.tokenizer, loaded.preprocess
curve = tm.train(
    model,
    tokenizer,
    images,
    captions,
    toy["epochs"],
    toy["batch_size"],
    toy["lr"],
    toy["weight_decay"],
    toy["warmup_steps"],
    toy["seed"],
    open_clip.OPENAI_DATASET_MEAN,
    open_clip.OPENAI_DATASET_STD,
    device,
    hard_negatives=(
        tm.hard_negative_captions(captions, toy["seed"] + 2) if toy["hard_negatives"] else None
    ),
)
predicted = ts.zero_shot_predictions(
    model,
    tokenizer,
    preprocess,
    vocab,
    evaluation,
    Canvas(toy["vocabulary"]["width"], toy["vocabulary"]["height"]),
    device,
)
accuracy = ts.zero_shot_table(evaluation, predicted, vocab)
evaluation.join(predicted.add_prefix("predicted_")).to_csv(
    snakemake.output.evaluation, sep="\t", index=False
)
log.info(
    "zero-shot accuracy on test scenes (seen / unseen combinations):\n%s",
    accuracy.to_string(index=False),
)
save_checkpoint(model.cpu(), cfg, snakemake.output.checkpoint, vocabulary=toy["vocabulary"])
accuracy.to_csv(snakemake.output.zero_shot, sep="\t", index=False)
pd.DataFrame(curve).to_csv(snakemake.output.curve, sep="\t", index=False)
