"""omega beyond iota: the partial correlation with features as the unit, its calibration on
structure-free data, its power against a planted effect, and the table per block."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from vlmbinding.analysis.geometry_beyond import (
    GEOMETRY_BEYOND_COLUMNS,
    geometry_beyond_table,
    partial_beyond,
)
from vlmbinding.controls.beyond_pixels import residual_test
from vlmbinding.data.vocab import Vocabulary

VOCAB = Vocabulary()
KINDS = VOCAB.feature_kinds
FEATURES = VOCAB.features
PAIRS = list(itertools.combinations(FEATURES, 2))
F1 = [a for a, _ in PAIRS]
F2 = [b for _, b in PAIRS]


def _pair_field(rng) -> np.ndarray:
    """A value per pair with feature effects (pairs sharing a feature are alike) and noise."""
    effect = {f: rng.normal() for f in FEATURES}
    return np.array([effect[a] + effect[b] for a, b in PAIRS]) + rng.normal(size=len(PAIRS))


def _data(seed: int, beyond: float = 0.0, through_iota: float = 0.0):
    """iota, omega and D per pair: omega and D both follow iota by `through_iota`; D
    follows omega's own part by `beyond`."""
    rng = np.random.default_rng(seed)
    iota = _pair_field(rng)
    own = _pair_field(rng)
    omega = through_iota * iota + own
    d = through_iota * iota + beyond * own + _pair_field(rng)
    return iota, omega, d


def test_without_strata_it_is_the_pixels_residual_test_with_iota_as_the_pixels():
    iota, omega, d = _data(0, beyond=0.5, through_iota=1.0)
    ours = partial_beyond(omega, d, iota, FEATURES, F1, F2, n_boot=200, n_perm=199, seed=3)
    theirs = residual_test(omega, d, iota, FEATURES, F1, F2, 200, 199, 3)
    for key in ("r", "semipartial_r", "mantel_p", "feature_ci_low", "feature_ci_high"):
        assert ours[key] == theirs[key], key
    assert ours["n_pairs"] == 120


def test_structure_free_data_give_uniform_p_over_seeds():
    ps = []
    for seed in range(80):
        iota, omega, d = _data(seed)
        res = partial_beyond(
            omega, d, iota, FEATURES, F1, F2, n_boot=20, n_perm=99, seed=seed, power_sims=0
        )
        ps.append(res["mantel_p"])
    assert stats.kstest(ps, "uniform").pvalue > 0.01
    assert np.mean(np.array(ps) <= 0.05) <= 0.12


def test_omega_that_follows_d_only_through_iota_is_not_beyond_it():
    ps, plain = [], []
    for seed in range(40):
        iota, omega, d = _data(seed, through_iota=2.0)
        res = partial_beyond(
            omega, d, iota, FEATURES, F1, F2, n_boot=20, n_perm=99, seed=seed, power_sims=0
        )
        ps.append(res["mantel_p"])
        plain.append(res["r_omega"])
    assert np.mean(plain) > 0.5  # omega goes with D ...
    assert stats.kstest(ps, "uniform").pvalue > 0.01  # ... but not beyond iota


def test_a_planted_effect_beyond_iota_is_found():
    found = []
    for seed in range(20):
        iota, omega, d = _data(seed, beyond=1.0, through_iota=2.0)
        res = partial_beyond(
            omega,
            d,
            iota,
            FEATURES,
            F1,
            F2,
            n_boot=200,
            n_perm=199,
            seed=seed,
            power_sims=0,
        )
        found.append(res["mantel_p"] < 0.05 and res["feature_ci_low"] > 0)
    assert np.mean(found) >= 0.8


def test_the_table_has_rows_per_block_score_metric_and_binding_within_kind():
    rows, seps = [], []
    for layer in ("0", "1"):
        iota, omega, d = _data(int(layer), beyond=1.0, through_iota=1.0)
        base = pd.DataFrame({"f1": F1, "f2": F2, "basis": "neurons", "layers": layer})
        base = base.assign(null_mean=0.0, null_sd=1.0, p=0.5)
        rows += [
            base.assign(measure="interference", value=iota, z=iota),
            base.assign(measure="neuron_sharing", value=omega, z=2 * omega),
        ]
        seps.append(d)
    sharing = pd.concat(rows, ignore_index=True)
    sep = pd.DataFrame({"f1": F1, "f2": F2, "space": "full", "D": seps[0], "M": -seps[0]})
    same = sep["f1"].map(KINDS).eq(sep["f2"].map(KINDS)) & ~sep["f1"].map(KINDS).eq("position")
    binding = sep[same][["f1", "f2"]].assign(accuracy=np.linspace(0, 1, same.sum()))
    table = geometry_beyond_table(
        sharing, sep, KINDS, per_pair=binding, n_boot=50, n_perm=49, seed=0
    )
    assert list(table.columns) == GEOMETRY_BEYOND_COLUMNS
    # 2 blocks x 2 scores x (D, M in 'full' + accuracy in 'binding') x 2 subsets
    assert len(table) == 2 * 2 * 3 * 2
    acc = table[table["metric"] == "accuracy"]
    assert (acc["space"] == "binding").all() and (acc["n_pairs"] == same.sum()).all()
    d0 = table.query("layers == '0' and score == 'value' and metric == 'D' and subset == 'all'")
    assert d0.iloc[0]["r"] > 0.3 and d0.iloc[0]["mantel_p"] < 0.05
    assert np.isfinite(table[["r", "mantel_p", "feature_ci_low"]]).all().all()


def test_the_partial_tests_mde_is_the_residual_matrices_and_has_its_power():
    from vlmbinding.analysis.correlation import pairs_to_matrix
    from vlmbinding.analysis.geometry_beyond import residual_mde_r
    from vlmbinding.controls.beyond_pixels import least_squares_residual

    iota, omega, d = _data(0, through_iota=1.0)
    res = partial_beyond(omega, d, iota, FEATURES, F1, F2, n_boot=20, n_perm=99, seed=0)
    pairs = pd.DataFrame({"f1": F1, "f2": F2})
    mats = [
        pairs_to_matrix(pairs.assign(v=least_squares_residual(v, iota)[0]), "v", FEATURES)
        for v in (omega, d)
    ]
    assert res["mde_r"] == residual_mde_r(*mats, seed=0)  # same features, pairs and shares
    assert 0.2 < res["mde_r"] < 0.8
    few = np.array([a in FEATURES[:11] and b in FEATURES[:11] for a, b in PAIRS])
    sub = [np.asarray(v)[few] for v in (omega, d, iota, F1, F2)]
    half = partial_beyond(*sub[:3], FEATURES[:11], *sub[3:], n_boot=20, n_perm=99, seed=0)
    assert half["n_pairs"] == 55 and half["mde_r"] > res["mde_r"]  # fewer features: less power
    assert np.isnan(partial_beyond(omega, d, iota, FEATURES, F1, F2, power_sims=0)["mde_r"])
    # planted beyond iota at about the mde: the test finds it in most seeds (80% nominal)
    found = []
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        iota, own = _pair_field(rng), _pair_field(rng)
        noise = _pair_field(rng)
        c = res["mde_r"]  # own and noise have the same structure: r(own, d | iota) ~ c
        d = iota + c * own + np.sqrt(1 - c * c) * noise
        hit = partial_beyond(
            iota + own, d, iota, FEATURES, F1, F2, n_boot=0, n_perm=99, seed=seed, power_sims=0
        )
        found.append(hit["mantel_p"] < 0.05)
    assert np.mean(found) >= 0.6  # 0.82 over 200 seeds (n_perm 199)
