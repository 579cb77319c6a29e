"""Rule extract_activations: every block's MLP outputs (per token, or reduced) to Zarr; a
reduced store pools each object's patch vectors when the params carry object_pooling."""

import pandas as pd
import torch

from vlmbinding.data.crop import crops_to_square
from vlmbinding.extraction.object_pooling import pooling_for
from vlmbinding.extraction.recording import extract_activations
from vlmbinding.logs import to_file
from vlmbinding.models.loading import load_entry

to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
m, a = snakemake.params.model, snakemake.params.activations
loaded = load_entry(m, snakemake.input.weights, snakemake.params.device)
images = pd.read_parquet(snakemake.input.images)
pooling = None
if "object_pooling" in a:  # the encoding geometry from a reduced store
    op, grid = a["object_pooling"], loaded.geometry["grid"]
    objects = pd.read_parquet(snakemake.input.objects)
    crop = crops_to_square(a["preprocess"])
    pooling = pooling_for(objects, images, op["layers"], crop, op["canvas"], [grid, grid])
extract_activations(
    loaded,
    images["path"].tolist(),
    images["image_id"].tolist(),
    snakemake.output.store,
    batch_size=a["batch_size"],
    dtype=a["dtype"],
    preprocess=a["preprocess"],
    center_mlp_out=a["center_mlp_out"],
    codec=a["codec"],
    compression_level=a["compression_level"],
    layout=a["layout"],
    store=a["store"],
    autocast=a["autocast"],
    workers=a["loader_threads"],
    encode_threads=snakemake.threads,
    model_name=m["name"],
    pooling=pooling,
    pooling_head=a.get("pooling_head", False),  # in params only when on
)
