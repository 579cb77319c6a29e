"""The sanity table's sharing rows: the overlap's correlations, trained against its twin."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from vlmbinding.analysis.sharing_stage import SHARING_COLUMNS, sharing_correlation_table
from vlmbinding.controls.sanity import SANITY_COLUMNS
from vlmbinding.controls.sharing_sanity import sharing_sanity_rows
from vlmbinding.data.vocab import Vocabulary

VOCAB = Vocabulary()
KINDS = VOCAB.feature_kinds
PAIRS = list(itertools.combinations(VOCAB.features, 2))


def model(seed: int, effect: float, pixels_d: np.ndarray) -> dict:
    """A model's sharing tables, its D and M related to the overlap z by `effect`."""
    rng = np.random.default_rng(seed)
    f = {name: rng.normal() for name in VOCAB.features}
    z = np.array([f[a] + f[b] for a, b in PAIRS]) + 0.5 * rng.normal(size=len(PAIRS))
    pairs = pd.DataFrame({"f1": [a for a, _ in PAIRS], "f2": [b for _, b in PAIRS]})
    sharing = pairs.assign(
        measure="overlap",
        basis="neurons",
        layers="0",
        value=5 + 2 * z,
        null_mean=5.0,
        null_sd=2.0,
        z=z,
        p=0.5,
    )[SHARING_COLUMNS]
    d = effect * z + pixels_d + rng.normal(size=len(z))
    sep = pairs.assign(space="full", D=d, M=-d)
    corr = sharing_correlation_table(sharing, sep, KINDS, n_boot=200, n_perm=99, seed=0)
    return {"sharing": sharing, "separability": sep, "sharing_correlation": corr}


def test_a_trained_relation_survives_and_the_twin_has_none():
    pixels_d = np.random.default_rng(9).normal(size=len(PAIRS))
    trained, random = model(1, 2.0, pixels_d), model(2, 0.0, pixels_d)
    trained["pixel_separability"] = trained["separability"].assign(D=pixels_d, M=-pixels_d)
    rows = sharing_sanity_rows(trained, random, KINDS, n_boot=200, seed=0)
    assert list(rows.columns) == SANITY_COLUMNS and len(rows) == 4
    d_all = rows[rows["statistic"] == "r(overlap z, D), all pairs"].iloc[0]
    assert d_all["trained"] > 0.6 and abs(d_all["random"]) < 0.4
    assert d_all["difference_ci_low"] > 0 and d_all["survives"]
    assert np.isfinite(rows["pixels"]).all() and rows["unit"].eq("features").all()


def test_without_a_pixel_baseline_the_pixel_columns_are_empty():
    zero = np.zeros(len(PAIRS))
    rows = sharing_sanity_rows(model(1, 0.0, zero), model(2, 0.0, zero), KINDS, n_boot=100)
    assert rows["pixels"].isna().all()
    assert not rows["survives"].any()
