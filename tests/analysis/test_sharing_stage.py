"""The sharing stage's tables: the contract of sharing.parquet, its correlations, bad input."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis.sharing_stage import (
    SHARING_COLUMNS,
    SHARING_CORRELATION_COLUMNS,
    check_sharing,
    combine_sharing,
    layers_label,
    object_counts,
    pool_activations,
    sharing_correlation_table,
    sharing_table,
    stage_sharing_table,
)
from vlmbinding.data.toyshapes import sample_scenes
from vlmbinding.data.vocab import Vocabulary, presence_matrix

VOCAB = Vocabulary()
KINDS = VOCAB.feature_kinds
PAIRS = list(itertools.combinations(VOCAB.features, 2))


@pytest.fixture(scope="module")
def scenes():
    """300 images of 1-5 objects (dataset seed 0): objects, ids, presence, counts."""
    objects = sample_scenes(VOCAB, [1, 2, 3, 4, 5], 60, seed=0)
    ids = list(dict.fromkeys(objects["image_id"]))
    return objects, ids, presence_matrix(objects, ids, VOCAB), object_counts(objects, ids)


@pytest.fixture(scope="module")
def table(scenes):
    objects, ids, presence, counts = scenes
    rng = np.random.default_rng(0)
    col = {f: j for j, f in enumerate(VOCAB.features)}
    acts = rng.standard_normal((len(ids), 400))
    both = presence[:, col["red"]].astype(float) + presence[:, col["square"]]
    acts[:, :40] += 1.5 * both[:, None]  # 40 neurons for red and square
    return sharing_table(
        acts,
        presence,
        VOCAB.features,
        counts,
        layers=layers_label([2, 3]),
        objects=objects,
        image_ids=ids,
        colors=VOCAB.colors,
        shapes=VOCAB.shapes,
        n_null=49,
    )


def test_the_table_has_the_contract_columns_and_no_missing_value(table):
    assert list(table.columns) == SHARING_COLUMNS
    assert set(table["measure"]) == {"overlap", "conjunctive", "separate"}
    assert (table["basis"] == "neurons").all() and (table["layers"] == "2,3").all()
    assert (table["measure"] == "overlap").sum() == len(PAIRS)
    assert not table[["value", "z", "p"]].isna().any().any()
    assert table["p"].between(0, 1).all()


def test_conjunctive_and_separate_split_the_overlap_of_each_colour_shape_pair(table):
    overlap = table[table["measure"] == "overlap"].set_index(["f1", "f2"])["value"]
    coding = table[table["measure"] != "overlap"].groupby(["f1", "f2"])["value"].sum()
    assert len(coding) == len(VOCAB.colors) * len(VOCAB.shapes)
    for (c, s), total in coding.items():
        key = (c, s) if (c, s) in overlap.index else (s, c)
        assert overlap[key] == total


def test_the_planted_pair_stands_out(table):
    overlap = table[table["measure"] == "overlap"]
    planted = overlap["f1"].isin(["red", "square"]) & overlap["f2"].isin(["red", "square"])
    assert overlap.loc[planted, "z"].item() > 5 and overlap.loc[planted, "p"].item() < 0.05
    assert overlap.loc[~planted, "z"].max() < 4


def test_a_nan_row_is_an_error_naming_the_measure_and_pair(table):
    bad = table.copy()
    bad.loc[3, "z"] = np.nan
    with pytest.raises(ValueError, match=r"NaN value, z or p.*overlap"):
        check_sharing(bad)
    with pytest.raises(ValueError, match="basis"):
        check_sharing(table.assign(basis="pixels"))
    with pytest.raises(ValueError, match="lacks the column"):
        check_sharing(table.drop(columns="layers"))


def test_the_pool_puts_blocks_side_by_side_and_names_a_bad_layer():
    blocks = {1: np.zeros((5, 3)), 4: np.ones((5, 2))}
    pool = pool_activations(blocks.__getitem__, [4, 1])
    assert pool.shape == (5, 5) and pool.dtype == np.float32 and pool[:, :2].all()
    blocks[1][0, 0] = np.nan
    with pytest.raises(ValueError, match="layer 1"):
        pool_activations(blocks.__getitem__, [4, 1])
    with pytest.raises(ValueError, match="analysis.layers"):
        pool_activations(blocks.__getitem__, [])


def test_object_counts_follow_the_image_order_and_name_a_missing_image():
    objects = pd.DataFrame({"image_id": ["a", "b", "b", "c", "c", "c"]})
    assert object_counts(objects, ["c", "a", "b"]).tolist() == [3, 1, 2]
    with pytest.raises(ValueError, match="'d'"):
        object_counts(objects, ["a", "d"])


def test_too_few_images_is_an_error_not_a_nan_table(scenes):
    objects, ids, presence, counts = scenes
    acts = np.random.default_rng(0).standard_normal((20, 50))
    spread = np.arange(0, len(ids), len(ids) // 20)[:20]  # all object counts
    with pytest.raises(ValueError, match="too few"):
        sharing_table(
            acts, presence[spread], VOCAB.features, counts[spread], layers="0", conjunctions=False
        )
    with pytest.raises(ValueError, match=r"no image has feature\(s\) \['square'"):
        sharing_table(
            acts, presence[:20], VOCAB.features, counts[:20], layers="0", conjunctions=False
        )


def test_the_rules_call_is_the_sharing_table_with_the_stage_settings(scenes, table):
    objects, ids, presence, counts = scenes
    rng = np.random.default_rng(0)
    col = {f: j for j, f in enumerate(VOCAB.features)}
    acts = rng.standard_normal((len(ids), 400))
    both = presence[:, col["red"]].astype(float) + presence[:, col["square"]]
    acts[:, :40] += 1.5 * both[:, None]
    sharing = {"n_null": 49, "seed": 0, "decorrelate": True, "conjunctions": True}
    again = stage_sharing_table(
        acts, presence, VOCAB, objects, ids, layers=[2, 3], basis="neurons", sharing=sharing,
        m=None, context="sharing (toy, layers [2, 3])",
    )  # fmt: skip
    pd.testing.assert_frame_equal(again, table)
    with pytest.raises(ValueError, match=r"^sharing \(toy, layers \[0\]\): .*no image has"):
        stage_sharing_table(
            acts[:20], presence[:20], VOCAB, objects, ids[:20], layers=[0], basis="sae",
            sharing={**sharing, "conjunctions": False}, m=None,
            context="sharing (toy, layers [0])",
        )  # fmt: skip


def synthetic(seed: int, effect: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A sharing table (overlap over all pairs, conjunctive over colour x shape), D and M
    related to the overlap's z by `effect` through feature effects, and binding accuracy."""
    rng = np.random.default_rng(seed)
    f = {name: rng.normal() for name in VOCAB.features}
    latent = np.array([f[a] + f[b] for a, b in PAIRS])
    pairs = pd.DataFrame({"f1": [a for a, _ in PAIRS], "f2": [b for _, b in PAIRS]})
    z = latent + 0.5 * rng.normal(size=len(PAIRS)) + rng.normal(size=len(PAIRS))
    base = pairs.assign(
        basis="neurons", layers="0,1", null_mean=5.0, null_sd=2.0, p=0.5, z=z, value=5 + 2 * z
    )
    cross = base["f1"].map(KINDS).isin(["color", "shape"]) & base["f2"].map(KINDS).isin(
        ["color", "shape"]
    )
    cross &= base["f1"].map(KINDS) != base["f2"].map(KINDS)
    sharing = pd.concat(
        [base.assign(measure="overlap"), base[cross].assign(measure="conjunctive")],
        ignore_index=True,
    )[SHARING_COLUMNS]
    d = effect * z + rng.normal(size=len(z))
    sep = pd.concat(
        [pairs.assign(space=s, D=d, M=-d + 0.5 * rng.normal(size=len(z))) for s in ("full",)]
    )
    same = pairs["f1"].map(KINDS) == pairs["f2"].map(KINDS)
    same &= pairs["f1"].map(KINDS) != "position"
    binding = pairs[same].assign(accuracy=rng.random(same.sum()))
    return sharing, sep, binding


def test_correlations_follow_the_contract_and_find_a_planted_relation():
    sharing, sep, binding = synthetic(0, effect=1.5)
    table = sharing_correlation_table(
        sharing, sep, KINDS, per_pair=binding, n_boot=100, n_perm=99, seed=0
    )
    assert list(table.columns) == SHARING_CORRELATION_COLUMNS
    overlap_d = table.query("measure == 'overlap' and score == 'z' and metric == 'D'")
    row = overlap_d[overlap_d["subset"] == "all"].iloc[0]
    assert row["n_pairs"] == len(PAIRS) and row["mantel_r"] > 0.6 and row["mantel_p"] < 0.05
    assert row["feature_ci_low"] > 0
    # colour x shape only: 30 pairs, features permuted within their kind, no binding rows
    conj = table[table["measure"] == "conjunctive"]
    assert (conj["n_pairs"] == 30).all() and "binding" not in set(conj["space"])
    assert "binding" in set(table.loc[table["measure"] == "overlap", "space"])
    assert table["additive_r2"].between(0, 1).all()
    assert set(table["score"]) == {"value", "z"}


def test_an_all_equal_measure_is_logged_not_silent(caplog):
    sharing, sep, _ = synthetic(0, effect=1.0)
    flat = sharing[sharing["measure"] == "overlap"].assign(z=0.0, value=3)
    with caplog.at_level(logging.WARNING):
        table = sharing_correlation_table(flat, sep, KINDS, n_boot=100, n_perm=99)
    assert table["mantel_r"].isna().all() and "constant column" in caplog.text
    assert (table["additive_r2"] == 1).all()


def test_gathering_stacks_the_parts_and_refuses_a_row_measured_twice(table):
    neurons = table[table["measure"] == "overlap"]
    sae = neurons.assign(basis="sae")
    both = combine_sharing({"neurons.parquet": neurons, "sae.parquet": sae})
    assert len(both) == 2 * len(neurons) and set(both["basis"]) == {"neurons", "sae"}
    with pytest.raises(ValueError, match=r"more than one part: \['a', 'b'\]"):
        combine_sharing({"a": neurons, "b": neurons.iloc[:3]})


def test_a_per_layer_measure_gets_one_row_set_per_block():
    sharing, sep, _ = synthetic(0, effect=1.5)
    overlap = sharing[sharing["measure"] == "overlap"]
    per_layer = pd.concat(
        [overlap.assign(measure="interference", layers=str(b)) for b in (0, 1)], ignore_index=True
    )
    table = sharing_correlation_table(
        pd.concat([overlap, per_layer], ignore_index=True), sep, KINDS, n_boot=50, n_perm=49
    )
    assert list(table.columns) == SHARING_CORRELATION_COLUMNS
    counts = table.groupby(["measure", "layers"]).size()
    assert (
        counts[("overlap", "0,1")] == counts[("interference", "0")] == counts[("interference", "1")]
    )
