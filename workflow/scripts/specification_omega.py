"""Rule specification_omega: the encoding geometry's neuron sharing z under every layer pool."""

from vlmbinding.analysis.steps import specification_omegas
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
try:
    table = specification_omegas(
        i.images,
        i.objects,
        i.store,
        Vocabulary.from_config(p.vocabulary),
        p.pools,
        p.canvas,
        p.preprocess,
        **p.grid,
    )
except ValueError as e:
    raise ValueError(f"robustness.measure omega ({snakemake.wildcards.model}): {e}") from e
write_parquet(table, snakemake.output.table)
