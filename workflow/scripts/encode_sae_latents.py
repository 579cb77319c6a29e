"""Rule encode_sae_latents: with a reduced store, the analysed images' latents in the
autoencoder basis, recomputed by the model and reduced per image (one array per SAE seed)."""

from pathlib import Path

import pandas as pd
import torch

from vlmbinding.analysis.sae import load_dictionary
from vlmbinding.extraction.sae_encoding import model_latents, save_latents
from vlmbinding.logs import to_file
from vlmbinding.models.loading import load_entry

to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
m, s, pool = snakemake.params.model, snakemake.params.sae, snakemake.params.pool
loaded = load_entry(m, snakemake.input.weights, snakemake.params.device)
images = pd.read_parquet(snakemake.input.images)
base = Path(snakemake.output.latents).parent  # results/<model>/sae
latents = model_latents(
    loaded,
    images["path"].tolist(),
    pool["layers"],
    s["seeds"],
    lambda layer, seed: load_dictionary(base / f"layer_{layer}" / f"seed-{seed}"),
    how=pool["reduce"],
    tokens=pool["tokens"],
    batch_size=snakemake.params.batch_size,
    dtype=s["dtype"],
    preprocess=s["preprocess"],
    center_mlp_out=s["center_mlp_out"],
    autocast=s["autocast"],
)
meta = {
    "image_ids": images["image_id"].astype(str).tolist(),
    "layers": [int(x) for x in pool["layers"]],
    "how": pool["reduce"],
    "tokens": pool["tokens"],
}
save_latents(snakemake.output.latents, latents, meta)
