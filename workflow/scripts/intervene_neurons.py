"""Rule intervene_neurons: ablate each pair's neurons and its controls; ΔD, ΔM, Δbinding."""

import logging

import numpy as np
import torch

from vlmbinding.atomic import write_parquet
from vlmbinding.interventions.stage import run_stage
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
logging.getLogger("intervene_neurons").info("threads: %d", snakemake.threads)
torch.set_num_threads(snakemake.threads)
torch.set_flush_denormal(True)
effects, summary, example = run_stage(
    snakemake.params.model,
    snakemake.input.weights or None,
    {
        key: getattr(snakemake.input, key)
        for key in ("store", "images", "objects", "superposition", "feature_neurons")
    },
    snakemake.params.interventions,
    snakemake.params.vocabulary,
    snakemake.params.template,
    snakemake.params.statistics,
    snakemake.params.pca_variance,
    snakemake.params.device,
    snakemake.params.pool,
)
write_parquet(effects, snakemake.output.effects)
summary.to_csv(snakemake.output.summary, sep="\t", index=False)
np.savez_compressed(snakemake.output.example, **example)
