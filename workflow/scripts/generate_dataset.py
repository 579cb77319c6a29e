"""Rule generate_dataset: draw the toy-shapes images and write their tables."""

from vlmbinding.data import toyshapes as ds
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
p = snakemake.params.dataset
images, objects = ds.generate_dataset(
    snakemake.output.images,
    Vocabulary.from_config(p),
    p["object_counts"],
    p["images_per_count"],
    p["seed"],
    canvas=ds.Canvas(p["width"], p["height"]),
    supersample=p["supersample"],
)
ds.write_table(images, snakemake.output.images_table)
ds.write_table(objects, snakemake.output.objects_table)
