"""The null model for S: image labels permuted, top-k image sets fixed.

Pins that the observed S is score_superposition's S, that structure-free activations give
uniform p-values over seeds (calibration), that a planted feature-selective population is
found (power), and the correlation's null on a hand-checked case.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from vlmbinding.analysis import neurons as nr
from vlmbinding.analysis import null_model as nm
from vlmbinding.data.toyshapes import sample_scenes
from vlmbinding.data.vocab import Vocabulary, presence_matrix

VOCAB = Vocabulary()
FEATURES = VOCAB.features
PAIRS = VOCAB.feature_pairs()


def dataset(seed=0, per_count=40):
    objects = sample_scenes(VOCAB, [1, 2, 3], per_count, seed)
    ids = list(pd.unique(objects["image_id"]))
    return ids, presence_matrix(objects, ids, VOCAB)


def neuron_tables(acts, presence, ids, k, layers=2):
    """Neuron tables of `layers` blocks, as neuron_statistics writes them."""
    units = acts.shape[1] // layers
    return pd.concat(
        [
            nr.neuron_table(
                layer,
                acts[:, None, layer * units : (layer + 1) * units],
                presence,
                FEATURES,
                ids,
                k,
            )
            for layer in range(layers)
        ],
        ignore_index=True,
    )


def test_observed_s_is_the_pipelines_s_and_reruns_are_seeded():
    ids, presence = dataset()
    rng = np.random.default_rng(1)
    neurons = neuron_tables(rng.normal(size=(len(ids), 300)), presence, ids, k=10)
    selected = nr.select_feature_neurons(neurons, 25)
    expected = nr.superposition_scores(selected, FEATURES, PAIRS)
    table, null = nm.null_superposition(neurons, presence, ids, FEATURES, PAIRS, 25, 20, seed=0)
    assert list(table.columns) == nm.NULL_COLUMNS and null.shape == (20, 120)
    np.testing.assert_allclose(table["S"], expected["S"], rtol=1e-12)
    assert list(zip(table["f1"], table["f2"])) == PAIRS
    again, _ = nm.null_superposition(neurons, presence, ids, FEATURES, PAIRS, 25, 20, seed=0)
    pd.testing.assert_frame_equal(table, again)
    np.testing.assert_allclose(table["null_mean"], null.mean(axis=0))
    np.testing.assert_allclose(table["z"], (table["S"] - null.mean(0)) / null.std(0, ddof=1))
    # Two-sided p counted by hand.
    dev = np.abs(null - null.mean(0))
    by_hand = (1 + (dev >= np.abs(table["S"].to_numpy() - null.mean(0))).sum(0)) / 21
    np.testing.assert_allclose(table["p"], by_hand)


def test_null_keeps_top_k_sets_and_feature_frequencies():
    # A permutation that moves nothing reproduces S; labels shuffled keep each column sum.
    ids, presence = dataset()
    neurons = neuron_tables(np.random.default_rng(2).normal(size=(len(ids), 60)), presence, ids, 5)
    member, k = nm.membership_matrix(neurons, ids)
    assert (k == member.sum(axis=1).A1).all() and (k == 5).all()
    aff = np.asarray(member @ presence.astype(float)) / k[:, None]
    np.testing.assert_array_equal(aff, neurons[FEATURES].to_numpy())
    with pytest.raises(ValueError, match="not in the dataset"):
        nm.membership_matrix(neurons, ids[1:])


def test_p_values_are_uniform_on_structure_free_activations():
    ids, presence = dataset(per_count=30)
    ps = []
    for seed in range(120):
        acts = np.random.default_rng(seed).normal(size=(len(ids), 80))
        neurons = neuron_tables(acts, presence, ids, k=8)
        table, _ = nm.null_superposition(neurons, presence, ids, FEATURES, PAIRS, 10, 39, seed)
        ps.append(table["p"].iloc[seed % len(PAIRS)])  # one pair per seed
    assert sps.kstest(ps, "uniform").pvalue > 0.001
    assert np.mean(np.array(ps) <= 0.05) < 0.12


def test_a_planted_superposed_population_is_found():
    # Neurons that fire for red or for a square, most on images with few objects: their
    # top images hold one of the two far more often than the labels' frequencies allow.
    ids, presence = dataset()
    rng = np.random.default_rng(3)
    acts = rng.normal(size=(len(ids), 200))
    either = presence[:, FEATURES.index("red")] | presence[:, FEATURES.index("square")]
    n_objects = presence[:, : len(VOCAB.shapes)].sum(axis=1)
    acts[:, :20] += 4.0 * either[:, None] - 2.0 * n_objects[:, None]
    neurons = neuron_tables(acts, presence, ids, k=10)
    table, _ = nm.null_superposition(neurons, presence, ids, FEATURES, PAIRS, 30, 99, seed=0)
    row = table[(table["f1"] == "square") & (table["f2"] == "red")].iloc[0]
    assert row["p"] == pytest.approx(1 / 100) and row["z"] > 5
    assert row["z"] == table["z"].max()  # the planted pair stands out most


def test_correlation_null_matches_a_brute_force_count():
    ids, presence = dataset()
    neurons = neuron_tables(np.random.default_rng(4).normal(size=(len(ids), 100)), presence, ids, 8)
    table, null = nm.null_superposition(neurons, presence, ids, FEATURES, PAIRS, 20, 49, seed=0)
    # D related to the observed S by construction (listed in the other pair order).
    sep = pd.DataFrame({"f1": table["f2"], "f2": table["f1"], "space": "full"})
    sep["D"] = -table["S"].to_numpy() + np.random.default_rng(0).normal(0, 0.01, len(table))
    sep["M"] = np.random.default_rng(1).random(len(table))
    out = nm.null_correlation(table, null, sep, VOCAB.feature_kinds)
    assert list(out.columns) == nm.NULL_CORRELATION_COLUMNS and len(out) == 4
    row = out[(out["metric"] == "D") & (out["subset"] == "all")].iloc[0]
    assert row["n_pairs"] == 120
    assert row["pearson_r"] == pytest.approx(sps.pearsonr(table["S"], sep["D"]).statistic)
    r_null = [sps.pearsonr(s, sep["D"]).statistic for s in null]
    assert row["null_mean"] == pytest.approx(np.mean(r_null))
    centre = np.mean(r_null)
    far = np.sum(np.abs(r_null - centre) >= abs(row["pearson_r"] - centre))
    assert row["p"] == pytest.approx((1 + far) / 50)
    assert row["z"] == pytest.approx((row["pearson_r"] - centre) / np.std(r_null, ddof=1))
    assert out[out["subset"] == "no_position"]["n_pairs"].eq(55).all()


def test_centred_p_is_uniform_when_the_observed_is_one_more_null_draw():
    """Calibration: a null centred far from 0 (as r(S, M)'s, 0.47 +- 0.06 on the demo) and
    an observed r drawn from it give uniform p over seeds."""
    ps = []
    for seed in range(400):
        draws = np.random.default_rng(seed).normal(0.47, 0.06, 200)
        ps.append(nm.centred_permutation_p(draws[0], draws[1:])["p"])
    assert sps.kstest(ps, "uniform").pvalue > 0.01
    assert 0.015 < np.mean(np.array(ps) <= 0.05) < 0.09


def test_centred_p_finds_an_observed_r_far_below_a_null_centred_above_zero():
    """Power: the demo's case, r(S, M) = 0.26 against a null of 0.47 +- 0.06; counting
    |r_null| >= |r| would give p near 1."""
    null = np.random.default_rng(0).normal(0.47, 0.06, 999)
    out = nm.centred_permutation_p(0.26, null)
    assert out["p"] < 0.01 and out["z"] == pytest.approx((0.26 - null.mean()) / null.std(ddof=1))
    assert np.mean(np.abs(null) >= 0.26) > 0.99  # what the uncentred count gave
    assert np.isnan(nm.centred_permutation_p(np.nan, null)["p"])
    assert np.isnan(nm.centred_permutation_p(0.2, np.empty(0))["null_mean"])


def test_tables_page_sections_summarise_the_null():
    from vlmbinding.report.pages import format_frame, null_sections

    ids, presence = dataset()
    neurons = neuron_tables(np.random.default_rng(5).normal(size=(len(ids), 100)), presence, ids, 8)
    sep = pd.DataFrame(VOCAB.feature_pairs(), columns=["f1", "f2"]).assign(space="full")
    sep["D"], sep["M"] = np.random.default_rng(2).random((2, len(sep)))
    table, corr = nm.null_superposition_tables(neurons, presence, ids, VOCAB, sep, 20, 29, 0)
    sections = null_sections(table, corr, top=5)
    assert len(sections) == 2 and len(sections[0][2]) == 5
    assert "29 permutations" in sections[0][1]
    shown = sections[0][2]
    assert shown["z"].abs().is_monotonic_decreasing
    assert "null_mean" in format_frame(sections[1][2])


def test_null_figure_saves_reproducibly(tmp_path):
    import matplotlib.pyplot as plt

    from vlmbinding.report import figures as fg

    ids, presence = dataset()
    neurons = neuron_tables(np.random.default_rng(6).normal(size=(len(ids), 100)), presence, ids, 8)
    table, _ = nm.null_superposition(neurons, presence, ids, FEATURES, PAIRS, 20, 19, 0)
    for name in ("a", "b"):
        fg.save_figure(fg.superposition_null(table, label=3), tmp_path / f"{name}.png", dpi=50)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert plt.get_fignums() == []
    fig = fg.superposition_null(table, label=3)
    assert len(fig.axes[0].texts) == 3
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "p ≤ 0.05" in legend and "central 95%" in legend
