"""Dependence-aware statistics: features resampled (bootstrap) and permuted (Mantel).

METHOD.md section 6. The pairs share features, so the unit is the feature. These tests pin
the hand-made cases, the calibration on structure-free data, the coverage of the feature
bootstrap on a model where pairs share features, the power on a planted effect, and that a
stratified permutation never moves a feature across strata.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from vlmbinding.analysis import correlation as st
from vlmbinding.analysis import resampling as rs

KINDS = np.array(["shape"] * 5 + ["color"] * 5 + ["position"] * 6)
IU = np.triu_indices(16, 1)


def shared_feature_model(seed, f=16, rho=0.5, sigma=1.0):
    """Pair matrices a = u_i + u_j + noise, b = v_i + v_j + noise, corr(u, v) = rho.

    Every pair inherits its two features' u and v, so pairs sharing a feature are
    dependent. Over pairs of distinct features the population r is 2 rho / (2 + sigma^2).
    """
    rng = np.random.default_rng(seed)
    u = rng.normal(size=f)
    v = rho * u + np.sqrt(1 - rho**2) * rng.normal(size=f)
    mats = []
    for w in (u, v):
        e = rng.normal(size=(f, f)) * sigma
        m = w[:, None] + w[None, :] + (e + e.T) / np.sqrt(2)
        np.fill_diagonal(m, np.nan)
        mats.append(m)
    return mats[0], mats[1], 2 * rho / (2 + sigma**2)


def test_exact_relation_gives_a_point_interval_and_r_one():
    a, _, _ = shared_feature_model(0)
    b = 3 * a - 1
    assert st.feature_bootstrap_ci(a, b, 300, seed=0) == pytest.approx((1.0, 1.0))
    assert st.feature_bootstrap_ci(a, -a, 300, seed=0, method="spearman") == pytest.approx(
        (-1.0, -1.0)
    )
    out = st.dependence_aware(a, b, n_boot=200, n_perm=199, seed=0)
    assert set(out) == {"r", "feature_ci_low", "feature_ci_high", "mantel_p", "n_pairs"}
    assert out["r"] == pytest.approx(1.0) and out["n_pairs"] == 120
    assert out["mantel_p"] == pytest.approx(1 / 200)


def test_feature_bootstrap_equals_a_slow_loop_over_the_same_draws():
    a, b, _ = shared_feature_model(1, f=6)
    a[0, 3] = a[3, 0] = np.nan  # a missing pair
    draws = rs.feature_resamples(6, 50, np.random.default_rng(7))
    rs_fast = rs.rowwise_correlation(*rs.resampled_pairs(a, b, draws))
    for row, r_fast in zip(draws, rs_fast):
        x, y = [], []
        for p in range(6):
            for q in range(p + 1, 6):
                i, j = row[p], row[q]
                if i != j and np.isfinite(a[i, j]) and np.isfinite(b[i, j]):
                    x.append(a[i, j])
                    y.append(b[i, j])
        if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            assert r_fast == pytest.approx(sps.pearsonr(x, y).statistic)
        else:
            assert np.isnan(r_fast)
    # feature_bootstrap_ci takes the percentiles of exactly these resamples.
    ok = rs_fast[np.isfinite(rs_fast)]
    assert st.feature_bootstrap_ci(a, b, 50, seed=7) == pytest.approx(
        tuple(np.percentile(ok, [2.5, 97.5]))
    )


def test_feature_bootstrap_is_seeded_and_nested_in_level():
    a, b, _ = shared_feature_model(2)
    ci = st.feature_bootstrap_ci(a, b, 400, seed=3)
    assert ci == st.feature_bootstrap_ci(a, b, 400, seed=3)
    assert ci != st.feature_bootstrap_ci(a, b, 400, seed=4)
    lo50, hi50 = st.feature_bootstrap_ci(a, b, 400, seed=3, level=0.5)
    assert ci[0] < lo50 < hi50 < ci[1]


def test_feature_bootstrap_with_no_usable_resample_is_nan():
    a = np.full((3, 3), np.nan)
    assert all(np.isnan(st.feature_bootstrap_ci(a, a, 20, 0)))
    out = st.dependence_aware(a, a, 20, 19, 0)
    assert np.isnan(out["r"]) and np.isnan(out["feature_ci_low"]) and out["n_pairs"] == 0


def test_bad_inputs_are_named():
    a, b, _ = shared_feature_model(0)
    with pytest.raises(ValueError, match="kendall"):
        st.feature_bootstrap_ci(a, b, 10, 0, method="kendall")
    with pytest.raises(ValueError, match="one label per feature"):
        st.feature_bootstrap_ci(a, b, 10, 0, strata=KINDS[:5])
    with pytest.raises(ValueError, match="square"):
        st.feature_bootstrap_ci(a[:3], b[:3], 10, 0)


def test_stratified_draws_and_permutations_stay_in_their_stratum():
    rng = np.random.default_rng(0)
    perms = rs.feature_permutations(16, 500, rng, strata=KINDS)
    assert (KINDS[perms] == KINDS).all()
    assert (np.sort(perms, axis=1) == np.arange(16)).all()  # still permutations
    assert len({tuple(p) for p in perms}) > 400  # and they do move features
    draws = rs.feature_resamples(16, 500, rng, strata=KINDS)
    assert (KINDS[draws] == KINDS).all()
    # Unstratified, features do cross kinds.
    assert (KINDS[rs.feature_permutations(16, 50, rng)] != KINDS).any()


def same_kind_only(m):
    """Keep only the pairs of two features of one kind (shape-shape, colour-colour)."""
    m = m.copy()
    m[KINDS[:, None] != KINDS[None, :]] = np.nan
    m[KINDS == "position"] = np.nan
    m[:, KINDS == "position"] = np.nan
    return m


def test_within_kind_mantel_keeps_the_set_of_pairs():
    # Binding accuracy exists for 20 same-kind pairs, and the correlation table builds
    # both matrices from the pairs where both exist. An unstratified permutation maps
    # many of b's pairs onto pairs where a has no value; a within-kind one never does.
    a, b, _ = shared_feature_model(3)
    a, b = same_kind_only(a), same_kind_only(b)
    finite = np.isfinite(a[IU])

    def used(p):
        return finite & np.isfinite(b[np.ix_(p, p)][IU])

    assert finite.sum() == 20
    for p in rs.feature_permutations(16, 200, np.random.default_rng(0), strata=KINDS):
        assert (used(p) == finite).all()
    loose = rs.feature_permutations(16, 200, np.random.default_rng(0))
    assert np.median([used(p).sum() for p in loose]) < 10
    # The stratified Mantel test equals a brute-force count over the same permutations.
    r, p = st.mantel_test(a, b, 199, seed=5, strata=KINDS)
    perms = rs.feature_permutations(16, 199, np.random.default_rng(5), strata=KINDS)
    ok = np.isfinite(b[IU])
    r_perm = [sps.pearsonr(a[IU][ok], b[np.ix_(q, q)][IU][ok]).statistic for q in perms]
    assert r == pytest.approx(sps.pearsonr(a[IU][ok], b[IU][ok]).statistic)
    assert p == pytest.approx((1 + np.sum(np.abs(r_perm) >= abs(r) * (1 - 1e-12))) / 200)


def test_unstratified_mantel_draws_what_it_always_drew():
    a, b, _ = shared_feature_model(4)
    perms = np.random.default_rng(9).permuted(np.tile(np.arange(16), (99, 1)), axis=1)
    np.testing.assert_array_equal(rs.feature_permutations(16, 99, np.random.default_rng(9)), perms)


@pytest.mark.parametrize("strata", [None, KINDS])
def test_mantel_p_is_uniform_on_structure_free_data_where_pearson_p_is_not(strata):
    # Null: u and v independent, but pairs share features. The Mantel p is uniform over
    # seeds (KS, lenient); the pair-level Pearson p rejects far too often.
    mantel, pearson = [], []
    for seed in range(200):
        a, b, _ = shared_feature_model(seed, rho=0.0, sigma=0.5)
        if strata is not None:
            a, b = same_kind_only(a), same_kind_only(b)
        mantel.append(st.mantel_test(a, b, 199, seed=seed, strata=strata)[1])
        ok = np.isfinite(b[IU])
        pearson.append(sps.pearsonr(a[IU][ok], b[IU][ok]).pvalue)
    assert sps.kstest(mantel, "uniform").pvalue > 0.001
    assert 0.01 <= np.mean(np.array(mantel) <= 0.05) <= 0.10
    assert np.mean(np.array(pearson) <= 0.05) > 0.12


@pytest.mark.parametrize(
    "n, n_boot", [(50, 200), pytest.param(150, 400, marks=pytest.mark.slow)]
)  # the unit suite's version: fewer seeds and draws; the full simulation in make test-slow
def test_feature_interval_covers_the_true_r_where_the_pair_interval_does_not(n, n_boot):
    # Pairs share features: the pair bootstrap is too narrow and under-covers; the
    # feature bootstrap covers about as often as advertised (95%).
    cover_f, cover_p, width_f, width_p = 0, 0, [], []
    for seed in range(n):
        a, b, true_r = shared_feature_model(seed, rho=0.5, sigma=1.0)
        lo, hi = st.feature_bootstrap_ci(a, b, n_boot, seed=seed)
        pair = st.bootstrap_ci(a[IU], b[IU], n_boot, seed=seed)
        cover_f += lo <= true_r <= hi
        cover_p += pair["pearson_ci_low"] <= true_r <= pair["pearson_ci_high"]
        width_f.append(hi - lo)
        width_p.append(pair["pearson_ci_high"] - pair["pearson_ci_low"])
    assert cover_f / n >= 0.88
    assert cover_p / n <= 0.8
    assert np.mean(width_f) > 1.5 * np.mean(width_p)


def test_a_planted_effect_is_found():
    found = 0
    for seed in range(20):
        a, b, _ = shared_feature_model(seed, rho=0.9, sigma=0.5)
        out = st.dependence_aware(a, b, n_boot=400, n_perm=399, seed=seed)
        found += out["mantel_p"] < 0.05 and out["feature_ci_low"] > 0
    assert found >= 18
    # Within kind, on same-kind pairs only, too.
    a, b, _ = shared_feature_model(0, rho=0.95, sigma=0.2)
    a, b = same_kind_only(a), same_kind_only(b)
    out = st.dependence_aware(a, b, 400, 999, seed=0, strata=KINDS)
    assert out["n_pairs"] == 20 and out["mantel_p"] < 0.05 and out["feature_ci_low"] > 0


def _additive_pairs(rng, f, c):
    """S(f1, f2) = P(f1) + P(f2) exactly (the study's structure) and a metric whose feature
    effects correlate c with P: the pairs' population r is c."""
    s = rng.normal(size=f)
    m = c * s + np.sqrt(1 - c * c) * rng.normal(size=f)
    a, b = s[:, None] + s[None, :], m[:, None] + m[None, :]
    np.fill_diagonal(a, np.nan)
    np.fill_diagonal(b, np.nan)
    return a, b


def test_coverage_where_s_is_additive_jackknife_keeps_it_the_percentile_bootstrap_does_not():
    """Measured coverage of the true r (300 data sets, 11 features, r = 0.5): the percentile
    feature bootstrap about 0.88, the jackknife interval (the default) about 0.95."""
    from vlmbinding.analysis.resampling import feature_bootstrap_ci, feature_jackknife_ci

    rng = np.random.default_rng(0)
    jack, perc = [], []
    for i in range(300):
        a, b = _additive_pairs(rng, 11, 0.5)
        lo, hi = feature_jackknife_ci(a, b)
        jack.append(lo <= 0.5 <= hi)
        lo, hi = feature_bootstrap_ci(a, b, 300, i)
        perc.append(lo <= 0.5 <= hi)
    assert np.mean(jack) >= 0.93
    assert np.mean(perc) < 0.92


def test_jackknife_interval_is_calibrated_at_zero_and_finds_a_planted_r():
    from vlmbinding.analysis.resampling import feature_jackknife_ci

    rng = np.random.default_rng(1)
    null = [np.prod(feature_jackknife_ci(*_additive_pairs(rng, 16, 0.0))) > 0 for _ in range(300)]
    assert np.mean(null) <= 0.07  # excludes 0 about 5% of the time, or less
    found = [feature_jackknife_ci(*_additive_pairs(rng, 16, 0.9))[0] > 0 for _ in range(50)]
    assert np.mean(found) >= 0.8
    a, b = _additive_pairs(rng, 16, 0.5)
    b[0, :] = b[:, 0] = np.nan  # a feature without pairs changes nothing
    lo, hi = feature_jackknife_ci(a, b)
    assert lo < hi and np.isnan(feature_jackknife_ci(a[:2, :2], b[:2, :2])[0])
