"""The autoencoder basis's tables: seeds combined into one row per pair (valid p under any
dependence), the per-seed rows kept, and how much neuron-basis sharing the sparse basis
resolves; the streamed token sample equals the one drawn from a whole array."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis.sae_sharing import (
    RESOLVED_COLUMNS,
    SEED_COLUMNS,
    combine_sae_seeds,
    resolved_sharing,
    resolved_table,
    seed_agreement,
)
from vlmbinding.analysis.sae_tokens import TokenSample, sample_tokens, token_sample_index
from vlmbinding.analysis.sharing_stage import SHARING_COLUMNS, combine_sharing

FEATURES = ["red", "green", "blue", "square", "circle"]
PAIRS = [(a, b) for i, a in enumerate(FEATURES) for b in FEATURES[i + 1 :]]


def table(z, basis="sae", p=None, measure="overlap"):
    z = np.asarray(z, dtype=float)
    return pd.DataFrame(
        {
            "f1": [a for a, _ in PAIRS],
            "f2": [b for _, b in PAIRS],
            "measure": measure,
            "basis": basis,
            "layers": "0,1",
            "value": 2.0 + z,
            "null_mean": 2.0,
            "null_sd": 1.0,
            "z": z,
            "p": np.full(len(z), 0.2) if p is None else p,
        }
    )


def test_seeds_are_averaged_into_one_row_per_pair_with_a_valid_p():
    rng = np.random.default_rng(0)
    zs = {s: rng.normal(size=len(PAIRS)) for s in (0, 1, 2)}
    ps = {0: np.full(10, 0.01), 1: np.full(10, 0.03), 2: np.full(10, 0.8)}
    combined, per_seed = combine_sae_seeds({s: table(zs[s], p=ps[s]) for s in zs})
    assert list(combined.columns) == SHARING_COLUMNS and len(combined) == len(PAIRS)
    assert list(per_seed.columns) == SEED_COLUMNS and len(per_seed) == 3 * len(PAIRS)
    np.testing.assert_allclose(combined["z"], np.mean([zs[s] for s in zs], axis=0))
    np.testing.assert_allclose(combined["p"], min(1.0, 2 * (0.01 + 0.03 + 0.8) / 3))
    # the combined rows stack with the neuron basis's under the sharing table's key
    both = combine_sharing({"neurons": table(zs[0], basis="neurons"), "sae": combined})
    assert len(both) == 2 * len(PAIRS)


def test_a_pair_missing_in_one_seed_is_an_error():
    with pytest.raises(ValueError, match="missing in some SAE seeds"):
        combine_sae_seeds({0: table(np.zeros(10)), 1: table(np.zeros(10)).iloc[1:]})
    with pytest.raises(ValueError, match="sharing.sae.seeds"):
        combine_sae_seeds({})


def test_the_seed_agreement_is_the_correlation_of_the_pairs_z():
    z = np.arange(10.0)
    _, per_seed = combine_sae_seeds({0: table(z), 1: table(z * 2), 2: table(-z)})
    agreement = seed_agreement(per_seed)
    np.testing.assert_allclose(agreement["r"], [1.0, -1.0, -1.0])


def test_resolved_counts_the_neuron_sharing_the_sparse_basis_does_not_show():
    zn = np.array([5, 4, 3, 2, 0, 0, 0, 0, -1, -2], dtype=float)  # 4 pairs share (z > 1.645)
    zs = np.array([5, 0, 0, 0, 3, 0, 0, 0, -1, -2], dtype=float)  # 1 of them still does
    row = resolved_sharing(table(zn, "neurons"), table(zs), threshold=1.645).iloc[0]
    assert (row.n_pairs, row.shared_neurons, row.shared_sae, row.shared_both) == (10, 4, 2, 1)
    assert row.resolved == 3 and row.resolved_share == pytest.approx(0.75)
    assert row.mean_z_neurons == pytest.approx(zn.mean())
    assert row.r_z == pytest.approx(np.corrcoef(zn, zs)[0, 1])


def test_the_resolved_table_has_the_mean_and_every_seed():
    zn = np.linspace(-2, 4, 10)
    combined, per_seed = combine_sae_seeds({s: table(zn * (s + 1) / 3) for s in (0, 1, 2)})
    sharing = pd.concat([table(zn, "neurons"), combined], ignore_index=True)
    out = resolved_table(sharing, per_seed)
    assert list(out.columns) == RESOLVED_COLUMNS
    assert out["sae_seed"].tolist() == ["mean", "0", "1", "2"]
    assert (out["r_z"] > 0.99).all()
    assert out.set_index("sae_seed")["resolved"].to_dict() == {"mean": 1, "0": 4, "1": 1, "2": 0}
    with pytest.raises(ValueError, match="both bases"):
        resolved_table(table(zn, "neurons"), per_seed)


@pytest.mark.parametrize("batch", [1, 3, 4, 10])
def test_the_streamed_token_sample_is_the_sample_of_the_whole_array(batch):
    mlp_out = np.random.default_rng(1).normal(size=(9, 5, 3)).astype(np.float32)
    sample = TokenSample(9, 5, 3, 11, seed=4)
    for start in range(0, 9, batch):
        assert not sample.complete
        sample.add(start, mlp_out[start : start + batch])
    assert sample.complete
    np.testing.assert_array_equal(sample.values, sample_tokens(mlp_out, 11, seed=4))
    flat = token_sample_index(9, 5, 11, seed=4)
    np.testing.assert_array_equal(sample.values, mlp_out.reshape(45, 3)[flat])
    with pytest.raises(ValueError, match="must be"):
        sample.add(0, mlp_out[:, :4])
