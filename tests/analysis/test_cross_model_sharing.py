"""Every measure of sharing in the cross-model view: per model and pooled over replicates."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis.cross_model_sharing import (
    SHARING_SUMMARY_COLUMNS,
    pool_sharing_replicates,
    sharing_correlation_rows,
    sharing_keys,
    sharing_pair_table,
    sharing_pairs_by_key,
)
from vlmbinding.analysis.pooling import SHARED_COLUMNS
from vlmbinding.analysis.sharing_stage import SHARING_COLUMNS, sharing_correlation_table
from vlmbinding.data.vocab import Vocabulary

VOCAB = Vocabulary()
KINDS = VOCAB.feature_kinds
PAIRS = list(itertools.combinations(VOCAB.features, 2))
# (measure, basis, layers) of a table with the autoencoder basis and the geometry per block
KEYS = [
    ("overlap", "neurons", "0,1"),
    ("overlap", "sae", "0,1"),
    ("neuron_sharing", "neurons", "0"),
    ("neuron_sharing", "neurons", "1"),
    ("interference", "neurons", "1"),
]
PLANTED = ("neuron_sharing", "neurons", "1")  # the one key whose score goes with D


def replicate(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sharing, separability) of one replicate: D follows the planted key's z only."""
    rng = np.random.default_rng(seed)
    f = {name: rng.normal() for name in VOCAB.features}
    signal = np.array([f[a] * f[b] for a, b in PAIRS])  # not additive: a pair's own value
    d = signal + 0.3 * rng.normal(size=len(PAIRS))
    base = pd.DataFrame({"f1": [a for a, _ in PAIRS], "f2": [b for _, b in PAIRS]})
    parts = []
    for measure, basis, layers in KEYS:
        z = signal if (measure, basis, layers) == PLANTED else rng.normal(size=len(PAIRS))
        z = z + 0.3 * rng.normal(size=len(PAIRS))
        parts.append(
            base.assign(measure=measure, basis=basis, layers=layers, value=z, null_mean=0.0)
            .assign(null_sd=1.0, z=z, p=0.5)[SHARING_COLUMNS]
        )  # fmt: skip
    sep = base.assign(space="full", D=d, M=-d)
    return pd.concat(parts, ignore_index=True), sep


def test_keys_are_ordered_overlap_first_then_bases_and_blocks():
    sharing, _ = replicate(0)
    assert sharing_keys(sharing.sample(frac=1, random_state=0)) == [
        KEYS[0], KEYS[1], KEYS[2], KEYS[3], KEYS[4]
    ]  # fmt: skip


def test_every_sharing_row_is_pooled_with_its_measure_basis_and_layers():
    reps = [replicate(s) for s in range(3)]
    pairs = {"toy": [sharing_pairs_by_key(sh, sep, KINDS) for sh, sep in reps]}
    pooled = pool_sharing_replicates(pairs, n_boot=300, seed=0)
    assert list(pooled.columns) == SHARED_COLUMNS and len(pooled) == len(KEYS) * 2
    assert list(dict.fromkeys(zip(pooled["measure"], pooled["basis"], pooled["layers"]))) == KEYS
    assert (pooled["k"] == 3).all()
    # the shared feature error counted once: never narrower than the features-only interval
    assert (pooled["ci_low"] <= pooled["feature_ci_low"] + 1e-12).all()
    assert (pooled["ci_high"] >= pooled["feature_ci_high"] - 1e-12).all()
    key = pooled.set_index(["measure", "basis", "layers", "metric"])
    hit = key.loc[(*PLANTED, "D")]
    assert hit["r_pooled"] > 0.7 and hit["ci_low"] > 0
    other = key.loc[("neuron_sharing", "neurons", "0", "D")]
    assert abs(other["r_pooled"]) < 0.4 and other["ci_low"] < 0 < other["ci_high"]


def test_a_replicate_without_a_key_is_an_error_naming_it():
    (a, sep_a), (b, sep_b) = replicate(0), replicate(1)
    b = b[~b["measure"].eq("interference")]
    pairs = {"toy": [sharing_pairs_by_key(a, sep_a, KINDS), sharing_pairs_by_key(b, sep_b, KINDS)]}
    with pytest.raises(ValueError, match="interference"):
        pool_sharing_replicates(pairs, n_boot=50)


def test_the_per_model_rows_name_measure_basis_and_layers():
    sharing, sep = replicate(0)
    corr = sharing_correlation_table(sharing, sep, KINDS, n_boot=100, n_perm=99, seed=0)
    rows = sharing_correlation_rows("toy", corr)
    assert list(rows.columns) == SHARING_SUMMARY_COLUMNS and len(rows) == len(KEYS) * 2
    assert list(dict.fromkeys(zip(rows["measure"], rows["basis"], rows["layers"]))) == KEYS
    hit = rows.set_index(["measure", "basis", "layers", "metric"]).loc[(*PLANTED, "M")]
    assert hit["pearson_r"] < -0.7 and hit["feature_ci_high"] < 0 and hit["mantel_p"] < 0.05


def test_a_measure_per_block_needs_its_block_named():
    sharing, sep = replicate(0)
    with pytest.raises(ValueError, match="name one"):
        sharing_pair_table(sharing, sep, KINDS, measure="neuron_sharing")
    one = sharing_pair_table(sharing, sep, KINDS, measure="neuron_sharing", layers="1")
    assert len(one) == len(one.drop_duplicates(["f1", "f2"])) > 0
