"""Interventions without torch: shared-neuron sets, matched controls, feature-level statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vlmbinding.interventions import controls as ctl
from vlmbinding.interventions import inference as inf
from vlmbinding.interventions import selection as iv
from vlmbinding.interventions import shared as sh

FEATURES = [f"f{i}" for i in range(16)]
PAIRS = pd.DataFrame(
    [(a, b) for i, a in enumerate(FEATURES) for b in FEATURES[i + 1 :]], columns=["f1", "f2"]
)


def hand_pool() -> sh.TunedPool:
    """12 neurons over layers 0-2 (4 each), 3 features; membership and t set by hand."""
    layer = np.repeat([0, 1, 2], 4)
    unit = np.tile([0, 1, 2, 3], 3)
    member = np.zeros((12, 3), dtype=bool)
    member[[0, 4, 5, 8], 0] = True  # A_a
    member[[0, 5, 9, 10], 1] = True  # A_b: shares 0 (layer 0) and 5 (layer 1) with A_a
    member[[2, 3, 6, 7], 2] = True  # A_c: meets neither
    t = np.arange(36, dtype=float).reshape(12, 3)[::-1].copy()  # lower index, larger t
    return sh.TunedPool(layer, unit, t, member, np.ones(12), 4)


def test_shared_sets_are_the_intersection_against_layer_matched_single_feature_sets():
    sets = sh.pair_sets(hand_pool(), 0, 1)
    assert sets["n_shared"] == 2
    assert {k: v.tolist() for k, v in sets["shared"].items()} == {0: [0], 1: [1]}
    # a-only = {4, 8}: layer 1 has 4 (unit 0); layer 0 has none, so 8 (layer 2) fills in
    assert {k: v.tolist() for k, v in sets["f1_only"].items()} == {1: [0], 2: [0]}
    assert sets["f1_only_short"] == 1 and sets["n_f1_only"] == 2
    # b-only = {9, 10}, both layer 2: neither layer matches
    assert {k: v.tolist() for k, v in sets["f2_only"].items()} == {2: [1, 2]}
    assert sets["f2_only_short"] == 2
    empty = sh.pair_sets(hand_pool(), 0, 2)
    assert empty["n_shared"] == 0 and empty["shared"] == {} and empty["f1_only"] == {}


def test_single_feature_neurons_follow_the_shared_layers_when_they_can():
    layer = np.array([0, 0, 1, 1, 1, 0])
    chosen, short = sh.layer_matched(
        np.array([0, 1, 2, 3, 4]), np.array([5.0, 1, 4, 3, 2, 0]), layer, {0: 1, 1: 2}
    )
    assert sorted(chosen.tolist()) == [0, 2, 3] and short == 0


def test_tuned_pool_plants_a_shared_neuron_set():
    rng = np.random.default_rng(0)
    n, width = 400, 60
    presence = rng.uniform(size=(n, 4)) < 0.4
    acts = rng.normal(size=(n, width))
    acts[:, :5] += 3 * (presence[:, 0] & presence[:, 1])[:, None] + 3 * presence[:, [0]]
    acts[:, :5] += 3 * presence[:, [1]]
    pool = sh.tuned_pool(
        acts, np.zeros(width, int), np.arange(width), presence, list("abcd"), np.ones(n), m=8
    )
    sets = sh.pair_sets(pool, 0, 1)
    assert set(range(5)) <= set(sets["shared"][0].tolist())
    with pytest.raises(ValueError, match="interventions.m"):
        sh.tuned_pool(acts, np.zeros(width, int), np.arange(width), presence, list("abcd"), 1, 99)


def test_controls_match_the_count_per_layer_and_avoid_the_own_neurons():
    strata = ctl.neuron_strata(4, 12, "layers")
    index = ctl.StratumIndex(strata)
    own = {0: np.array([1, 2]), 3: np.array([5])}
    rng, pool, seen = np.random.default_rng(4), [], np.zeros(12)
    for _ in range(50):
        for draw in ctl.pick_controls(pool, own, 5, index, rng):
            assert {k: len(v) for k, v in draw.items()} == {0: 2, 3: 1}
            assert not set(draw[0]) & {1, 2} and 5 not in draw[3]
        assert len(pool) <= 10  # the pool is reused, not redrawn per call
    # a chosen draw is uniform over the sets that avoid own: units 1, 2 never, others alike
    for seed in range(300):
        for draw in ctl.pick_controls([], own, 1, index, np.random.default_rng(seed)):
            seen[draw[0]] += 1
    assert seen[1] == seen[2] == 0 and seen[[0, 3, 4, 5, 6, 7, 8, 9, 10, 11]].min() > 30
    other = {0: np.array([7]), 3: np.array([1, 2])}
    assert ctl.set_profile(own, strata) != ctl.set_profile(other, strata)


def test_scale_matched_controls_stay_in_the_own_neurons_sd_bin():
    rng = np.random.default_rng(5)
    sd = rng.lognormal(size=(3, 40))
    strata = ctl.neuron_strata(3, 40, "layers_and_scale", sd, n_bins=4)
    assert len(np.unique(strata)) == 12 and (np.bincount(strata.ravel()) == 10).all()
    loud = {1: np.argsort(sd[1])[-3:]}  # the layer's three loudest neurons
    index = ctl.StratumIndex(strata)
    for draw in ctl.pick_controls([], loud, 20, index, rng):
        assert list(draw) == [1]
        assert (sd[1, draw[1]] >= np.sort(sd[1])[30]).all()  # the top quarter only
    with pytest.raises(ValueError, match="layers_and_scale needs"):
        ctl.neuron_strata(3, 40, "layers_and_scale")
    with pytest.raises(ValueError, match="control_match"):
        ctl.neuron_strata(3, 40, "layer_counts")


ROW, COL = np.triu_indices(len(FEATURES), k=1)  # PAIRS' rows, as feature indices


def clustered_excess(rng, mean=0.0, feature_sd=0.5):
    """Pair excess = mean + u_f1 + u_f2 + noise: pairs clustered by feature."""
    u = rng.normal(0, feature_sd, len(FEATURES))
    return mean + u[ROW] + u[COL] + rng.normal(0, 1, len(PAIRS))


def as_matrix(x):
    out = np.full((len(FEATURES), len(FEATURES)), np.nan)
    out[ROW, COL] = out[COL, ROW] = x
    return out


def test_feature_bootstrap_of_the_mean_excess_is_calibrated_and_covers():
    """No effect: p uniform over seeds, the interval covers 0 about 95% of the time.

    A pair bootstrap of the same data covers far less (it treats 120 clustered pairs as
    independent); the feature bootstrap resamples the 16 features. Here the features carry
    a third of the pair variance (coverage 0.949 over 1,000 seeds); when they carry two
    thirds, 0.918 (measured; the percentile interval over 16 features is a little narrow).
    """
    ps, cover, pair_cover = [], 0, 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        x = clustered_excess(rng)
        out = inf.feature_bootstrap_mean(as_matrix(x), 300, seed)
        ps.append(out["p"])
        cover += out["ci_low"] <= 0 <= out["ci_high"]
        boot = x[rng.integers(0, len(x), (300, len(x)))].mean(axis=1)
        pair_cover += np.percentile(boot, 2.5) <= 0 <= np.percentile(boot, 97.5)
    assert stats.kstest(ps, "uniform").pvalue > 0.001
    assert 0.89 <= cover / 300 <= 0.99
    assert pair_cover / 300 < cover / 300 - 0.15


def test_feature_bootstrap_finds_a_planted_excess():
    found = 0
    for seed in range(40):
        x = clustered_excess(np.random.default_rng(seed), mean=0.8)
        found += (
            inf.feature_bootstrap_mean(inf.pair_matrix(PAIRS, x, FEATURES), 400, seed)["p"] < 0.05
        )
    assert found >= 32


def effects_table(rng, planted: bool, skip: int = 10) -> pd.DataFrame:
    """Per-pair effects as the stage writes them; the excess grows with the overlap when
    planted; the first `skip` pairs have no shared neuron."""
    overlap = rng.integers(1, 6, len(PAIRS)).astype(float)
    rows = []
    for k, (pair, c) in enumerate(zip(PAIRS.itertuples(index=False), overlap)):
        n = 0 if k < skip else int(c)
        row = {"f1": pair.f1, "f2": pair.f2, "S": rng.uniform(), "n_neurons": n}
        row.update(control_draws=5, overlap=n)
        for m in iv.MEASURES:
            controls = rng.normal(0, 0.01, 5)
            own = rng.normal(0, 0.01) + (0.01 * c if planted else 0)
            row.update(iv.effect_columns(m, own if n else np.nan, controls if n else []))
            row[f"d{m}_f1_only"] = rng.normal(0, 0.01) if n else np.nan
            row[f"d{m}_f2_only"] = rng.normal(0, 0.01) if n else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def test_summary_finds_a_planted_shared_effect_and_leaves_out_empty_pairs():
    rng = np.random.default_rng(3)
    planted = inf.summarise_effects(
        effects_table(rng, True), FEATURES, 300, 199, 0, ("M",), "overlap"
    )
    row = planted.set_index("contrast").loc["random"]
    assert row["n_pairs"] == len(PAIRS) - 10 and row["unit"] == "feature"
    assert row["excess_ci_low"] > 0 and row["excess_p"] < 0.01
    assert row["spearman_ci_low"] > 0.3 and row["mantel_p"] < 0.05
    assert planted.set_index("contrast").loc["single_feature", "excess_ci_low"] > 0
    null = inf.summarise_effects(
        effects_table(rng, False), FEATURES, 300, 199, 0, ("M",), "overlap"
    )
    row = null.set_index("contrast").loc["random"]
    assert row["excess_ci_low"] < 0.005 and row["mantel_p"] > 0.01
    stat = ["excess_mean", "excess_ci_low", "excess_ci_high", "excess_p", "spearman", "mantel_p"]
    assert np.isfinite(null[stat].to_numpy()).all()
