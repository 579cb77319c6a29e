"""Rule resample_entropy: the entropy statistics on half samples of the images."""

from vlmbinding.analysis.steps import resample_entropy
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
table = resample_entropy(
    i.images,
    i.objects,
    i.store,
    list(p.layers),
    Vocabulary.from_config(p.vocabulary),
    **p.entropy,
)
write_parquet(table, snakemake.output.table)
