"""Rule import_dataset: bring a user's images and objects table into results/dataset/."""

from vlmbinding.data import external as ext
from vlmbinding.data.crop import crops_to_square
from vlmbinding.data.toyshapes import write_table
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
objects = ext.read_objects_table(snakemake.input.objects)
files = ext.validate_external(
    objects,
    snakemake.input.images,
    Vocabulary.from_config(snakemake.params.dataset),
    crop=crops_to_square(snakemake.params.preprocess),
)
images, objects = ext.import_external(objects, files, snakemake.output.images)
write_table(images, snakemake.output.images_table)
write_table(objects, snakemake.output.objects_table)
