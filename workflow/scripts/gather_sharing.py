"""Rule gather_sharing: the parts of the sharing table stacked into sharing.parquet."""

import logging

import pandas as pd

from vlmbinding.analysis.sharing_stage import combine_sharing
from vlmbinding.atomic import write_parquet
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
log = logging.getLogger("gather_sharing")
parts = {path: pd.read_parquet(path) for path in snakemake.input.parts}
table = combine_sharing(parts)
log.info("%d rows from %s", len(table), ", ".join(parts))
write_parquet(table, snakemake.output.table)
