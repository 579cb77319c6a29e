"""Correlations of S with D and M: bootstrap intervals, Mantel test, the summary table.

METHOD.md section 6.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from vlmbinding.analysis import correlation as st
from vlmbinding.data.vocab import Vocabulary

VOCAB = Vocabulary()


def test_bootstrap_of_an_exact_line_is_one_and_drops_constant_resamples():
    # Every non-constant resample of an increasing line has r = rho = 1. With 4 points
    # about 1 resample in 64 is constant; kept, it would make the interval NaN.
    x = np.array([0.0, 1.0, 2.0, 5.0])
    ci = st.bootstrap_ci(x, 2 * x + 1, n_boot=2000, seed=0)
    assert ci == pytest.approx(dict.fromkeys(ci, 1.0))
    assert set(ci) == {"pearson_ci_low", "pearson_ci_high", "spearman_ci_low", "spearman_ci_high"}


def test_bootstrap_contains_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    y = 0.5 * x + rng.normal(size=80)
    ci = st.bootstrap_ci(x, y, n_boot=1000, seed=3)
    assert ci == st.bootstrap_ci(x, y, n_boot=1000, seed=3)
    assert ci != st.bootstrap_ci(x, y, n_boot=1000, seed=4)
    assert ci["pearson_ci_low"] < sps.pearsonr(x, y).statistic < ci["pearson_ci_high"]
    assert ci["spearman_ci_low"] < sps.spearmanr(x, y).statistic < ci["spearman_ci_high"]
    narrow = st.bootstrap_ci(x, y, n_boot=1000, seed=3, level=0.5)
    assert ci["pearson_ci_low"] < narrow["pearson_ci_low"] < narrow["pearson_ci_high"]
    assert narrow["pearson_ci_high"] < ci["pearson_ci_high"]


def test_bootstrap_of_a_constant_column_is_nan():
    # The float mean of three 0.1s is not 0.1; a constant column must still count as one.
    ci = st.bootstrap_ci([0.1, 0.1, 0.1], [1.0, 2.0, 3.0], 100, 0)
    assert all(np.isnan(v) for v in ci.values())


def test_bootstrap_with_too_few_pairs_is_nan():
    assert all(np.isnan(v) for v in st.bootstrap_ci([1.0, 2.0], [2.0, 1.0], 100, 0).values())


def symmetric(rng, f=16):
    m = rng.random((f, f))
    m = m + m.T
    np.fill_diagonal(m, np.nan)
    return m


def test_mantel_statistic_is_the_correlation_of_the_upper_triangle():
    rng = np.random.default_rng(5)
    a, b = symmetric(rng, 8), symmetric(rng, 8)
    a[1, 4] = a[4, 1] = np.nan  # a missing pair is left out
    iu = np.triu_indices(8, 1)
    ok = np.isfinite(a[iu])
    r, _ = st.mantel_test(a, b, 99, 0)
    assert r == pytest.approx(sps.pearsonr(a[iu][ok], b[iu][ok]).statistic)
    rho, _ = st.mantel_test(a, b, 99, 0, method="spearman")
    assert rho == pytest.approx(sps.spearmanr(a[iu][ok], b[iu][ok]).statistic)


def test_mantel_p_small_when_related_large_when_not_and_fast():
    rng = np.random.default_rng(6)
    a = symmetric(rng)
    related = a + 0.2 * symmetric(rng)
    start = time.perf_counter()
    r, p = st.mantel_test(a, related, 9999, seed=0)
    assert time.perf_counter() - start < 1.0
    assert r > 0.8
    assert p == pytest.approx(1 / 10000)  # no permutation comes near
    _, p_random = st.mantel_test(a, symmetric(rng), 999, seed=0)
    assert p_random > 0.05
    # p is (1 + count) / (n_perm + 1) and reproducible with the seed.
    assert (p_random * 1000) == pytest.approx(round(p_random * 1000))
    assert st.mantel_test(a, symmetric(np.random.default_rng(7)), 999, seed=0) == (
        st.mantel_test(a, symmetric(np.random.default_rng(7)), 999, seed=0)
    )


def test_mantel_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="kendall"):
        st.mantel_test(np.eye(3), np.eye(3), 9, 0, method="kendall")


def test_pairs_to_matrix_is_symmetric_with_nan_diagonal():
    df = pd.DataFrame({"f1": ["a", "c", "a"], "f2": ["b", "a", "z"], "S": [1.0, 2.0, 9.0]})
    m = st.pairs_to_matrix(df, "S", ["a", "b", "c"])
    expected = np.array([[np.nan, 1.0, 2.0], [1.0, np.nan, np.nan], [2.0, np.nan, np.nan]])
    np.testing.assert_array_equal(m, expected)  # the pair with "z" is outside the features


def pair_tables(seed=0):
    """S for the 120 paper pairs and D, M in two spaces, D related to S by construction."""
    rng = np.random.default_rng(seed)
    pairs = VOCAB.feature_pairs()
    sup = pd.DataFrame(pairs, columns=["f1", "f2"])
    sup["S"] = rng.random(len(pairs))
    seps = []
    for space in ("full", "pca"):
        part = sup[["f1", "f2"]].assign(space=space)
        part["D"] = -sup["S"] + 0.3 * rng.random(len(pairs))
        part["M"] = rng.random(len(pairs))
        seps.append(part)
    return sup, pd.concat(seps, ignore_index=True)


def test_correlation_table_shape_columns_and_subsets():
    sup, sep = pair_tables()
    table = st.correlation_table(sup, sep, VOCAB.feature_kinds, n_boot=200, n_perm=199, seed=0)
    assert list(table.columns) == st.CORRELATION_COLUMNS
    assert len(table) == 2 * 2 * 2
    assert set(zip(table["metric"], table["space"], table["subset"])) == {
        (m, s, sub) for m in "DM" for s in ("full", "pca") for sub in ("all", "no_position")
    }
    counts = table.set_index("subset")["n_pairs"]
    assert (counts.loc["all"] == 120).all() and (counts.loc["no_position"] == 55).all()
    assert table["n_boot"].eq(200).all() and table["n_perm"].eq(199).all()
    assert table["n_pairs"].dtype == np.int64


def test_correlation_table_matches_scipy_and_drops_non_finite_pairs():
    sup, sep = pair_tables()
    sep.loc[0, "D"] = np.nan  # (circle, square) in the full space
    table = st.correlation_table(sup, sep, VOCAB.feature_kinds, n_boot=200, n_perm=199)
    row = table.query("metric == 'D' and space == 'full' and subset == 'no_position'").iloc[0]
    assert row["n_pairs"] == 54
    kinds = VOCAB.feature_kinds
    keep = (sup["f1"].map(kinds) != "position") & (sup["f2"].map(kinds) != "position")
    keep &= sep["D"].iloc[:120].notna().to_numpy()
    x, y = sup.loc[keep, "S"], sep["D"].iloc[:120][keep.to_numpy()]
    assert row["pearson_r"] == pytest.approx(sps.pearsonr(x, y).statistic)
    assert row["pearson_p"] == pytest.approx(sps.pearsonr(x, y).pvalue)
    assert row["spearman_rho"] == pytest.approx(sps.spearmanr(x, y).statistic)
    assert row["mantel_r"] == pytest.approx(row["pearson_r"])
    assert row["pearson_r"] < -0.8 and row["mantel_p"] == pytest.approx(1 / 200)
    assert row["pearson_ci_low"] < row["pearson_r"] < row["pearson_ci_high"]


def test_correlation_table_matches_pairs_in_either_order_and_is_deterministic():
    sup, sep = pair_tables()
    flipped = sep.rename(columns={"f1": "f2", "f2": "f1"})
    a = st.correlation_table(sup, sep, VOCAB.feature_kinds, n_boot=100, n_perm=99, seed=1)
    b = st.correlation_table(sup, flipped, VOCAB.feature_kinds, n_boot=100, n_perm=99, seed=1)
    pd.testing.assert_frame_equal(a, b)


def test_correlation_table_with_too_few_pairs_is_nan_not_a_crash():
    sup, sep = pair_tables()
    sep = sep[sep["f2"] == "TL"].head(2)  # two pairs, both with a position
    table = st.correlation_table(sup, sep, VOCAB.feature_kinds, n_boot=50, n_perm=49)
    assert table["n_pairs"].max() == 2
    assert table["pearson_r"].isna().all() and table["mantel_p"].isna().all()


def test_correlation_table_headlines_the_feature_interval_and_mantel():
    sup, sep = pair_tables()
    table = st.correlation_table(sup, sep, VOCAB.feature_kinds, n_boot=300, n_perm=299, seed=2)
    for _, row in table.iterrows():
        assert row["feature_ci_low"] <= row["mantel_r"] <= row["feature_ci_high"]
        assert row["mantel_r"] == pytest.approx(row["pearson_r"])
    # Shared features make the feature interval wider than the pair interval.
    width = table["feature_ci_high"] - table["feature_ci_low"]
    assert (width > table["pearson_ci_high"] - table["pearson_ci_low"]).mean() > 0.5
    row = table.query("metric == 'D' and space == 'full' and subset == 'all'").iloc[0]
    features = list(VOCAB.feature_kinds)
    joined = st.attach_scores(sup, sep[sep["space"] == "full"])
    expected = st.dependence_aware(
        st.pairs_to_matrix(joined, "S", features),
        st.pairs_to_matrix(joined, "D", features),
        n_boot=300,
        n_perm=299,
        seed=2,
    )
    assert row["feature_ci_low"] == pytest.approx(expected["feature_ci_low"])
    assert row["feature_ci_high"] == pytest.approx(expected["feature_ci_high"])
    assert row["mantel_p"] == pytest.approx(expected["mantel_p"])


def test_binding_correlation_permutes_within_kind():
    # Accuracy exists only for colour-colour and shape-shape pairs; within_kind permutes
    # and resamples colours among colours and shapes among shapes.
    sup, _ = pair_tables()
    kinds = VOCAB.feature_kinds
    same = sup["f1"].map(kinds).eq(sup["f2"].map(kinds)) & sup["f1"].map(kinds).ne("position")
    per_pair = sup[same][["f1", "f2"]].assign(space="binding")
    per_pair["accuracy"] = sup.loc[same, "S"].to_numpy() + np.random.default_rng(0).normal(
        0, 0.05, same.sum()
    )
    table = st.correlation_table(
        sup, per_pair, kinds, n_boot=200, n_perm=199, seed=0, metrics=["accuracy"], within_kind=True
    )
    row = table.query("subset == 'all'").iloc[0]
    assert row["n_pairs"] == 25 and row["mantel_p"] < 0.05 and row["feature_ci_low"] > 0.5
    joined = st.attach_scores(sup, per_pair)
    features = [f for f in kinds if f in set(joined["f1"]) | set(joined["f2"])]
    strata = [kinds[f] for f in features]
    a = st.pairs_to_matrix(joined, "S", features)
    b = st.pairs_to_matrix(joined, "accuracy", features)
    assert row["mantel_p"] == st.mantel_test(a, b, 199, 0, strata=strata)[1]


def test_tables_page_leads_with_the_dependence_aware_columns():
    from vlmbinding.report.pages import format_frame, headline_correlations

    sup, sep = pair_tables()
    table = st.correlation_table(sup, sep, VOCAB.feature_kinds, n_boot=50, n_perm=49)
    shown = headline_correlations(table)
    assert list(shown.columns[4:8]) == [
        "pearson_r",
        "feature_ci_low",
        "feature_ci_high",
        "mantel_p",
    ]
    assert "mantel_r" not in shown and "pearson_p" not in shown
    conditional = [c for c in shown.columns if c.startswith("conditional_")]
    assert len(conditional) == 6 and shown.columns.get_loc(conditional[0]) > 7
    assert "conditional_pearson_p" in format_frame(shown)
    # An older table without the feature interval still shows.
    old = headline_correlations(table.drop(columns=["feature_ci_low", "feature_ci_high"]))
    assert "feature_ci_low" not in old and "mantel_p" in old


def test_the_primary_test_is_marked_and_the_comparisons_counted():
    table = pd.DataFrame(
        {
            "metric": ["D", "D", "M", "M"],
            "space": ["full"] * 4,
            "subset": ["all", "no_position"] * 2,
        }
    )
    primary = {"measure": "S", "metric": "M", "subset": "no_position", "space": "full"}
    marked = st.mark_primary(table, primary)
    assert marked["primary"].tolist() == [False, False, False, True]
    assert marked["n_comparisons"].tolist() == [4] * 4
    assert not st.mark_primary(table, None)["primary"].any()
    assert not st.mark_primary(table, primary | {"space": "pca"})["primary"].any()


def test_the_tables_page_lists_the_primary_test_first():
    from vlmbinding.report.pages import HEADLINE_TEXT, headline_correlations

    table = pd.DataFrame(
        {"metric": ["D", "M"], "space": ["full"] * 2, "subset": ["all", "no_position"],
         "pearson_r": [0.1, 0.2], "primary": [False, True], "n_comparisons": [2, 2]}
    )  # fmt: skip
    page = headline_correlations(table)
    assert page["primary"].tolist() == [True, False] and page["metric"].tolist() == ["M", "D"]
    assert "exploratory" in HEADLINE_TEXT and "n_comparisons" in page.columns
