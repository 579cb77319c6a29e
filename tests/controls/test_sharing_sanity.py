"""The sanity table's sharing rows: the overlap's correlations, trained against its twin."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis.sharing_stage import SHARING_COLUMNS, sharing_correlation_table
from vlmbinding.controls.sanity import SANITY_COLUMNS, sanity_table
from vlmbinding.controls.sharing_sanity import _pick, sharing_sanity_rows
from vlmbinding.controls.twins import prediction_interval
from vlmbinding.data.vocab import Vocabulary

VOCAB = Vocabulary()
KINDS = VOCAB.feature_kinds
PAIRS = list(itertools.combinations(VOCAB.features, 2))


def model(seed: int, effect: float, pixels_d: np.ndarray) -> dict:
    """A model's sharing tables, its D and M related to the overlap z by `effect`."""
    rng = np.random.default_rng(seed)
    f = {name: rng.normal() for name in VOCAB.features}
    z = np.array([f[a] + f[b] for a, b in PAIRS]) + 0.5 * rng.normal(size=len(PAIRS))
    pairs = pd.DataFrame({"f1": [a for a, _ in PAIRS], "f2": [b for _, b in PAIRS]})
    sharing = pairs.assign(
        measure="overlap",
        basis="neurons",
        layers="0",
        value=5 + 2 * z,
        null_mean=5.0,
        null_sd=2.0,
        z=z,
        p=0.5,
    )[SHARING_COLUMNS]
    d = effect * z + pixels_d + rng.normal(size=len(z))
    sep = pairs.assign(space="full", D=d, M=-d)
    corr = sharing_correlation_table(
        sharing, sep, KINDS, n_boot=200, n_perm=99, seed=0, power_sims=20
    )
    return {"sharing": sharing, "separability": sep, "sharing_correlation": corr}


def test_a_trained_relation_survives_and_the_twin_has_none():
    pixels_d = np.random.default_rng(9).normal(size=len(PAIRS))
    trained, random = model(1, 2.0, pixels_d), model(2, 0.0, pixels_d)
    trained["pixel_separability"] = trained["separability"].assign(D=pixels_d, M=-pixels_d)
    rows = sharing_sanity_rows(trained, random, KINDS, n_boot=200, seed=0)
    assert list(rows.columns) == SANITY_COLUMNS and len(rows) == 4
    d_all = rows[rows["statistic"] == "r(overlap z, D), all pairs"].iloc[0]
    assert d_all["trained"] > 0.6 and abs(d_all["random"]) < 0.4
    assert d_all["difference_ci_low"] > 0 and d_all["survives"]
    assert np.isfinite(rows["pixels"]).all() and rows["unit"].eq("features").all()


def test_without_a_pixel_baseline_the_pixel_columns_are_empty():
    zero = np.zeros(len(PAIRS))
    rows = sharing_sanity_rows(model(1, 0.0, zero), model(2, 0.0, zero), KINDS, n_boot=100)
    assert rows["pixels"].isna().all()
    assert not rows["survives"].any()


def test_several_twins_give_the_prediction_interval_verdict_as_for_s():
    zero = np.zeros(len(PAIRS))
    trained = model(1, 2.0, zero)
    twins = [model(2 + j, 0.0, zero) for j in range(3)]
    rows = sharing_sanity_rows(trained, twins, KINDS, n_boot=100, seed=0)
    d_all = rows[rows["statistic"] == "r(overlap z, D), all pairs"].iloc[0]
    assert (rows["n_twins"] == 3).all() and np.isfinite(rows["random_sd"]).all()
    # the wiring: random is the twins' mean, its interval the prediction interval over twins
    per_twin = [
        _pick(t["sharing_correlation"], "overlap", "neurons", "z", "D", "full", "all")["mantel_r"]
        for t in twins
    ]
    assert d_all["random"] == pytest.approx(np.mean(per_twin))
    low, high = prediction_interval(per_twin)
    assert (d_all["random_ci_low"], d_all["random_ci_high"]) == pytest.approx((low, high))
    assert d_all["survives"] and "3 random-weights twins" in d_all["verdict"]


def test_the_sanity_table_has_the_overlap_rows_combined_over_every_twin():
    from test_sanity import model_tables  # the S tables of the sanity table's own tests

    zero = np.zeros(len(PAIRS))
    trained = model_tables(1, 1.0, zero) | model(1, 2.0, zero)
    twins = [model_tables(2 + j, 0.0, zero) | model(2 + j, 0.0, zero) for j in range(2)]
    table = sanity_table(trained, twins, KINDS, "full", 3.5, 100, 0)
    s_rows = table[table["statistic"].str.startswith("r(S,")]
    o_rows = table[table["statistic"].str.startswith("r(overlap z,")]
    assert len(s_rows) == 4 and len(o_rows) == 4 and (table["n_twins"] == 2).all()
    # the same row as the sharing rows alone: one builder, one combination over twins
    alone = sharing_sanity_rows(trained, twins, KINDS, n_boot=100, seed=0)
    pd.testing.assert_frame_equal(o_rows.reset_index(drop=True), alone)
    with pytest.raises(ValueError, match="twin 1 has no sharing tables"):
        sanity_table(trained, [twins[0], model_tables(5, 0.0, zero)], KINDS, "full", 3.5, 50, 0)


def test_other_measures_and_bases_in_the_sharing_table_are_left_alone():
    zero = np.zeros(len(PAIRS))
    trained, random = model(1, 2.0, zero), model(2, 0.0, zero)
    plain = sharing_sanity_rows(trained, random, KINDS, n_boot=100, seed=0)
    for t in (trained, random):
        extra = t["sharing"].assign(basis="sae", z=t["sharing"]["z"] * -3)
        t["sharing"] = pd.concat([t["sharing"], extra], ignore_index=True)
        other = t["sharing_correlation"].assign(basis="sae", mantel_r=0.0)
        t["sharing_correlation"] = pd.concat([t["sharing_correlation"], other])
    pd.testing.assert_frame_equal(
        sharing_sanity_rows(trained, random, KINDS, n_boot=100, seed=0), plain
    )


def test_the_autoencoder_basis_gets_its_own_overlap_rows_when_it_ran():
    from test_sanity import model_tables

    zero = np.zeros(len(PAIRS))
    trained = model_tables(1, 1.0, zero) | model(1, 2.0, zero)
    twins = [model_tables(2 + j, 0.0, zero) | model(2 + j, 0.0, zero) for j in range(2)]
    for t in (trained, *twins):
        extra = t["sharing"].assign(basis="sae", z=t["sharing"]["z"] * -1)
        t["sharing"] = pd.concat([t["sharing"], extra], ignore_index=True)
        t["sharing_correlation"] = sharing_correlation_table(
            t["sharing"], t["separability"], KINDS, n_boot=200, n_perm=99, seed=0, power_sims=20
        )
    table = sanity_table(trained, twins, KINDS, "full", 3.5, 100, 0)
    sae = table[table["statistic"].str.endswith("(autoencoder basis)")]
    neurons = table[table["statistic"].str.startswith("r(overlap z,")].drop(sae.index)
    assert len(sae) == 4 and len(neurons) == 4
    # the sign flips with the planted basis: the rows read their own basis
    assert (np.sign(sae["trained"].to_numpy()) == -np.sign(neurons["trained"].to_numpy())).all()
    alone = sharing_sanity_rows(trained, twins, KINDS, n_boot=100, seed=0, basis="sae")
    pd.testing.assert_frame_equal(sae.reset_index(drop=True), alone)


def test_the_geometry_gets_rows_per_block_when_it_ran():
    from test_sanity import model_tables

    from vlmbinding.controls.sharing_sanity import sanity_keys

    zero = np.zeros(len(PAIRS))
    trained = model_tables(1, 1.0, zero) | model(1, 2.0, zero)
    twins = [model_tables(2 + j, 0.0, zero) | model(2 + j, 0.0, zero) for j in range(2)]
    for t in (trained, *twins):
        overlap = t["sharing"]
        extra = [
            overlap.assign(measure=m, layers=block, z=overlap["z"] * sign)
            for m in ("interference", "neuron_sharing")
            for block, sign in (("1", 1.0), ("0", -1.0))
        ]
        t["sharing"] = pd.concat([overlap, *extra], ignore_index=True)
        t["sharing_correlation"] = sharing_correlation_table(
            t["sharing"], t["separability"], KINDS, n_boot=200, n_perm=99, seed=0, power_sims=20
        )
    assert sanity_keys(trained["sharing"]) == [
        ("overlap", "neurons", None),
        ("neuron_sharing", "neurons", "0"), ("neuron_sharing", "neurons", "1"),
        ("interference", "neurons", "0"), ("interference", "neurons", "1"),
    ]  # fmt: skip
    table = sanity_table(trained, twins, KINDS, "full", 3.5, 100, 0)
    omega = table[table["statistic"].str.startswith("r(omega z,")]
    iota = table[table["statistic"].str.startswith("r(iota z,")]
    assert len(omega) == 8 and len(iota) == 8
    block0 = omega[omega["statistic"].str.endswith("block 0")]
    block1 = omega[omega["statistic"].str.endswith("block 1")]
    # each block's rows read that block's scores (planted with opposite signs)
    assert (np.sign(block0["trained"].to_numpy()) == -np.sign(block1["trained"].to_numpy())).all()
    alone = sharing_sanity_rows(
        trained, twins, KINDS, n_boot=100, seed=0, measure="neuron_sharing", layers="1"
    )
    pd.testing.assert_frame_equal(block1.reset_index(drop=True), alone)
    with pytest.raises(ValueError, match="layers 7"):
        sharing_sanity_rows(trained, twins, KINDS, n_boot=100, measure="neuron_sharing", layers="7")
