"""Rule compare_models: one table and one figure across the config's models."""

import pandas as pd

from vlmbinding import figures
from vlmbinding.compare import model_summary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
rows = []
zero_shots = iter(snakemake.input.zero_shot)  # one per toy model, in model order
for i, model in enumerate(snakemake.params.models):
    zero_shot = next(zero_shots) if snakemake.params.toy[i] else None
    rows.append(
        model_summary(
            model,
            pd.read_parquet(snakemake.input.correlation[i]),
            pd.read_parquet(snakemake.input.neurons[i]),
            pd.read_csv(snakemake.input.binding[i], sep="\t"),
            pd.read_parquet(snakemake.input.binding_correlation[i]),
            pd.read_csv(zero_shot, sep="\t") if zero_shot else None,
        )
    )
summary = pd.DataFrame(rows)
summary.to_csv(snakemake.output.table, sep="\t", index=False)
figures.save_figure(figures.model_comparison(summary), snakemake.output.png, snakemake.output.pdf)
