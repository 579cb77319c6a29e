"""Rule correlate_superposition: S against D and M, with intervals and a Mantel test."""

from vlmbinding.analysis.steps import correlate_superposition
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
table = correlate_superposition(
    snakemake.input.superposition,
    snakemake.input.separability,
    Vocabulary.from_config(snakemake.params.vocabulary),
    **snakemake.params.statistics,
    primary=snakemake.params.primary,
)
write_parquet(table, snakemake.output.table)
