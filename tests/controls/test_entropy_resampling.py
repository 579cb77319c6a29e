"""The entropy rows' image interval: half samples of the images, calibrated and powered."""

import numpy as np
import pandas as pd
import pytest

from vlmbinding.controls import entropy_resampling as er

N_FEATURES, N_UNITS, THRESHOLD = 8, 60, 2.9


def _weights(seed, density):
    """A model: each neuron reads a random sparse set of features (denser: less selective)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N_FEATURES, N_UNITS)) * (rng.random((N_FEATURES, N_UNITS)) < density)


def _images(weights, n, rng):
    """n images from the population: features present at random, both models' activations
    (the same images), noise per model."""
    presence = rng.random((n, N_FEATURES)) < 0.3
    acts = [presence @ w + 1.5 * rng.normal(size=(n, N_UNITS)) for w in weights]
    return acts, presence


def _statistics(acts, presence, k):
    n = len(presence)
    e = er.subsample_entropies(acts, presence, np.arange(n)[None], k)
    s = er.entropy_statistics(e, THRESHOLD)
    return s["median"][0], s["share"][0]


def _simulate(weights, n, k, n_sets, n_draws, seed, n_truth=300):
    """Coverage of the half-sample interval of the trained model's median and share and of
    the difference of medians; the truth: their mean over n_truth fresh image sets of n drawn
    from the population (the statistic's expectation at the design)."""
    rng = np.random.default_rng(seed)
    truth = []
    for _ in range(n_truth):
        acts, presence = _images(weights, n, rng)
        (mt, st), (mr, _) = (_statistics(a, presence, k) for a in acts)
        truth.append([mt, st, mt - mr])
    truth = np.mean(truth, axis=0)
    hits = np.zeros(3)
    for j in range(n_sets):
        acts, presence = _images(weights, n, rng)
        tables = [er.half_sample_table([a], presence, k, THRESHOLD, n_draws, j) for a in acts]
        rows = [er.half_sample_row(*tables, v) for v in ("median", "share")]
        low = [rows[0]["trained_ci_low"], rows[1]["trained_ci_low"], rows[0]["difference_ci_low"]]
        high = [rows[0]["trained_ci_high"], rows[1]["trained_ci_high"],
                rows[0]["difference_ci_high"]]  # fmt: skip
        hits += (np.array(low) <= truth) & (truth <= np.array(high))
    return hits / n_sets


@pytest.mark.slow
def test_half_sample_intervals_cover_the_design_value_about_95_percent():
    # 200 image sets: the Monte Carlo sd of a 95% coverage is 1.5 points
    coverage = _simulate([_weights(1, 0.4), _weights(2, 0.25)], 200, 10, 200, 60, 0)
    assert np.all(coverage >= 0.91), coverage
    assert np.all(coverage <= 1.0), coverage


def test_half_sample_interval_covers_in_a_small_simulation():
    # 20 image sets: at 95% coverage, 16 or fewer hits has probability 1.6%
    coverage = _simulate([_weights(1, 0.4), _weights(2, 0.25)], 200, 10, 20, 30, 1, 100)
    assert np.all(coverage >= 0.85), coverage


def test_a_planted_entropy_difference_is_found():
    # the twin's neurons read 1 feature in 10 (most read none: top images at random, even
    # affinities, high entropy), the trained model's 6 in 10: its entropies are lower; the
    # difference's interval excludes 0 on one image set
    rng = np.random.default_rng(3)
    acts, presence = _images([_weights(1, 0.6), _weights(2, 0.1)], 200, rng)
    tables = [er.half_sample_table([a], presence, 10, THRESHOLD, 100, 0) for a in acts]
    row = er.half_sample_row(*tables, "median")
    assert row["difference"] < 0 and row["difference_ci_high"] < 0, row


def test_no_difference_between_a_model_and_itself_draw_by_draw():
    rng = np.random.default_rng(4)
    acts, presence = _images([_weights(1, 0.4)], 120, rng)
    table = er.half_sample_table([acts[0]], presence, 10, THRESHOLD, 30, 0)
    row = er.half_sample_row(table, table, "share")
    assert row["difference"] == row["difference_ci_low"] == row["difference_ci_high"] == 0
    assert "images resampled: 30 half samples of 60 of 120 images" in row["note"]


def test_the_table_holds_the_full_sample_and_the_halves_over_all_layers():
    rng = np.random.default_rng(5)
    (a,), presence = _images([_weights(1, 0.4)], 100, rng)
    two = er.half_sample_table([a[:, :30], a[:, 30:]], presence, 10, THRESHOLD, 5, 0)
    one = er.half_sample_table([a], presence, 10, THRESHOLD, 5, 0)
    pd.testing.assert_frame_equal(one, two)
    assert list(one["draw"]) == [-1, 0, 1, 2, 3, 4]
    assert list(one["top_k"]) == [10] + [5] * 5 and list(one["m"]) == [100] + [50] * 5
    assert one.loc[0, "median"] == pytest.approx(_statistics(a, presence, 10)[0])


def test_half_samples_are_the_same_images_for_the_same_seed():
    a, b = er.image_subsamples(50, 25, 4, 7), er.image_subsamples(50, 25, 4, 7)
    np.testing.assert_array_equal(a, b)
    assert all(len(set(row)) == 25 for row in a)  # without replacement


def test_sizes_keep_the_top_fraction_and_refuse_a_top_k_of_one():
    assert er.half_sample_size(500, 30) == (250, 15)
    assert er.half_sample_size(500, 5) == (400, 4) or er.half_sample_size(500, 5)[1] < 5
    with pytest.raises(ValueError, match="top_k"):
        er.half_sample_size(500, 1)


def test_tables_drawn_on_other_images_are_refused():
    rng = np.random.default_rng(6)
    (a,), presence = _images([_weights(1, 0.4)], 100, rng)
    t = er.half_sample_table([a], presence, 10, THRESHOLD, 5, 0)
    with pytest.raises(ValueError, match="same images"):
        er.half_sample_row(t, t.assign(n_images=99), "median")
