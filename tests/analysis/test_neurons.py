"""Token reduction, top-k images, affinities, entropy, selection, superposition score.

METHOD.md sections 2-4; every expected value is worked out by hand in the test.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis import neurons as nr
from vlmbinding.data.vocab import Vocabulary

# [image 2, token 3, unit 2]; token 0 is CLS.
MLP_OUT = np.array(
    [
        [[10.0, -1.0], [1.0, 4.0], [2.0, 0.0]],
        [[0.0, 3.0], [6.0, 3.0], [-3.0, 9.0]],
    ]
)


def test_reduce_mean_and_max_over_all_tokens():
    mean = nr.reduce_tokens(MLP_OUT, "mean", "all")
    np.testing.assert_allclose(mean, [[13 / 3, 1.0], [1.0, 5.0]], rtol=1e-6)
    np.testing.assert_array_equal(nr.reduce_tokens(MLP_OUT, "max", "all"), [[10, 4], [6, 9]])
    assert mean.dtype == np.float32


def test_reduce_patches_drops_cls():
    np.testing.assert_allclose(
        nr.reduce_tokens(MLP_OUT, "mean", "patches"), [[1.5, 2.0], [1.5, 6.0]], rtol=1e-6
    )
    np.testing.assert_array_equal(nr.reduce_tokens(MLP_OUT, "max", "patches"), [[2, 4], [6, 9]])


def test_reduce_float16_accumulates_in_float32():
    # 257 tokens of 2048 plus one token of 1: in float16 2048 + 1 rounds back to 2048
    # (spacing 2 there), so a float16 running sum would lose the 1 and much more.
    x = np.full((1, 257, 1), 1.0, dtype=np.float16)
    x[0, 0, 0] = 2048.0
    out = nr.reduce_tokens(x, "mean", "all")
    assert out.dtype == np.float32
    assert out[0, 0] == pytest.approx((2048 + 256) / 257, rel=1e-6)


@pytest.mark.parametrize("kwargs", [{"how": "median"}, {"tokens": "cls"}])
def test_reduce_rejects_unknown_options(kwargs):
    bad = next(iter(kwargs.values()))
    with pytest.raises(ValueError, match=bad):
        nr.reduce_tokens(MLP_OUT, **kwargs)


def test_top_k_highest_first_ties_to_lower_index():
    acts = np.array([[1.0, 5.0], [3.0, 4.0], [3.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    top = nr.top_k_images(acts, 4)
    assert top.dtype == np.int64
    np.testing.assert_array_equal(top[:, 0], [1, 2, 4, 3])
    np.testing.assert_array_equal(top[:, 1], [0, 1, 2, 3])
    # float16 activations tie often; the order must not change.
    np.testing.assert_array_equal(nr.top_k_images(acts.astype(np.float16), 4), top)


def test_top_k_ties_in_a_long_column_keep_image_order():
    # Long enough that an unstable sort (introsort) would shuffle equal values.
    acts = np.tile([1.0, 2.0, 0.0], 100)[:, None]  # images 1, 4, 7, ... hold the maximum
    np.testing.assert_array_equal(nr.top_k_images(acts, 100)[:, 0], np.arange(1, 300, 3))


def test_top_k_larger_than_images_is_an_error():
    with pytest.raises(ValueError, match="k=6"):
        nr.top_k_images(np.zeros((5, 2)), 6)


def test_affinities_are_fractions_of_top_images():
    presence = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=bool)
    top = np.array([[0, 2], [1, 3], [3, 2]])  # k = 3 (unit 1 lists image 2 twice: fine)
    aff = nr.affinities(top, presence)
    # unit 0: images 0, 1, 3 -> feature 0 in 2 of 3, feature 1 in 2, feature 2 in 2.
    # unit 1: images 2, 3, 2 -> feature 0 in 0, feature 1 in 1, feature 2 in 3.
    np.testing.assert_allclose(aff, [[2 / 3, 2 / 3, 2 / 3], [0.0, 1 / 3, 1.0]])
    assert aff.dtype == np.float64


def test_entropy_in_bits():
    one_hot = np.zeros(16)
    one_hot[3] = 0.7
    with_zeros = [0.3, 0.1] + [0.0] * 14  # p = 3/4, 1/4
    h = nr.entropy_bits(np.array([np.full(16, 0.25), one_hot, with_zeros, np.zeros(16)]))
    assert h[0] == pytest.approx(4.0)  # uniform over 16: log2 16
    assert h[1] == 0.0
    assert h[2] == pytest.approx(0.75 * math.log2(4 / 3) + 0.25 * 2)
    assert np.isnan(h[3])


def test_neuron_table_columns_values_and_top_images():
    # 4 images, 2 tokens, 2 units; features a, b.
    mlp = np.zeros((4, 2, 2), dtype=np.float16)
    mlp[:, :, 0] = [[1, 1], [4, 4], [2, 2], [3, 3]]  # unit 0 ranks images 1, 3, 2, 0
    mlp[:, :, 1] = [[9, 9], [0, 0], [0, 0], [9, 9]]  # unit 1: images 0, 3 (tie -> 0 first)
    presence = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=bool)
    table = nr.neuron_table(7, mlp, presence, ["a", "b"], ["i0", "i1", "i2", "i3"], k=2)
    assert list(table.columns) == ["layer", "unit", "a", "b", "entropy", "top_images"]
    assert table["layer"].dtype == np.int64 and table["unit"].dtype == np.int64
    assert table["layer"].tolist() == [7, 7] and table["unit"].tolist() == [0, 1]
    assert table["top_images"].tolist() == ["i1,i3", "i0,i3"]
    np.testing.assert_allclose(table[["a", "b"]].to_numpy(), [[0.5, 1.0], [0.5, 0.5]])
    # unit 0: p = 1/3, 2/3; unit 1: p = 1/2, 1/2 -> 1 bit.
    expected0 = -(1 / 3) * math.log2(1 / 3) - (2 / 3) * math.log2(2 / 3)
    np.testing.assert_allclose(table["entropy"], [expected0, 1.0])


def neuron_rows():
    return pd.DataFrame(
        {
            "layer": [3, 3, 3, 2, 1, 1],
            "unit": [0, 1, 2, 0, 5, 9],
            "entropy": [3.0, 1.0, np.nan, 1.0, 1.0, 2.0],
        }
    )


def test_select_lowest_entropy_ties_by_layer_then_unit():
    chosen = nr.select_feature_neurons(neuron_rows(), 4)
    assert list(zip(chosen["layer"], chosen["unit"])) == [(1, 5), (2, 0), (3, 1), (1, 9)]
    assert chosen["entropy"].tolist() == [1.0, 1.0, 1.0, 2.0]


def test_select_never_takes_nan_and_warns_when_short(caplog):
    with caplog.at_level(logging.WARNING, logger="vlmbinding.analysis.neurons"):
        chosen = nr.select_feature_neurons(neuron_rows(), 10)
    assert len(chosen) == 5
    assert chosen["entropy"].notna().all()
    assert "only 5" in caplog.text


def test_select_enough_rows_does_not_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="vlmbinding.analysis.neurons"):
        nr.select_feature_neurons(neuron_rows(), 5)
    assert caplog.text == ""


def test_superposition_score_and_threshold_count():
    selected = pd.DataFrame(
        {"A": [0.5, 0.2, 1.0], "B": [0.5, 0.2, 0.0], "C": [0.0, 0.4, 0.0], "entropy": 1.0}
    )
    # ratios (A,B): 1, 0.4/0.8, 1 ; (A,C): 0.5, 0.6/0.8, 1 ; (B,C): 0.5, 0.6/0.8, 0
    pairs = [("B", "C"), ("A", "B"), ("A", "C")]
    scores = nr.superposition_scores(selected, ["A", "B", "C"], pairs, threshold=0.5)
    assert list(scores.columns) == ["f1", "f2", "S", "n_over_threshold", "n_neurons"]
    assert list(zip(scores["f1"], scores["f2"])) == pairs
    np.testing.assert_allclose(scores["S"], [1.25, 2.5, 2.25])
    assert scores["n_over_threshold"].tolist() == [1, 2, 2]  # 0.5 itself is not over 0.5
    assert scores["n_neurons"].tolist() == [3, 3, 3]
    default = nr.superposition_scores(selected, ["A", "B", "C"], pairs)
    assert default["n_over_threshold"].tolist() == [2, 3, 3]


def test_superposition_is_vectorised():
    vocab = Vocabulary()
    rng = np.random.default_rng(0)
    selected = pd.DataFrame(rng.random((1000, 16)), columns=vocab.features)
    start = time.perf_counter()
    scores = nr.superposition_scores(selected, vocab.features, vocab.feature_pairs())
    assert time.perf_counter() - start < 0.2
    assert len(scores) == 120


def test_superposition_score_is_the_sum_of_two_feature_masses():
    # S(f1, f2) = P(f1) + P(f2) for any affinities: the score carries nothing about the pair
    # beyond its two features, and its mean over all pairs is 2N/F for every model.
    vocab = Vocabulary()
    rng = np.random.default_rng(3)
    for n in (1, 7, 100):
        aff = rng.random((n, 16)) * (rng.random((n, 16)) < 0.4)  # sparse, as top-k shares are
        aff[:, 0] += 0.01  # no neuron without affinity
        selected = pd.DataFrame(aff, columns=vocab.features)
        scores = nr.superposition_scores(selected, vocab.features, vocab.feature_pairs())
        mass = nr.feature_mass(selected, vocab.features)
        np.testing.assert_allclose(
            scores["S"], mass[scores["f1"]].to_numpy() + mass[scores["f2"]].to_numpy()
        )
        assert scores["S"].mean() == pytest.approx(2 * n / 16)
        assert mass.sum() == pytest.approx(n)
