"""The minimum detectable r: at the r it returns the Mantel test has about the asked power
(checked on fresh data with `mantel_test` itself), at r = 0 about alpha (calibration), and
the additive share that sets the structure is right on planted matrices."""

from __future__ import annotations

import numpy as np
import pytest

from vlmbinding.analysis.correlation import mantel_test
from vlmbinding.analysis.power import additive_share, minimum_detectable_r


def _pair_matrix(effects, pair_noise, share):
    m = np.sqrt(share / 2) * (effects[:, None] + effects[None, :])
    m = m + np.sqrt(1 - share) * pair_noise
    m = np.triu(m, 1)
    m = m + m.T
    np.fill_diagonal(m, np.nan)
    return m


def _draw(rng, f, c, shares):
    """One data set of the module's model with planted coupling c."""
    u, u2 = rng.normal(size=(2, f))
    e, e2 = rng.normal(size=(2, f, f))
    v = c * u + np.sqrt(1 - c * c) * u2
    g = c * e + np.sqrt(1 - c * c) * e2
    return _pair_matrix(u, e, shares[0]), _pair_matrix(v, g, shares[1])


def test_additive_share_of_planted_matrices():
    rng = np.random.default_rng(0)
    f = 16
    exact = _pair_matrix(rng.normal(size=f), rng.normal(size=(f, f)), 1.0)
    assert additive_share(exact) == pytest.approx(1.0)
    noise = _pair_matrix(rng.normal(size=f), rng.normal(size=(f, f)), 0.0)
    assert additive_share(noise) < 0.3
    half = _pair_matrix(rng.normal(size=f), rng.normal(size=(f, f)), 0.5)
    assert 0.2 < additive_share(half) < 0.8


@pytest.mark.parametrize("shares", [(1.0, 1.0), (1.0, 0.4)])
def test_the_mantel_test_has_the_asked_power_at_the_returned_r(shares):
    f = 11
    r = minimum_detectable_r(f, shares=shares, n_sim=200, seed=1)
    scale = np.sqrt(shares[0] * shares[1]) + np.sqrt((1 - shares[0]) * (1 - shares[1]))
    c = r / scale
    rng = np.random.default_rng(99)
    hits = null = 0
    n = 200
    for i in range(n):
        a, b = _draw(rng, f, c, shares)
        hits += mantel_test(a, b, 199, i)[1] < 0.05
        a, b = _draw(rng, f, 0.0, shares)
        null += mantel_test(a, b, 199, i)[1] < 0.05
    assert 0.7 < hits / n < 0.9  # power about 0.8 (sd 0.028 at 200 data sets)
    assert null / n < 0.09  # and about alpha without a relation


def test_mde_follows_the_number_of_features_and_the_structure():
    full = minimum_detectable_r(16, shares=(1.0, 1.0))
    fewer = minimum_detectable_r(11, shares=(1.0, 1.0))
    pairwise = minimum_detectable_r(16, shares=(0.0, 0.0))
    assert pairwise < full < fewer  # pair-level values carry more independent units
    assert 0.55 < full < 0.75  # about what 16 independent points need for 80% power
    # a metric that is mostly pair noise cannot correlate enough with an additive S
    assert np.isnan(minimum_detectable_r(11, shares=(1.0, 0.2)))
    mask = np.ones((16, 16), bool)
    mask[11:, :] = mask[:, 11:] = False
    # the row's pairs among 11 of 16 features: permuted within their group, as 11 features
    strata = ["in"] * 11 + ["out"] * 5
    assert minimum_detectable_r(16, mask, strata, (1.0, 1.0)) == pytest.approx(fewer, abs=0.05)
    assert np.isnan(minimum_detectable_r(16, mask, None, (1.0, 1.0)))  # pairs would go missing
    with pytest.raises(ValueError, match="mask"):
        minimum_detectable_r(16, np.ones((3, 3), bool))
