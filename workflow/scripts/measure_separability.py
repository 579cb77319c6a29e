"""Rule measure_separability: D and M of every feature pair, full and PCA space."""

from vlmbinding.analysis.steps import measure_separability
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
i = snakemake.input
table = measure_separability(
    i.images,
    i.objects,
    i.store,
    Vocabulary.from_config(snakemake.params.vocabulary),
    snakemake.params.pca_variance,
)
write_parquet(table, snakemake.output.table)
