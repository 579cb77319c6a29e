"""Rule train_sae: one layer's TopK autoencoders, one per seed (sharing.sae.seeds)."""

import logging

import numpy as np
import pandas as pd
import torch

from vlmbinding.analysis.sae import TRAINING_COLUMNS, save_dictionary, train_topk_sae
from vlmbinding.atomic import atomic_path
from vlmbinding.logs import to_file
from vlmbinding.models.loading import pick_device

to_file(snakemake.log[0])
log = logging.getLogger("train_sae")
torch.set_num_threads(snakemake.threads)
s, model, layer = snakemake.params.sae, snakemake.wildcards.model, snakemake.wildcards.layer
with np.load(snakemake.input.tokens) as npz:
    tokens = npz[f"layer_{layer}"]
device = str(pick_device(snakemake.params.device))  # 'auto': CUDA when there is one
curves = []
for seed, path in zip(s["seeds"], snakemake.output.dictionaries, strict=True):
    dictionary, curve = train_topk_sae(
        tokens,
        expansion=s["expansion"],
        k=s["k"],
        epochs=s["epochs"],
        lr=s["lr"],
        seed=seed,
        device=device,
        name=f"{model} layer {layer}",
    )
    save_dictionary(path.rsplit("/", 1)[0], dictionary, {"model": model})
    log.info(
        "seed %d: held-out fvu %.4f, dead fraction %.3f",
        seed, dictionary.meta["fvu"], dictionary.meta["dead_fraction"],
    )  # fmt: skip
    curves.append(curve.assign(seed=seed))
table = pd.concat(curves, ignore_index=True)[["seed", *TRAINING_COLUMNS]]
with atomic_path(snakemake.output.training) as tmp:
    table.to_csv(tmp, sep="\t", index=False)
