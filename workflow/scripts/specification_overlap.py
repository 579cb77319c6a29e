"""Rule specification_overlap: the co-tuned neuron overlap z under every pool/reduce/tokens."""

from vlmbinding.analysis.steps import specification_overlaps
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
i = snakemake.input
table = specification_overlaps(
    i.images,
    i.objects,
    i.store,
    Vocabulary.from_config(snakemake.params.vocabulary),
    snakemake.params.pools,
    **snakemake.params.grid,
)
write_parquet(table, snakemake.output.table)
