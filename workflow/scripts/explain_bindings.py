"""Rule explain_bindings: Grad-CAM of every binding prompt on sampled images, measured
against the objects' boxes (METHOD.md section 7)."""

import logging

import numpy as np
import pandas as pd
import torch
from PIL import Image

from vlmbinding.analysis import gradcam as gc
from vlmbinding.analysis.binding import binding_prompts
from vlmbinding.atomic import write_parquet
from vlmbinding.data.crop import boxes_in_region, crops_to_square, seen_region, to_rgb
from vlmbinding.extraction.images import choose_preprocess
from vlmbinding.logs import to_file
from vlmbinding.models.loading import load_entry

to_file(snakemake.log[0])
log = logging.getLogger("explain_bindings")
torch.set_num_threads(snakemake.threads)
m, p = snakemake.params.model, snakemake.params.gradcam
loaded = load_entry(m, snakemake.input.weights, snakemake.params.device)
device = next(loaded.model.parameters()).device
# The same view of each image as the activations had (activations.preprocess); the maps
# are laid over the region of the image that this view shows the model.
transform = choose_preprocess(loaded, snakemake.params.preprocess)
crop = crops_to_square(snakemake.params.preprocess)
images = pd.read_parquet(snakemake.input.images)
objects = pd.read_parquet(snakemake.input.objects)
chosen = gc.choose_images(images, p["images"], p["object_counts"], p["n_images"], p["seed"])

tables, saved = [], {}
for n, row in enumerate(chosen.itertuples(index=False)):
    objs = objects[objects["image_id"] == row.image_id].sort_values("object")
    prompts = binding_prompts(objs, snakemake.params.template)
    extra = pd.DataFrame({"prompt": p["prompts"], "kind": "extra", "color": "", "shape": ""})
    prompts = pd.concat([prompts, extra], ignore_index=True).drop_duplicates("prompt")
    with Image.open(row.path) as im:
        rgb = to_rgb(im)
    x = transform(rgb)[None].to(device)
    text = gc.text_embeddings(loaded.model, loaded.tokenizer, prompts["prompt"].tolist())
    raw = gc.gradcam_maps(loaded.model, x, text, p["layer"], p["module"])[0]  # [P, g, g]
    region = seen_region(rgb.width, rgb.height, crop)
    at_region = gc.upsample(raw, (region[3] - region[1], region[2] - region[0])).cpu().numpy()
    # Shares and their even-spread baseline are measured over the region the model saw.
    in_view = boxes_in_region(objs.reset_index(drop=True), region)
    shares = gc.object_shares(at_region, prompts, in_view)
    tables.append(shares.assign(image_id=row.image_id))
    saved[f"{row.image_id}/raw"] = raw.cpu().numpy()
    saved[f"{row.image_id}/region"] = np.asarray(region)
    saved[f"{row.image_id}/prompts"] = prompts["prompt"].to_numpy(dtype=str)
    saved[f"{row.image_id}/kinds"] = prompts["kind"].to_numpy(dtype=str)
    log.info(f"explained image {n + 1}/{len(chosen)}: {row.image_id}")

shares = pd.concat(tables, ignore_index=True)
write_parquet(shares, snakemake.output.shares)
gc.localisation_summary(shares).to_csv(snakemake.output.summary, sep="\t", index=False)
np.savez_compressed(snakemake.output.maps, image_ids=chosen["image_id"].to_numpy(str), **saved)
