"""Rule plot_gradcam: the Grad-CAM grid, rows images, columns prompts (true / swapped)."""

import numpy as np
import pandas as pd
import torch
from PIL import Image

from vlmbinding.analysis.gradcam import normalise, upsample
from vlmbinding.data.crop import place_on_image, to_rgb
from vlmbinding.logs import to_file
from vlmbinding.report import figures

to_file(snakemake.log[0])
saved = np.load(snakemake.input.maps)
images = pd.read_parquet(snakemake.input.images).set_index("image_id")
shares = pd.read_parquet(snakemake.input.shares)
rows = {"images": [], "maps": [], "prompts": [], "kinds": [], "titles": [], "notes": []}
for image_id in saved["image_ids"][: snakemake.params.max_rows]:
    with Image.open(images.loc[image_id, "path"]) as im:
        rgb = np.asarray(to_rgb(im))
    raw = torch.from_numpy(saved[f"{image_id}/raw"])
    prompts = saved[f"{image_id}/prompts"].tolist()
    kinds = saved[f"{image_id}/kinds"].tolist()
    mine = shares[shares["image_id"] == image_id]
    notes = []
    for prompt, kind in zip(prompts, kinds):
        s = mine[mine["prompt"] == prompt].groupby("role")["share"].sum(min_count=1)
        if s.isna().all() and len(s):
            notes.append("all-zero map: no share")
        elif kind == "true":
            notes.append(f"on its object {s.get('target', 0):.2f}")
        elif kind == "swapped":
            on_color, on_shape = s.get("color_object", 0), s.get("shape_object", 0)
            notes.append(f"colour obj {on_color:.2f} / shape obj {on_shape:.2f}")
        else:
            notes.append("")
    rows["images"].append(rgb)
    # Over the region of the image the model saw (explain_bindings saved it).
    x0, y0, x1, y1 = saved[f"{image_id}/region"].tolist()
    at_region = normalise(upsample(raw, (y1 - y0, x1 - x0))).numpy()
    rows["maps"].append(place_on_image(at_region, *rgb.shape[:2], (x0, y0, x1, y1)))
    rows["prompts"].append(prompts)
    rows["kinds"].append(kinds)
    rows["titles"].append(f"{image_id}\n{int(images.loc[image_id, 'num_objects'])} objects")
    rows["notes"].append(notes)
fig = figures.gradcam_grid(
    rows["images"],
    rows["maps"],
    rows["prompts"],
    rows["kinds"],
    row_titles=rows["titles"],
    shares=rows["notes"],
    title=f"{snakemake.wildcards.model}: Grad-CAM of image-text similarity "
    f"(block {snakemake.params.layer} {snakemake.params.module} output)",
)
figures.save_figure(fig, snakemake.output.png, snakemake.output.pdf)
