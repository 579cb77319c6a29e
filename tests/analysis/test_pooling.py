"""Pooling r over seeds that share features (and images): one bootstrap of features and seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vlmbinding.analysis.pooling import pool_replicate_pairs, pooled_over_seeds

F, K = 16, 3
RHO, TAU, SIG = 0.6, 0.5, 0.5


def true_r(rho: float) -> float:
    """r(S, M) over pairs in the population: S = s_p + s_q + e with var(s) = 1 + TAU^2 and
    var(e) = SIG^2 / 2 (the noise is symmetrised), cov(S, M) = 2 rho."""
    return 2 * rho / (2 * (1 + TAU**2) + SIG**2 / 2)


def replicates(rng, rho=RHO, k=K):
    """k seeds on the same F features: each feature's (s, m) latent is shared by all seeds
    (corr rho), each seed adds its own feature effects (sd TAU) and pair noise (sd SIG)."""
    xy = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], F)
    out = []
    for _ in range(k):
        mats = []
        for latent in (xy[:, 0], xy[:, 1]):
            v = latent + TAU * rng.normal(size=F)
            m = v[:, None] + v[None] + SIG * rng.normal(size=(F, F))
            m = (m + m.T) / 2
            np.fill_diagonal(m, np.nan)
            mats.append(m)
        out.append(tuple(mats))
    return out


def test_pooled_interval_covers_the_true_r_of_seeds_sharing_features():
    """Calibration (units: features and seeds). Over 120 simulated studies of 3 seeds on 16
    shared features, the pooled 95% interval covers the true r about 95% of the time (the
    DerSimonian-Laird pool of the seeds' feature-bootstrap intervals covered 0.79 in the
    same simulation, 150 studies: the shared error divided by sqrt(3))."""
    rng = np.random.default_rng(0)
    hits = [
        (o := pooled_over_seeds(replicates(rng), 200, i))["ci_low"] <= true_r(RHO) <= o["ci_high"]
        for i in range(120)
    ]
    assert 0.88 <= np.mean(hits) <= 0.995


def test_under_no_relation_zero_is_covered_and_a_planted_r_is_found():
    """Null: rho = 0, the interval excludes 0 in about 5% of studies. Power: rho = 0.9 (true
    r 0.69), it excludes 0 in most (at rho = 0.6, true r 0.46, in about 60%: 16 features)."""
    rng = np.random.default_rng(1)
    null = [pooled_over_seeds(replicates(rng, rho=0.0), 200, i) for i in range(80)]
    assert np.mean([o["ci_low"] > 0 or o["ci_high"] < 0 for o in null]) <= 0.12
    planted = [pooled_over_seeds(replicates(rng, rho=0.9), 200, i) for i in range(30)]
    assert np.mean([o["ci_low"] > 0 for o in planted]) >= 0.8


def test_never_narrower_than_the_shared_feature_error():
    """k identical seeds carry no information beyond one: the pooled interval is the one
    seed's feature interval, not that divided by sqrt(k); and in every study the pooled
    interval contains the features-only interval."""
    rng = np.random.default_rng(2)
    one = replicates(rng, k=1)
    single = pooled_over_seeds(one, 500, 0)
    copies = pooled_over_seeds(one * 4, 500, 0)
    assert copies["r_pooled"] == pytest.approx(single["r_pooled"])
    assert copies["ci_high"] - copies["ci_low"] >= 0.95 * (single["ci_high"] - single["ci_low"])
    for i in range(20):
        o = pooled_over_seeds(replicates(rng), 200, i)
        assert o["ci_low"] <= o["feature_ci_low"] and o["ci_high"] >= o["feature_ci_high"]


def test_the_spread_between_seeds_on_its_own():
    rng = np.random.default_rng(3)
    o = pooled_over_seeds(replicates(rng), 100, 0)
    r = np.array([float(v) for v in o["r_replicates"].split(",")])
    assert o["r_sd"] == pytest.approx(r.std(ddof=1), abs=1e-3)
    half = stats.t.ppf(0.975, 2) * r.std(ddof=1) / np.sqrt(3)
    assert o["seed_ci_high"] - o["r_mean"] == pytest.approx(half, abs=2e-3)
    assert o["k"] == 3 and np.isnan(pooled_over_seeds(replicates(rng, k=1), 50, 0)["r_sd"])


def test_pool_replicate_pairs_reads_pair_tables():
    rng = np.random.default_rng(4)
    names = [f"f{i}" for i in range(F)]
    tables = []
    for s, m in replicates(rng):
        rows = [(names[p], names[q], s[p, q], -m[p, q], m[p, q])
                for p, q in itertools.combinations(range(F), 2)]  # fmt: skip
        tables.append(pd.DataFrame(rows, columns=["f1", "f2", "S", "D", "M"]))
    out = pool_replicate_pairs({"toy": tables}, 100, 0).set_index("metric")
    assert out.loc["M", "k"] == 3
    assert out.loc["D", "r_pooled"] == pytest.approx(-out.loc["M", "r_pooled"])
    direct = pooled_over_seeds(replicates(np.random.default_rng(4)), 100, 0)
    assert out.loc["M", "r_pooled"] == pytest.approx(direct["r_pooled"])


def test_the_overlap_is_pooled_by_the_same_bootstrap_and_labelled():
    """Wiring: the overlap z's pair tables (S holding the z) give exactly
    `pooled_over_seeds` of their matrices, the `measure` column says which score."""
    rng = np.random.default_rng(5)
    names = [f"f{i}" for i in range(F)]
    reps = replicates(rng)
    tables = [
        pd.DataFrame(
            [
                (names[p], names[q], s[p, q], -m[p, q], m[p, q])
                for p, q in itertools.combinations(range(F), 2)
            ],
            columns=["f1", "f2", "S", "D", "M"],
        )  # fmt: skip
        for s, m in reps
    ]
    out = pool_replicate_pairs({"toy": tables}, 100, 0, measure="overlap")
    assert set(out["measure"]) == {"overlap"} and list(out["metric"]) == ["D", "M"]
    direct = pooled_over_seeds(reps, 100, 0)
    row = out.set_index("metric").loc["M"]
    assert (row["r_pooled"], row["ci_low"], row["ci_high"]) == pytest.approx(
        (direct["r_pooled"], direct["ci_low"], direct["ci_high"])
    )
