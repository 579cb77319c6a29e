"""Pair classes, centroid distance D, nearest-centroid error M and the per-pair PCA.

METHOD.md section 5; the D and M values are worked out by hand in the tests.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.decomposition import PCA

from vlmbinding.analysis import separability as sep


def test_pair_classes_exclude_both_and_neither():
    presence = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype=bool)
    m1, m2 = sep.pair_classes(presence, 0, 1)
    np.testing.assert_array_equal(m1, [True, False, False, False, True])
    np.testing.assert_array_equal(m2, [False, True, False, False, False])


def test_d_and_m_on_a_line_with_one_error():
    # centroids 2 and 5, D = 3; the point 5 of class 1 is nearer centroid 2 -> 1 error of 5.
    d, m = sep.centroid_separability(np.array([[0.0], [1.0], [5.0]]), np.array([[4.0], [6.0]]))
    assert d == pytest.approx(3.0)
    assert m == pytest.approx(1 / 5)


def test_exact_tie_is_assigned_to_class_1():
    # centroids 1 and 3; the class-2 point 2 is equidistant, so counts as class 1 (wrong);
    # the class-1 point 3 sits on centroid 2 (wrong). 2 errors of 4.
    d, m = sep.centroid_separability(np.array([[-1.0], [3.0]]), np.array([[2.0], [4.0]]))
    assert d == 2.0
    assert m == 0.5


def test_d_is_euclidean_and_separated_classes_have_no_error():
    d, m = sep.centroid_separability(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]))
    assert (d, m) == (5.0, 0.0)


def test_empty_class_gives_nan():
    d, m = sep.centroid_separability(np.zeros((0, 2)), np.ones((3, 2)))
    assert np.isnan(d) and np.isnan(m)


def test_pca_keeps_the_fewest_components_reaching_the_variance():
    # A box of half-widths 3 and 1: variance ratios 0.9 and 0.1 along x and y.
    box = np.array([[3.0, 1.0], [3.0, -1.0], [-3.0, 1.0], [-3.0, -1.0]]) + [10.0, 5.0]
    one = sep.pca_project(box, 0.89)
    assert one.shape == (4, 1)
    np.testing.assert_allclose(np.abs(one[:, 0]), 3.0)  # the centred x coordinate
    assert sep.pca_project(box, 0.91).shape == (4, 2)
    # sklearn's side="right" rule: a cumulative ratio equal to the target is not enough.
    assert sep.n_pca_components(np.array([0.5, 0.25, 0.25]), 0.5) == 2
    assert sep.n_pca_components(np.array([0.5, 0.5]), 1.0) == 2  # capped


@pytest.mark.parametrize("variance", [0.5, 0.9, 0.99])
def test_pca_matches_sklearn_components_and_distances(variance):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 12)) * np.geomspace(5, 0.1, 12) + rng.normal(size=12)
    ours = sep.pca_project(x, variance)
    theirs = PCA(variance, svd_solver="full").fit_transform(x)
    assert ours.shape == theirs.shape
    assert 1 < ours.shape[1] < 12
    dist = np.linalg.norm(ours[:, None] - ours[None], axis=-1)
    np.testing.assert_allclose(dist, np.linalg.norm(theirs[:, None] - theirs[None], axis=-1))


PRESENCE = np.array(
    [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=bool
)  # features a, b, c; c is never present
EMBEDDINGS = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0], [50.0, 50.0], [9, 9]])


def test_separability_table_rows_columns_and_values():
    table = sep.separability_table(EMBEDDINGS, PRESENCE, ["a", "b", "c"], [("a", "b")], 0.7)
    assert list(table.columns) == ["f1", "f2", "space", "D", "M", "n1", "n2"]
    assert table["space"].tolist() == ["full", "pca"]
    assert table["n1"].dtype == np.int64 and table["n2"].dtype == np.int64
    # Class a-not-b: images 0, 1 (centroid (1, 0)); b-not-a: 2, 3 (centroid (1, 4)).
    # Image 4 has both and image 5 neither: they must not move the centroids.
    assert table["n1"].tolist() == [2, 2] and table["n2"].tolist() == [2, 2]
    # PCA on the 4 points: variance ratios 0.8 (y) and 0.2 (x); at 0.7 only y is kept,
    # which holds the whole centroid difference.
    np.testing.assert_allclose(table["D"], [4.0, 4.0])
    np.testing.assert_allclose(table["M"], [0.0, 0.0])


def test_pca_space_distance_matches_sklearn_on_the_union():
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(40, 6)) * [4, 3, 2, 1, 0.5, 0.1]
    presence = rng.random((40, 2)) < 0.5
    table = sep.separability_table(emb, presence, ["a", "b"], [("a", "b")])
    m1, m2 = sep.pair_classes(presence, 0, 1)
    z = PCA(0.9, svd_solver="full").fit_transform(emb[m1 | m2])
    z1, z2 = z[m1[m1 | m2]], z[m2[m1 | m2]]
    expected = np.linalg.norm(z1.mean(axis=0) - z2.mean(axis=0))
    assert table["D"].iloc[1] == pytest.approx(expected)
    assert table["D"].iloc[1] < table["D"].iloc[0]  # some components were dropped


def test_empty_class_gives_nan_rows_and_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="vlmbinding.analysis.separability"):
        table = sep.separability_table(
            EMBEDDINGS, PRESENCE, ["a", "b", "c"], [("a", "c"), ("a", "b")]
        )
    assert len(table) == 4
    assert table["D"].iloc[:2].isna().all() and table["M"].iloc[:2].isna().all()
    assert table["n1"].tolist()[:2] == [3, 3] and table["n2"].tolist()[:2] == [0, 0]
    assert table["D"].iloc[2:].notna().all()
    assert "(a, c)" in caplog.text


def test_unknown_feature_is_a_clear_error():
    with pytest.raises(ValueError, match="zebra"):
        sep.separability_table(EMBEDDINGS, PRESENCE, ["a", "b", "c"], [("a", "zebra")])


def _fail(*_args, **_kwargs):
    raise np.linalg.LinAlgError("SVD did not converge")


@pytest.mark.parametrize("failing", [["gesdd"], ["gesdd", "gesvd"]])
@pytest.mark.parametrize("shape", [(60, 12), (12, 60)])  # more points than dims, and fewer
def test_pca_falls_back_when_the_svd_does_not_converge(monkeypatch, caplog, failing, shape):
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape) * np.geomspace(5, 0.1, shape[1]) + rng.normal(size=shape[1])
    expected = sep.pca_project(x, 0.9)
    methods = tuple((name, _fail if name in failing else f) for name, f in sep.SVD_METHODS)
    monkeypatch.setattr(sep, "SVD_METHODS", methods)
    with caplog.at_level(logging.WARNING, logger="vlmbinding.analysis.separability"):
        got = sep.pca_project(x, 0.9)
    assert got.shape == expected.shape
    # Same subspace: the same pairwise distances (components may differ in sign).
    dist = lambda z: np.linalg.norm(z[:, None] - z[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dist(got), dist(expected), atol=1e-9)
    assert "fell back" in caplog.text and "did not converge" in caplog.text


def test_pca_fails_clearly_when_no_method_converges(monkeypatch):
    monkeypatch.setattr(sep, "SVD_METHODS", tuple((n, _fail) for n, _ in sep.SVD_METHODS))
    with pytest.raises(np.linalg.LinAlgError, match="no SVD method converged"):
        sep.pca_project(np.eye(4), 0.9)


def test_pca_rejects_non_finite_embeddings():
    x = np.ones((4, 3))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sep.pca_project(x, 0.9)


@pytest.mark.parametrize("break_gesdd", [False, True])
def test_d_and_m_do_not_depend_on_pair_order(monkeypatch, break_gesdd):
    rng = np.random.default_rng(4)
    emb = rng.normal(size=(80, 10)) * np.geomspace(3, 0.2, 10)
    presence = rng.random((80, 3)) < 0.5
    emb[presence[:, 0]] += 0.5
    features = ["a", "b", "c"]
    forward = sep.separability_table(emb, presence, features, [("a", "b"), ("c", "a")])
    if break_gesdd:  # as when gesdd fails for one order only: the other order falls back
        methods = tuple((n, _fail if n == "gesdd" else f) for n, f in sep.SVD_METHODS)
        monkeypatch.setattr(sep, "SVD_METHODS", methods)
    backward = sep.separability_table(emb, presence, features, [("b", "a"), ("a", "c")])
    np.testing.assert_allclose(forward["D"], backward["D"], rtol=1e-10)
    np.testing.assert_allclose(forward["M"], backward["M"])
    assert forward["n1"].tolist() == backward["n2"].tolist()
