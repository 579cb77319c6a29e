"""The sharing table in the autoencoder basis: its seeds combined, and what it resolves.

Issue 22, measure 3. Each of the SAE seeds (one dictionary per analysed layer, trained on
a fresh dataset) gives a full sharing table (`sharing_stage.sharing_table`, basis 'sae').
`combine_sae_seeds` makes one row per pair and measure of them, so the gathered
sharing.parquet keeps its key (measure, basis, layers, f1, f2) and every downstream step
(correlations, sanity rows, figures) reads the autoencoder basis as it reads the neurons;
the per-seed rows are kept beside it. `resolved_sharing` compares the two bases pair by
pair: how much of the neuron basis's sharing the sparse basis resolves.

Pure (pandas and numpy only).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .sharing_stage import SHARING_COLUMNS, check_sharing

log = logging.getLogger(__name__)

KEY = ["measure", "basis", "layers", "f1", "f2"]
SEED_COLUMNS = ["seed", *SHARING_COLUMNS]
RESOLVED_COLUMNS = [
    "measure",
    "sae_seed",
    "threshold",
    "n_pairs",
    "shared_neurons",
    "shared_sae",
    "shared_both",
    "resolved",
    "resolved_share",
    "mean_z_neurons",
    "mean_z_sae",
    "r_z",
    "rho_z",
]


def combine_sae_seeds(tables: dict[int, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(combined, per_seed) of the sharing tables of several SAE seeds (seed -> table).

    per_seed: the tables stacked with a `seed` column first (SEED_COLUMNS). combined: one
    row per (measure, basis, layers, f1, f2) with value, null_mean, null_sd and z the mean
    over the seeds (z is the mean of the seeds' z, not recomputed from the means) and p =
    min(1, 2 x the mean of the seeds' p), which is a valid p-value whatever the dependence
    between the seeds (Vovk and Wang 2020; the seeds share the images, so they are not
    independent). The unit averaged over is the whole SAE training run (one seed). Every
    seed must have the same rows: a pair missing in one seed is an error naming it.
    """
    if not tables:
        raise ValueError("no SAE seed to combine (sharing.sae.seeds is empty)")
    stacked = []
    for seed, table in tables.items():
        stacked.append(check_sharing(table).assign(seed=int(seed)))
    per_seed = pd.concat(stacked, ignore_index=True)[SEED_COLUMNS]
    twice = per_seed[per_seed.duplicated(["seed", *KEY], keep=False)]
    if len(twice):
        raise ValueError(f"SAE seed {twice['seed'].iloc[0]}: a pair appears twice in its table")
    counts = per_seed.groupby(KEY, sort=False)["seed"].nunique()
    partial = counts[counts < len(tables)]
    if len(partial):
        raise ValueError(
            f"{len(partial)} sharing rows are missing in some SAE seeds, e.g. "
            f"{list(partial.index[0])}"
        )
    grouped = per_seed.groupby(KEY, sort=False)
    combined = grouped[["value", "null_mean", "null_sd", "z"]].mean()
    combined["p"] = np.minimum(1.0, 2.0 * grouped["p"].mean())
    return check_sharing(combined.reset_index()), per_seed


def seed_agreement(per_seed: pd.DataFrame, measure: str = "overlap") -> pd.DataFrame:
    """Pearson r of the pairs' z between every two SAE seeds (seed_a, seed_b, r): how much
    the sparse basis's sharing is a property of the layer rather than of one training run."""
    rows = per_seed[per_seed["measure"].eq(measure)]
    wide = rows.pivot_table(index=["f1", "f2"], columns="seed", values="z")
    seeds = list(wide.columns)
    out = []
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            out.append((a, b, _pearson(wide[a].to_numpy(), wide[b].to_numpy())))
    return pd.DataFrame(out, columns=["seed_a", "seed_b", "r"])


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank().to_numpy()


def resolved_sharing(
    neurons: pd.DataFrame, sae: pd.DataFrame, *, threshold: float = 1.645, sae_seed="mean"
) -> pd.DataFrame:
    """Per measure, how much of the neuron basis's sharing the sparse basis resolves.

    `neurons` and `sae` are sharing tables (the rows of basis 'neurons' and 'sae'); pairs
    are matched by (f1, f2) within a measure, only pairs in both count. A pair *shares* in a
    basis when its z exceeds `threshold` (1.645: one-sided 5% under a normal null).
    shared_neurons / shared_sae / shared_both count those pairs; resolved = pairs that
    share in the neuron basis but not in the sparse one, resolved_share = resolved /
    shared_neurons (NaN, with a warning, when no pair shares in the neuron basis); mean_z_*
    the mean z over the pairs; r_z and rho_z the Pearson and Spearman correlations of the
    pairs' z between the bases (finite z only): high r_z means the sparse basis ranks the
    pairs as the neurons do. `sae_seed` labels the row (the combined table, or one seed).
    """
    out = []
    for measure in [m for m in neurons["measure"].unique() if m in set(sae["measure"])]:
        a = neurons[neurons["measure"].eq(measure)][["f1", "f2", "z"]]
        b = sae[sae["measure"].eq(measure)][["f1", "f2", "z"]]
        both = a.merge(b, on=["f1", "f2"], suffixes=("_neurons", "_sae"))
        if both.empty:
            log.warning("%s: no pair in both bases", measure)
            continue
        zn, zs = both["z_neurons"].to_numpy(float), both["z_sae"].to_numpy(float)
        sn, ss = zn > threshold, zs > threshold
        resolved = int((sn & ~ss).sum())
        if not sn.any():
            log.warning("%s: no pair shares in the neuron basis (z > %g)", measure, threshold)
        ok = np.isfinite(zn) & np.isfinite(zs)
        out.append(
            {
                "measure": measure,
                "sae_seed": str(sae_seed),
                "threshold": float(threshold),
                "n_pairs": len(both),
                "shared_neurons": int(sn.sum()),
                "shared_sae": int(ss.sum()),
                "shared_both": int((sn & ss).sum()),
                "resolved": resolved,
                "resolved_share": resolved / sn.sum() if sn.any() else float("nan"),
                "mean_z_neurons": float(np.mean(zn[np.isfinite(zn)])),
                "mean_z_sae": float(np.mean(zs[np.isfinite(zs)])),
                "r_z": _pearson(zn, zs),
                "rho_z": _pearson(_ranks(zn[ok]), _ranks(zs[ok])),
            }
        )
    return pd.DataFrame(out, columns=RESOLVED_COLUMNS)


def resolved_table(
    sharing: pd.DataFrame, per_seed: pd.DataFrame, *, threshold: float = 1.645
) -> pd.DataFrame:
    """`resolved_sharing` of the combined autoencoder basis (sae_seed 'mean') and of each
    seed, from sharing.parquet (both bases) and the per-seed table (`combine_sae_seeds`)."""
    neurons = sharing[sharing["basis"].eq("neurons")]
    sae = sharing[sharing["basis"].eq("sae")]
    if neurons.empty or sae.empty:
        raise ValueError("resolved sharing needs rows of both bases (neurons and sae)")
    parts = [resolved_sharing(neurons, sae, threshold=threshold, sae_seed="mean")]
    for seed, rows in per_seed.groupby("seed"):
        parts.append(resolved_sharing(neurons, rows, threshold=threshold, sae_seed=seed))
    return pd.concat(parts, ignore_index=True)
