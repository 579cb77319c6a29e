"""Rule explain_bindings: Grad-CAM of every binding prompt on sampled images, measured
against the objects' boxes (METHOD.md section 7)."""

import logging

import numpy as np
import pandas as pd
import torch
from PIL import Image

from vlmbinding import gradcam as gc
from vlmbinding.binding import binding_prompts
from vlmbinding.logs import to_file
from vlmbinding.models import load_entry

to_file(snakemake.log[0])
log = logging.getLogger("explain_bindings")
torch.set_num_threads(snakemake.threads)
m, p = snakemake.params.model, snakemake.params.gradcam
loaded = load_entry(m, snakemake.input.weights, snakemake.params.device)
device = next(loaded.model.parameters()).device
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
        rgb = im.convert("RGB")
    x = loaded.preprocess(rgb)[None].to(device)
    text = gc.text_embeddings(loaded.model, loaded.tokenizer, prompts["prompt"].tolist())
    raw = gc.gradcam_maps(loaded.model, x, text, p["layer"], p["module"])[0]  # [P, g, g]
    # The model's centre crop of a near-square image drops under a pixel: the map is laid
    # over the whole image.
    at_image = gc.upsample(raw, (rgb.height, rgb.width)).cpu().numpy()
    shares = gc.object_shares(at_image, prompts, objs.reset_index(drop=True))
    tables.append(shares.assign(image_id=row.image_id))
    saved[f"{row.image_id}/raw"] = raw.cpu().numpy()
    saved[f"{row.image_id}/prompts"] = prompts["prompt"].to_numpy(dtype=str)
    saved[f"{row.image_id}/kinds"] = prompts["kind"].to_numpy(dtype=str)
    log.info(f"explained image {n + 1}/{len(chosen)}: {row.image_id}")

shares = pd.concat(tables, ignore_index=True)
shares.to_parquet(snakemake.output.shares, index=False)
gc.localisation_summary(shares).to_csv(snakemake.output.summary, sep="\t", index=False)
np.savez_compressed(snakemake.output.maps, image_ids=chosen["image_id"].to_numpy(str), **saved)
