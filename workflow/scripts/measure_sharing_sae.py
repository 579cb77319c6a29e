"""Rule measure_sharing_sae: the sharing measures in the autoencoder basis, per SAE seed,
combined over the seeds (sharing/sae.parquet) and kept per seed (sae/seeds.parquet)."""

import logging
from pathlib import Path

import pandas as pd

from vlmbinding.analysis.sae import load_dictionary
from vlmbinding.analysis.sae_sharing import combine_sae_seeds, seed_agreement
from vlmbinding.analysis.sae_tokens import sae_pool_by_seed
from vlmbinding.analysis.sharing_stage import stage_sharing_table
from vlmbinding.atomic import write_parquet
from vlmbinding.data.reading import dataset_presence, open_checked_store
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction.sae_encoding import load_latents
from vlmbinding.extraction.store import layer_slice, n_prefix_tokens
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
log = logging.getLogger("measure_sharing_sae")
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
p, s, pool = snakemake.params.sharing, snakemake.params.sae, snakemake.params.pool
model = snakemake.wildcards.model
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)
objects = pd.read_parquet(snakemake.input.objects)
if snakemake.input.latents:  # a reduced store: recomputed by rule encode_sae_latents
    expected = {"image_ids": image_ids, "layers": [int(x) for x in pool["layers"]]}
    expected |= {"how": pool["reduce"], "tokens": pool["tokens"]}
    latents = load_latents(snakemake.input.latents, s["seeds"], expected)
else:
    root = open_checked_store(snakemake.input.store, image_ids)
    base = Path(snakemake.output.seeds).parent  # results/<model>/sae
    latents = sae_pool_by_seed(
        lambda layer: layer_slice(root, layer),
        lambda layer, seed: load_dictionary(base / f"layer_{layer}" / f"seed-{seed}"),
        pool["layers"],
        s["seeds"],
        how=pool["reduce"],
        tokens=pool["tokens"],
        n_prefix=n_prefix_tokens(root),
    )
tables = {}
for seed, acts in latents.items():
    log.info("SAE seed %d: %d latents in the pool", seed, acts.shape[1])
    tables[seed] = stage_sharing_table(
        acts,
        presence,
        vocab,
        objects,
        image_ids,
        layers=pool["layers"],
        basis="sae",
        sharing=p,
        m=s["m"],
        context=f"sharing, autoencoder basis ({model}, layers {pool['layers']}, SAE seed "
        f"{seed}; sharing.sae.m)",
    )
combined, per_seed = combine_sae_seeds(tables)
agreement = seed_agreement(per_seed)
log.info("overlap z between SAE seeds: r %s", agreement["r"].round(3).tolist())
spread = per_seed[per_seed["measure"].eq("overlap")].groupby(["f1", "f2"])["z"].std()
log.info("overlap z: mean sd over the SAE seeds %.3f (max %.3f)", spread.mean(), spread.max())
write_parquet(combined, snakemake.output.table)
write_parquet(per_seed, snakemake.output.seeds)
