"""Rule resolve_sae: how much of the neuron basis's sharing the autoencoder basis resolves."""

import logging

import pandas as pd

from vlmbinding.analysis.sae_sharing import resolved_table
from vlmbinding.atomic import atomic_path
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
log = logging.getLogger("resolve_sae")
table = resolved_table(
    pd.read_parquet(snakemake.input.sharing),
    pd.read_parquet(snakemake.input.seeds),
    threshold=snakemake.params.sae["threshold"],
)
for row in table[table["sae_seed"].eq("mean")].itertuples():
    log.info(
        "%s: %d of %d pairs share in the neuron basis, %d of them not in the sparse basis "
        "(%.2f); r of the pairs' z between bases %.3f",
        row.measure, row.shared_neurons, row.n_pairs, row.resolved, row.resolved_share, row.r_z,
    )  # fmt: skip
with atomic_path(snakemake.output.table) as tmp:
    table.to_csv(tmp, sep="\t", index=False)
