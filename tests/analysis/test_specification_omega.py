"""The specification curve's omega measure: the geometry's neuron sharing z per layer pool.

Wiring: a one-block pool's z is the sharing stage's (geometry_part) for that block; rows
carry the choices that do not apply as constants; the main pool is marked. Calibration:
structure-free patch tokens and an unrelated D give a uniform joint p of the median r over
seeds. Power: D that follows how many neurons two features truly share is found.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from test_geometry_stage import GRID, SIZE, _objects

from vlmbinding.analysis import specification_joint as sj
from vlmbinding.analysis.geometry import object_labels
from vlmbinding.analysis.geometry_stage import (
    geometry_part,
    image_sizes,
    object_image_rows,
    object_masks,
)
from vlmbinding.analysis.specification_omega import OMEGA_SPEC_COLUMNS, omega_grid
from vlmbinding.analysis.specification_overlap import overlap_specification_table
from vlmbinding.data.vocab import Vocabulary, all_pairs

VOCAB = Vocabulary()
FEATURES = VOCAB.features
KINDS = VOCAB.feature_kinds
POOLS = {"all": [0, 1], "third-1": [0], "third-2": [1]}
SETTINGS = {"n_null": 19, "n_bins": 4, "seed": 0}


def _planted(objects, n_layers=2, n_units=40, per_feature=8, signal=1.0, seed=0):
    """(ids, masks, layers [image, patch, unit], shared [F, F]): every feature writes on its
    own random `per_feature` of the units (features overlap by chance, so how many units
    two features share varies over pairs and is no sum of per-feature terms); noise and a
    fixed offset per patch position everywhere. signal 0: structure-free tokens."""
    rng = np.random.default_rng(seed)
    ids = list(dict.fromkeys(objects["image_id"]))
    masks = object_masks(objects, image_sizes(pd.DataFrame({"image_id": ids}), *SIZE), True, GRID)
    rows = object_image_rows(objects, ids)
    labels = object_labels(objects, FEATURES).astype(float)
    member = np.zeros((len(FEATURES), n_units))
    for j in range(len(FEATURES)):
        member[j, rng.choice(n_units, per_feature, replace=False)] = 1
    shared = member @ member.T
    layers = []
    for _ in range(n_layers):
        directions = signal * member * rng.choice([-1.0, 1.0], size=member.shape)
        obj = labels @ directions
        acts = rng.standard_normal((len(ids), GRID[0] * GRID[1], n_units))
        acts += 2.0 * rng.standard_normal((1, GRID[0] * GRID[1], n_units))
        for o, row in enumerate(rows):
            acts[row, masks[o]] += obj[o]
        layers.append(acts.astype(np.float32))
    return ids, masks, layers, shared


def _separability(d_of_pair: dict) -> pd.DataFrame:
    """D (and M = -D) of every pair from {(f1, f2): D}."""
    pairs = all_pairs(FEATURES)
    d = np.array([d_of_pair[(a, b)] for a, b in pairs])
    return pd.DataFrame(
        {"f1": [a for a, _ in pairs], "f2": [b for _, b in pairs], "space": "full"}
    ).assign(D=d, M=-d)


def _joint(grid, sep, seed):
    specs, a, b = overlap_specification_table(
        grid, sep, KINDS, spaces=["full"], subsets=["all"], metrics=["D"],
        n_boot=100, n_perm=99, seed=seed, measure="omega",
    )  # fmt: skip
    return specs, sj.joint_summary(specs, a, b, KINDS, n_perm=99, seed=seed).iloc[0]


@pytest.fixture(scope="module")
def objects():
    return _objects(8)  # 40 images of 1-5 objects


def test_a_one_block_pool_is_the_sharing_stages_omega_of_that_block(objects):
    ids, masks, layers, _ = _planted(objects)
    grid = omega_grid(layers.__getitem__, POOLS, objects, ids, FEATURES, masks, **SETTINGS)
    assert list(grid.columns) == OMEGA_SPEC_COLUMNS
    assert set(grid["layers"]) == set(POOLS) and len(grid) == len(POOLS) * 120
    assert (grid["reduce"] == "mean").all() and (grid["tokens"] == "box").all()
    part = geometry_part(layers.__getitem__, [1], objects, ids, FEATURES, masks, **SETTINGS)
    omega = part[part["measure"] == "neuron_sharing"].set_index(["f1", "f2"])
    mine = grid[grid["layers"] == "third-2"].set_index(["f1", "f2"])
    np.testing.assert_allclose(mine["z"], omega.loc[mine.index, "z"], rtol=1e-12)
    np.testing.assert_allclose(mine["value"], omega.loc[mine.index, "value"], rtol=1e-12)


def test_the_rows_carry_the_choices_that_do_not_apply_and_the_main_pool(objects):
    ids, masks, layers, shared = _planted(objects)
    grid = omega_grid(layers.__getitem__, POOLS, objects, ids, FEATURES, masks, **SETTINGS)
    idx = FEATURES.index
    sep = _separability({(a, b): -shared[idx(a), idx(b)] for a, b in all_pairs(FEATURES)})
    main = {"blocks": [0, 1], "reduce": "mean", "tokens": "box"}
    specs, a, b = overlap_specification_table(
        grid, sep, KINDS, n_boot=100, n_perm=99, main=main, measure="omega"
    )
    assert (specs["measure"] == "omega").all() and len(specs) == len(a) == len(b)
    assert (specs[["top_k", "n_neurons"]] == 0).all().all()
    assert set(specs.loc[specs["main"], "layers"]) == {"all"} and specs["main"].sum() == 8
    # omega's z goes with the units two features truly share: D = -shared
    full = specs[specs["space"].eq("full") & specs["metric"].eq("D")]
    assert (full["pearson_r"] < -0.3).all() and (full["mantel_p"] < 0.05).all()


def test_too_few_objects_with_a_feature_is_an_error_naming_it(objects):
    ids, masks, layers, _ = _planted(objects)
    few = objects[~(objects["color"].eq("red") & (objects.index % 5 > 0))]
    with pytest.raises(ValueError, match="'red'"):
        omega_grid(layers.__getitem__, POOLS, few, ids, FEATURES, masks[few.index], **SETTINGS)


def test_the_joint_p_is_calibrated_on_structure_free_tokens(objects):
    median_p, share_p = [], []
    for seed in range(30):
        ids, masks, layers, _ = _planted(objects, n_units=24, signal=0.0, seed=seed)
        grid = omega_grid(layers.__getitem__, POOLS, objects, ids, FEATURES, masks,
                          n_null=19, n_bins=4, seed=0)  # fmt: skip
        rng = np.random.default_rng([seed, 7])
        noise = {p: rng.normal() for p in all_pairs(FEATURES)}
        _, out = _joint(grid, _separability(noise), seed)
        median_p.append(out["joint_p_median"])
        share_p.append(out["joint_p_share"])
    assert sps.kstest(median_p, "uniform").pvalue > 0.01
    for alpha in (0.1, 0.2):  # the share is discrete: valid, perhaps conservative
        assert np.mean(np.array(share_p) <= alpha) <= alpha + 0.1


def test_a_planted_relation_to_the_shared_neurons_is_found(objects):
    found = []
    for seed in range(5):
        ids, masks, layers, shared = _planted(objects, seed=seed)
        grid = omega_grid(layers.__getitem__, POOLS, objects, ids, FEATURES, masks,
                          n_null=19, n_bins=4, seed=0)  # fmt: skip
        rng = np.random.default_rng([seed, 7])
        noise = {p: rng.normal() for p in all_pairs(FEATURES)}
        idx = FEATURES.index
        d = {(a, b): -shared[idx(a), idx(b)] + 0.5 * v for (a, b), v in noise.items()}
        sep = _separability(d)
        _, out = _joint(grid, sep, seed)
        found.append(out["joint_p_median"] < 0.05)
    assert np.mean(found) >= 0.8
