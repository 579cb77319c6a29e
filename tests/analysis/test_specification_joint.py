"""The joint test of the specification curve and the main analysis as a specification.

Calibration: structure-free specifications (S and the metric independent, every
specification a noisy variant of the same feature effects, so they are strongly dependent)
give a joint p of the median r uniform over seeds and a joint p of the share that is never
anti-conservative. Power: a planted relation is found.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from vlmbinding.analysis import specification_joint as sj
from vlmbinding.analysis.correlation import mantel_test
from vlmbinding.data.vocab import Vocabulary

KINDS = Vocabulary().feature_kinds
F = len(KINDS)
NO_POS = np.array([k != "position" for k in KINDS.values()])


def _additive(effects, noise, rng):
    m = effects[:, None] + effects[None, :] + noise * rng.normal(size=(F, F))
    m = (m + m.T) / 2
    np.fill_diagonal(m, np.nan)
    return m


def _specs(seed, effect=0.0, n_specs=12):
    """Dependent specifications: variants of one S and one metric, over two subsets."""
    rng = np.random.default_rng(seed)
    s, u = rng.normal(size=F), rng.normal(size=F)
    m_eff = effect * s + np.sqrt(1 - effect**2) * u
    a, b, rows = [], [], []
    for k in range(n_specs):
        sa, mb = _additive(s, 0.5, rng), _additive(m_eff, 0.7, rng)
        for subset in ("all", "no_position"):
            keep = np.ones(F, bool) if subset == "all" else NO_POS
            mask = keep[:, None] & keep[None, :]
            a.append(np.where(mask, sa, np.nan))
            b.append(np.where(mask, mb, np.nan))
            rows.append({"metric": "M", "subset": subset, "k": k})
    return pd.DataFrame(rows), np.stack(a), np.stack(b)


def test_column_zero_p_is_each_specifications_mantel_p_on_the_same_permutations():
    specs, a, b = _specs(0, effect=0.5, n_specs=2)
    perms = sj.feature_permutations(F, 99, np.random.default_rng(3), sj.joint_strata(KINDS))
    r = sj.permuted_correlations(a, b, perms)
    p = sj.permutation_p_matrix(r)
    for i in range(len(a)):
        iu = np.triu_indices(F, 1)
        expect = np.mean(np.abs(r[i]) >= abs(r[i, 0]))
        assert p[i, 0] == pytest.approx(expect)
        assert r[i, 0] == pytest.approx(
            sps.pearsonr(*(m[iu][np.isfinite(m[iu])] for m in (a[i], b[i]))).statistic
        )
    # the stratified permutations keep each subset's pairs: no NaN r appears
    assert np.isfinite(r).all()


def test_joint_p_is_calibrated_on_structure_free_specifications():
    share_p, median_p = [], []
    for seed in range(120):
        specs, a, b = _specs(seed, n_specs=8)
        out = sj.joint_summary(specs, a, b, KINDS, n_perm=99, seed=seed).iloc[0]
        share_p.append(out["joint_p_share"])
        median_p.append(out["joint_p_median"])
    assert sps.kstest(median_p, "uniform").pvalue > 0.01
    for alpha in (0.05, 0.1, 0.2):  # the share is discrete: valid, perhaps conservative
        assert np.mean(np.array(share_p) <= alpha) <= alpha + 0.05


def test_joint_test_finds_a_planted_relation():
    found = []
    for seed in range(20):
        specs, a, b = _specs(seed, effect=0.8)
        out = sj.joint_summary(specs, a, b, KINDS, n_perm=99, seed=seed).iloc[0]
        found.append(out["joint_p_median"] < 0.05 and out["joint_p_share"] < 0.05)
    assert np.mean(found) >= 0.6


def test_the_main_analysis_joins_the_grid_and_is_marked():
    robustness = {"top_k": [10, 30], "n_neurons": [100, 1000], "reduce": ["mean"],
                  "tokens": ["all"], "layers": ["last-10"]}  # fmt: skip
    analysis = {"top_k": 6, "n_neurons": 200, "reduce": "max", "tokens": "all"}
    grid = sj.grid_with_main(robustness, analysis)
    assert grid["top_k"] == [10, 30, 6] and grid["n_neurons"] == [100, 1000, 200]
    assert grid["reduce"] == ["mean", "max"] and grid["tokens"] == ["all"]
    assert robustness["top_k"] == [10, 30]  # not changed in place
    pools = sj.pools_with_main({"last-2": [2, 3], "all": [0, 1, 2, 3]}, [1, 3])
    assert pools["main"] == [1, 3]
    assert "main" not in sj.pools_with_main({"last-2": [2, 3]}, [3, 2])
    specs = pd.DataFrame(
        {
            "top_k": [6, 6, 10],
            "reduce": ["max"] * 3,
            "tokens": ["all"] * 3,
            "layers": ["main", "main", "main"],
            "n_neurons": [50, 8, 50],  # the pool has 50 neurons: 200 caps at 50
        }
    )
    main = analysis | {"blocks": [3, 1]}
    assert sj.main_mask(specs, pools, main).tolist() == [True, False, False]


def test_mantel_and_joint_permutations_share_the_feature_as_unit():
    # The unstratified Mantel p and the joint test's column-0 p estimate the same thing.
    specs, a, b = _specs(4, effect=0.6, n_specs=1)
    i = 1  # the no_position specification
    keep = NO_POS
    _, p_mantel = mantel_test(a[i][np.ix_(keep, keep)], b[i][np.ix_(keep, keep)], 999, 0)
    perms = sj.feature_permutations(F, 999, np.random.default_rng(0), sj.joint_strata(KINDS))
    p_joint = sj.permutation_p_matrix(sj.permuted_correlations(a[i : i + 1], b[i : i + 1], perms))
    assert abs(p_joint[0, 0] - p_mantel) < 0.03


def test_specification_table_keeps_each_rows_matrices_and_marks_the_main_analysis():
    from test_specification import _synthetic

    from vlmbinding.analysis.separability import separability_table
    from vlmbinding.analysis.specification import layer_affinity_grid, specification_table
    from vlmbinding.data.vocab import all_pairs

    presence, acts, emb = _synthetic(seed=2)
    feats = list(KINDS)
    grid = layer_affinity_grid(0, acts[:, :, :12], presence, feats, [10], ["mean"], ["all"])
    sep = separability_table(emb, presence, feats, all_pairs(feats))
    main = {"top_k": 10, "n_neurons": 50, "reduce": "mean", "tokens": "all", "blocks": [0]}
    table, a, b = specification_table(
        grid, sep, KINDS, {"all": [0]}, [8, 50], n_boot=100, n_perm=99, main=main,
        keep_matrices=True,
    )  # fmt: skip
    assert a.shape == b.shape == (len(table), F, F)
    r = sj.permuted_correlations(a, b, np.empty((0, F), dtype=int))[:, 0]
    np.testing.assert_allclose(r, table["pearson_r"], atol=1e-12)
    assert table["main"].sum() == 8 and table.loc[table["main"], "n_neurons"].eq(12).all()
    joint = sj.joint_summary(table, a, b, KINDS, 49, 0)
    assert list(joint["metric"]) == ["D", "M"] and joint["joint_p_share"].between(0, 1).all()
