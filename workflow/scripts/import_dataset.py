"""Rule import_dataset: bring a user's images and objects table into results/dataset/."""

from vlmbinding import dataset as ds
from vlmbinding.logs import to_file
from vlmbinding.vocab import Vocabulary

to_file(snakemake.log[0])
objects = ds.read_objects_table(snakemake.input.objects)
files = ds.validate_external(
    objects, snakemake.input.images, Vocabulary.from_config(snakemake.params.dataset)
)
images, objects = ds.import_external(objects, files, snakemake.output.images)
ds.write_table(images, snakemake.output.images_table)
ds.write_table(objects, snakemake.output.objects_table)
