"""Rule assemble_specifications: r(S, D) and r(S, M) under every analysis specification."""

import pandas as pd

from vlmbinding.analysis.specification import specification_summary, specification_table
from vlmbinding.analysis.specification_joint import joint_summary
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
grid = snakemake.params.grid
table, a, b = specification_table(
    pd.concat([pd.read_parquet(path) for path in snakemake.input.layers], ignore_index=True),
    pd.read_parquet(snakemake.input.separability),
    vocab.feature_kinds,
    snakemake.params.pools,
    grid["n_neurons"],
    spaces=grid["space"],
    subsets=grid["subset"],
    ratio_threshold=snakemake.params.ratio_threshold,
    n_boot=grid["bootstrap"],
    n_perm=grid["permutations"],
    seed=grid["seed"],
    main=snakemake.params.main,
    keep_matrices=True,
)
write_parquet(table, snakemake.output.table)
joint = joint_summary(
    table, a, b, vocab.feature_kinds, grid["permutations"], grid["seed"], grid["alpha"]
)
summary = specification_summary(table, grid["alpha"]).merge(joint, on="metric", how="left")
summary.to_csv(snakemake.output.summary, sep="\t", index=False)
