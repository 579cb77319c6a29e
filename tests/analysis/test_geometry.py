"""Encoding geometry: interference iota and neuron sharing omega, cross-fitted, with nulls."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from vlmbinding.analysis.geometry import (
    encoding_geometry,
    object_labels,
    object_patch_masks,
    object_vectors,
)
from vlmbinding.analysis.sharing import additive_r2
from vlmbinding.data.toyshapes import sample_scenes
from vlmbinding.data.vocab import Vocabulary

VOCAB = Vocabulary()
FEATURES = VOCAB.features
OBJECTS = sample_scenes(VOCAB, [1, 2, 3, 4, 5], 40, seed=0)
IMAGE_OF_OBJECT = OBJECTS["image_id"].to_numpy()
LABELS = object_labels(OBJECTS, FEATURES)


def _planted(seed: int, shared: bool = True, n_units: int = 400, noise: float = 1.0):
    """Objects' vectors: each feature writes on its own 6 neurons with random signs; red and
    square on the same 6 (signs orthogonal: they share neurons, not a direction)."""
    rng = np.random.default_rng(seed)
    directions = np.zeros((len(FEATURES), n_units))
    for j in range(len(FEATURES)):
        units = np.arange(6 * j, 6 * j + 6) % n_units
        directions[j, units] = rng.choice([-1.0, 1.0], size=6)
    if shared:
        red, square = FEATURES.index("red"), FEATURES.index("square")
        units = np.flatnonzero(directions[red])
        directions[square] = 0
        # orthogonal to red: half the signs agree, so they share neurons, not a direction
        directions[square, units] = np.array([1, 1, 1, -1, -1, -1.0]) * directions[red, units]
    vectors = LABELS.astype(float) @ directions * 1.5
    return vectors + noise * rng.standard_normal(vectors.shape)


def _row(table, measure, f1, f2):
    hit = table[(table.measure == measure) & (table.f1 == f1) & (table.f2 == f2)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_patch_masks_cover_the_box_and_tiny_objects_get_their_centre_patch():
    boxes = np.array([[0, 0, 50, 100], [60, 60, 61, 61]])
    masks = object_patch_masks(boxes, (100, 100), (4, 4))
    assert masks[0].reshape(4, 4)[:, :2].all() and not masks[0].reshape(4, 4)[:, 2:].any()
    assert masks[1].sum() == 1 and masks[1].reshape(4, 4)[2, 2]


def test_object_vectors_remove_each_patch_positions_mean():
    acts = np.zeros((3, 4, 2))
    acts[:, 0, :] = 5.0  # patch 0 is always high: position, not object
    acts[1, 1, 0] = 3.0
    masks = np.array([[True, True, False, False]])
    vec = object_vectors(acts, np.array([1]), masks)
    assert vec[0, 0] == pytest.approx((0 + (3 - 1)) / 2)
    assert vec[0, 1] == pytest.approx(0.0)


def test_shared_neurons_are_found_where_directions_do_not_align():
    table = encoding_geometry(_planted(0), LABELS, FEATURES, IMAGE_OF_OBJECT, n_null=200)
    shared = _row(table, "neuron_sharing", "square", "red")  # feature order: shapes first
    other = _row(table, "neuron_sharing", "circle", "green")
    assert shared.z > 4 and shared.p < 0.01
    assert abs(other.z) < 3
    # the two directions are orthogonal: interference does not see the shared neurons
    assert abs(_row(table, "interference", "square", "red").value) < 0.25


def test_omega_is_not_a_sum_of_per_feature_terms():
    table = encoding_geometry(_planted(1), LABELS, FEATURES, IMAGE_OF_OBJECT, n_null=50)
    sharing = table[table.measure == "neuron_sharing"]
    assert additive_r2(sharing, "z") < 0.5


def test_structure_free_vectors_give_uniform_p_over_seeds():
    ps = []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        vectors = rng.standard_normal((len(OBJECTS), 60))
        table = encoding_geometry(vectors, LABELS, FEATURES, IMAGE_OF_OBJECT, n_null=99, seed=seed)
        ps.append(_row(table, "neuron_sharing", "circle", "green").p)
    assert stats.kstest(ps, "uniform").pvalue > 0.01
    assert np.mean(np.array(ps) <= 0.1) <= 0.25


def test_a_feature_missing_from_a_half_is_named():
    labels = LABELS.copy()
    labels[:, FEATURES.index("red")] = False
    with pytest.raises(ValueError, match="'red'"):
        encoding_geometry(_planted(0), labels, FEATURES, IMAGE_OF_OBJECT, n_null=5)
