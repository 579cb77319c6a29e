"""The specification curve's overlap measure: wiring of the overlap z into the grid, the
summary, the joint test and the figure (the statistics are the ones S's specifications use,
tested in test_specification.py and test_specification_joint.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_specification import _synthetic

from vlmbinding.analysis import correlation as stats
from vlmbinding.analysis import specification_joint as sj
from vlmbinding.analysis.neurons import reduce_tokens
from vlmbinding.analysis.separability import separability_table
from vlmbinding.analysis.sharing import neuron_overlap
from vlmbinding.analysis.specification import (
    SPECIFICATION_COLUMNS,
    correlate_subset,
    layer_affinity_grid,
    specification_summary,
    specification_table,
    subset_pairs,
)
from vlmbinding.analysis.specification_overlap import overlap_grid, overlap_specification_table
from vlmbinding.data.vocab import Vocabulary, all_pairs

KINDS = Vocabulary().feature_kinds
FEATS = list(KINDS)
WIDTH, DEPTH = 12, 3
POOLS = {"all": [0, 1, 2], "third-3": [2]}
SETTINGS = {"m": 4, "n_null": 49, "seed": 0, "decorrelate": True}


@pytest.fixture(scope="module")
def data():
    presence, acts, emb = _synthetic(seed=3, n_images=60, depth=DEPTH, width=WIDTH)
    n_objects = presence[:, :3].sum(1) + 1

    def read(layer, how, tokens):
        return reduce_tokens(acts[:, :, layer * WIDTH : (layer + 1) * WIDTH], how, tokens, 1)

    grid = overlap_grid(read, presence, FEATS, n_objects, POOLS, ["mean", "max"], ["all"],
                        **SETTINGS)  # fmt: skip
    sep = separability_table(emb, presence, FEATS, all_pairs(FEATS))
    return presence, acts, n_objects, read, grid, sep


def test_each_specifications_z_is_the_sharing_stages_overlap_on_that_pool(data):
    presence, _, n_objects, read, grid, _ = data
    assert len(grid) == 2 * len(POOLS) * len(all_pairs(FEATS))
    pool = np.concatenate([read(b, "max", "all") for b in POOLS["all"]], axis=1)
    direct = neuron_overlap(pool, presence, FEATS, n_objects, **SETTINGS)
    got = grid[grid["layers"].eq("all") & grid["reduce"].eq("max")]
    np.testing.assert_allclose(got["z"].to_numpy(), direct["z"].to_numpy())
    assert set(grid["layer_indices"]) == {"0,1,2", "2"}


def test_a_pool_smaller_than_m_names_the_key_and_the_pool(data):
    presence, _, n_objects, read, _, _ = data
    with pytest.raises(ValueError, match="robustness.measure overlap, layer pool 'third-3'"):
        overlap_grid(read, presence, FEATS, n_objects, {"third-3": [2]}, ["mean"], ["all"],
                     m=WIDTH + 1, n_null=19)  # fmt: skip


def test_overlap_specifications_correlate_the_z_as_s_is_correlated(data):
    *_, grid, sep = data
    main = {"top_k": 10, "n_neurons": 50, "reduce": "max", "tokens": "all", "blocks": [2]}
    table, a, b = overlap_specification_table(grid, sep, KINDS, n_boot=100, n_perm=99, main=main)
    assert list(table.columns) == SPECIFICATION_COLUMNS
    assert table["measure"].eq("overlap").all() and table[["top_k", "n_neurons"]].eq(0).all().all()
    assert len(table) == 2 * len(POOLS) * 2 * 2 * 2 and a.shape == (
        len(table),
        len(FEATS),
        len(FEATS),
    )
    # the main analysis: the sharing stage's pool, reduction and tokens, every space/subset/metric
    marked = table[table["main"]]
    assert len(marked) == 8 and set(marked["layers"]) == {"third-3"}
    assert set(marked["reduce"]) == {"max"}
    # the wiring: the row's r is correlate_subset of the z with the metric
    row = table[table["layers"].eq("all") & table["reduce"].eq("mean")].iloc[0]
    z = grid[grid["layers"].eq("all") & grid["reduce"].eq("mean")]
    joined = stats.attach_scores(z[["f1", "f2", "z"]].rename(columns={"z": "S"}), sep)
    pairs = subset_pairs(joined, row["metric"], row["space"], row["subset"], KINDS)
    want = correlate_subset(pairs, row["metric"], KINDS, 100, 99, 0)
    assert row["pearson_r"] == pytest.approx(want["pearson_r"])
    assert row["mantel_p"] == pytest.approx(want["mantel_p"])
    r = sj.permuted_correlations(a, b, np.empty((0, len(FEATS)), dtype=int))[:, 0]
    np.testing.assert_allclose(r, table["pearson_r"], atol=1e-12)


def test_each_measure_is_summarised_and_jointly_tested_on_its_own(data):
    presence, acts, _, _, grid, sep = data
    s_grid = layer_affinity_grid(0, acts[:, :, :WIDTH], presence, FEATS, [10], ["mean"], ["all"])
    s_table, sa, sb = specification_table(
        s_grid, sep, KINDS, {"all": [0]}, [8], n_boot=100, n_perm=99, keep_matrices=True
    )
    o_table, oa, ob = overlap_specification_table(grid, sep, KINDS, n_boot=100, n_perm=99)
    both = pd.concat([s_table, o_table], ignore_index=True)
    a, b = np.concatenate([sa, oa]), np.concatenate([sb, ob])
    joint = sj.joint_summary(both, a, b, KINDS, 49, 0)
    assert list(zip(joint["measure"], joint["metric"])) == [
        ("S", "D"),
        ("S", "M"),
        ("overlap", "D"),
        ("overlap", "M"),
    ]
    # valid across measures: S's test is the one it has without the overlap's specifications
    alone = sj.joint_summary(s_table, sa, sb, KINDS, 49, 0)
    pd.testing.assert_frame_equal(joint.iloc[:2].reset_index(drop=True), alone)
    summary = specification_summary(both)
    assert list(summary["measure"]) == ["S", "S", "overlap", "overlap"]
    assert summary.set_index(["measure", "metric"]).loc[("overlap", "M"), "n_specifications"] == (
        o_table["metric"].eq("M").sum()
    )


def test_the_curve_has_a_column_per_measure_and_metric(data, tmp_path):
    from vlmbinding.report import figures

    *_, grid, sep = data
    table, _, _ = overlap_specification_table(grid, sep, KINDS, n_boot=100, n_perm=99)
    s_rows = table.assign(measure="S", top_k=10, n_neurons=8)
    specs = pd.concat([s_rows, table], ignore_index=True)
    fig = figures.specification_curve(specs, specification_summary(specs))
    figures.save_figure(fig, tmp_path / "curve.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("overlap z vs") for t in titles) and any(
        t.startswith("S vs") for t in titles
    )
