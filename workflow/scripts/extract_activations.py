"""Rule extract_activations: stream every block's MLP outputs for every token to Zarr."""

import pandas as pd
import torch

from vlmbinding.activations import extract_activations
from vlmbinding.logs import to_file
from vlmbinding.models import load_entry

to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
m, a = snakemake.params.model, snakemake.params.activations
loaded = load_entry(m, snakemake.input.weights, snakemake.params.device)
images = pd.read_parquet(snakemake.input.images)
extract_activations(
    loaded,
    images["path"].tolist(),
    images["image_id"].tolist(),
    snakemake.output.store,
    batch_size=a["batch_size"],
    dtype=a["dtype"],
    preprocess=a["preprocess"],
    center_mlp_out=a["center_mlp_out"],
    compression_level=a["compression_level"],
    model_name=m["name"],
)
