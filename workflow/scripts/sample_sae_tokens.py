"""Rule sample_sae_tokens: a seeded sample of each pool layer's MLP-output tokens of the
fresh dataset (sharing.sae.dataset_seed), for the autoencoders."""

import numpy as np
import pandas as pd
import torch

from vlmbinding.atomic import atomic_path
from vlmbinding.extraction.sae_sample import sample_model_tokens
from vlmbinding.logs import to_file
from vlmbinding.models.loading import load_entry

to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
m, s = snakemake.params.model, snakemake.params.sae
loaded = load_entry(m, snakemake.input.weights, snakemake.params.device)
images = pd.read_parquet(snakemake.input.images)
if s["n_images"] is not None:
    images = images.iloc[: s["n_images"]]
tokens = sample_model_tokens(
    loaded,
    images["path"].tolist(),
    snakemake.params.layers,
    s["n_tokens"],
    seed=s["dataset_seed"],
    batch_size=snakemake.params.batch_size,
    dtype=s["dtype"],
    preprocess=s["preprocess"],
    center_mlp_out=s["center_mlp_out"],
    autocast=s["autocast"],
)
with atomic_path(snakemake.output.tokens) as tmp, open(tmp, "wb") as f:
    np.savez(f, **{f"layer_{layer}": x for layer, x in tokens.items()})
