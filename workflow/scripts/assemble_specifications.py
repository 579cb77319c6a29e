"""Rule assemble_specifications: r(S, D) and r(S, M) under every analysis specification."""

from vlmbinding.analysis.steps import assemble_specifications
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
table, summary = assemble_specifications(
    snakemake.input.layers,
    snakemake.input.separability,
    Vocabulary.from_config(snakemake.params.vocabulary),
    snakemake.params.pools,
    snakemake.params.grid,
    snakemake.params.ratio_threshold,
    main=snakemake.params.main,
    overlap=snakemake.input.get("overlap") or None,  # robustness.measure has overlap
    omega=snakemake.input.get("omega") or None,  # robustness.measure has omega
)
write_parquet(table, snakemake.output.table)
summary.to_csv(snakemake.output.summary, sep="\t", index=False)
