"""The specification curve: the grid's pieces; every cell equals a single-specification run."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis import correlation as stats
from vlmbinding.analysis.neurons import (
    neuron_table,
    select_feature_neurons,
    superposition_scores,
    top_k_images,
)
from vlmbinding.analysis.separability import separability_table
from vlmbinding.analysis.specification import (
    CHOICES,
    SPECIFICATION_COLUMNS,
    layer_affinity_grid,
    layer_pools,
    neuron_counts,
    specification_summary,
    specification_table,
    usable_top_ks,
)
from vlmbinding.data.vocab import Vocabulary, all_pairs

VOCAB = Vocabulary()
FEATURES = VOCAB.features


def _synthetic(seed=0, n_images=40, tokens=5, depth=3, width=12, dim=6):
    """Presence, per-token activations with planted feature neurons, and embeddings."""
    rng = np.random.default_rng(seed)
    presence = np.zeros((n_images, len(FEATURES)), dtype=bool)
    kinds = [VOCAB.shapes, VOCAB.colors, VOCAB.positions]
    offset = 0
    for values in kinds:
        for i in range(n_images):
            presence[
                i, offset + rng.choice(len(values), size=rng.integers(1, 3), replace=False)
            ] = 1
        offset += len(values)
    # float16 like the store, with repeats, so ties in the sort matter
    acts = rng.normal(size=(n_images, tokens, depth * width)).round(1).astype(np.float16)
    for unit in range(0, depth * width, 3):
        acts[:, :, unit] += (2 * presence[:, unit % len(FEATURES)])[:, None].astype(np.float16)
    emb = rng.normal(size=(n_images, dim)) + presence[:, :dim] * 1.5
    return presence, acts, emb


def test_layer_pools_name_and_dedupe_blocks():
    assert layer_pools(["last-10", "all", "thirds"], 24) == {
        "last-10": list(range(14, 24)),
        "all": list(range(24)),
        "third-1": list(range(0, 8)),
        "third-2": list(range(8, 16)),
        "third-3": list(range(16, 24)),
    }
    # a 4-block model: last-10 is all blocks, kept once; thirds of 4 blocks are 2, 1, 1
    assert layer_pools(["last-10", "all", "thirds"], 4) == {
        "last-10": [0, 1, 2, 3],
        "third-1": [0, 1],
        "third-2": [2],
        "third-3": [3],
    }
    # two blocks: the empty third is left out, the others equal last-1 and so on
    assert layer_pools(["thirds"], 2) == {"third-1": [0], "third-2": [1]}
    with pytest.raises(ValueError, match="robustness.layers"):
        layer_pools(["first-3"], 4)


def test_top_k_larger_than_the_images_is_dropped_with_a_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="vlmbinding.analysis.specification"):
        assert usable_top_ks([100, 10, 30], 50) == [10, 30]
    assert "top_k [100] dropped" in caplog.text
    with pytest.raises(ValueError, match="robustness.top_k"):
        usable_top_ks([100], 50)


def test_neuron_counts_are_capped_by_the_pool_and_not_repeated():
    assert neuron_counts([100, 1000], 5000) == [100, 1000]
    assert neuron_counts([100, 1000], 512) == [100, 512]
    assert neuron_counts([1000, 100], 64) == [64]


@pytest.mark.parametrize("how", ["mean", "max"])
@pytest.mark.parametrize("tokens", ["all", "patches"])
def test_every_top_k_prefix_equals_a_separate_top_k_computation(how, tokens):
    presence, acts, _ = _synthetic()
    width = 12
    layer = 1
    block = acts[:, :, layer * width : (layer + 1) * width]
    grid = layer_affinity_grid(layer, block, presence, FEATURES, [3, 10, 25, 40], [how], [tokens])
    ids = [f"img{i}" for i in range(len(presence))]
    for k in (3, 10, 25, 40):
        single = neuron_table(layer, block, presence, FEATURES, ids, k, how=how, tokens=tokens)
        cell = grid[(grid["top_k"] == k)].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            cell[["layer", "unit", *FEATURES, "entropy"]],
            single[["layer", "unit", *FEATURES, "entropy"]],
        )
    # and the prefix is what a fresh stable sort gives
    from vlmbinding.analysis.neurons import reduce_tokens

    reduced = reduce_tokens(block, how, tokens)
    np.testing.assert_array_equal(top_k_images(reduced, 40)[:7], top_k_images(reduced, 7))


def _direct_single_run(presence, acts, emb, width, top_k, how, tokens, blocks, n, n_boot=100):
    """The single-specification workflow, by the same library calls as its rules."""
    ids = [f"img{i}" for i in range(len(presence))]
    neurons = pd.concat(
        [
            neuron_table(
                b,
                acts[:, :, b * width : (b + 1) * width],
                presence,
                FEATURES,
                ids,
                top_k,
                how,
                tokens,
            )
            for b in blocks
        ],
        ignore_index=True,
    )
    selected = select_feature_neurons(neurons, n)
    scores = superposition_scores(selected, FEATURES, all_pairs(FEATURES), 0.3)
    separability = separability_table(emb, presence, FEATURES, all_pairs(FEATURES))
    correlation = stats.correlation_table(
        scores, separability, VOCAB.feature_kinds, n_boot=n_boot, n_perm=n_boot - 1, seed=3
    )
    return scores, separability, correlation


def _cells_equal_single_runs(top_ks, reduces, tokens, pools, n_boot, checked_cell):
    """specification_table on a 3-block store against the single-specification run of the
    cells that `checked_cell(top_k, reduce, tokens, layers, n)` picks (plus the first)."""
    presence, acts, emb = _synthetic(seed=1)
    width, depth = 12, 3
    grid = pd.concat(
        [
            layer_affinity_grid(
                b, acts[:, :, b * width : (b + 1) * width], presence, FEATURES, top_ks, reduces,
                tokens,
            )
            for b in range(depth)
        ],
        ignore_index=True,
    )  # fmt: skip
    separability = separability_table(emb, presence, FEATURES, all_pairs(FEATURES))
    specs = specification_table(
        grid, separability, VOCAB.feature_kinds, pools, [10, 1000], n_boot=n_boot,
        n_perm=n_boot - 1, seed=3,
    )  # fmt: skip
    assert list(specs.columns) == SPECIFICATION_COLUMNS
    # top_k x reduce x tokens x pools x n (2, or 1 where 1000 caps to the pool's 12 or 36
    # neurons and 10 stays) x 2 spaces x 2 subsets x 2 metrics
    assert not specs.duplicated([*CHOICES, "metric"]).any()
    assert set(specs["top_k"]) == set(top_ks)
    assert set(specs["layers"]) == set(pools)
    assert set(specs.loc[specs["layers"] == "third-1", "n_neurons"]) == {10, 12}
    assert set(specs.loc[specs["layers"] == "all", "n_neurons"]) == {10, 36}
    checked = 0
    for (top_k, how, tok, layers, n), cell in specs.groupby(
        ["top_k", "reduce", "tokens", "layers", "n_neurons"]
    ):
        if checked and not checked_cell(top_k, how, tok, layers, n):
            continue  # a sample of the grid keeps the test fast; every kind of choice is hit
        checked += 1
        _, _, corr = _direct_single_run(
            presence, acts, emb, width, top_k, how, tok, pools[layers], n, n_boot
        )
        merged = cell.merge(corr, on=["metric", "space", "subset"], suffixes=("", "_single"))
        assert len(merged) == 8
        np.testing.assert_allclose(merged["pearson_r"], merged["pearson_r_single"], atol=1e-12)
        assert (merged["n_pairs"] == merged["n_pairs_single"]).all()
        for col in ("feature_ci_low", "feature_ci_high", "mantel_p"):
            if f"{col}_single" in merged:
                np.testing.assert_allclose(merged[col], merged[f"{col}_single"], atol=1e-12)
    return checked


def test_each_cell_equals_the_single_specification_run():
    """Fast: both top_k, both reductions, two pools, both n; one token choice (the token
    choices' prefixes are checked above, the full grid in the slow test below)."""

    def sample(top_k, how, tok, layers, n):
        return (how == "mean") == (layers == "all") and n == 10

    pools = {"third-1": [0], "all": [0, 1, 2]}
    grid = ([5, 12], ["mean", "max"], ["patches"], pools)
    assert _cells_equal_single_runs(*grid, n_boot=30, checked_cell=sample) >= 4


@pytest.mark.slow
def test_each_cell_of_the_full_grid_equals_the_single_specification_run():
    def sample(top_k, how, tok, layers, n):
        return (how, tok) == ("max", "patches") or layers == "third-2"

    pools = layer_pools(["last-2", "all", "thirds"], 3)
    grid = ([5, 12], ["mean", "max"], ["all", "patches"], pools)
    assert _cells_equal_single_runs(*grid, n_boot=100, checked_cell=sample) > 5


def test_the_statistics_of_a_cell_are_dependence_aware_on_its_pairs():
    presence, acts, emb = _synthetic(seed=2)
    width = 12
    grid = layer_affinity_grid(0, acts[:, :, :width], presence, FEATURES, [10], ["mean"], ["all"])
    separability = separability_table(emb, presence, FEATURES, all_pairs(FEATURES))
    specs = specification_table(
        grid, separability, VOCAB.feature_kinds, {"all": [0]}, [8], n_boot=200, n_perm=199, seed=5
    )
    scores, _, _ = _direct_single_run(presence, acts, emb, width, 10, "mean", "all", [0], 8)
    joined = stats.attach_scores(scores, separability)
    row = specs[(specs.metric == "M") & (specs.space == "pca") & (specs.subset == "no_position")]
    pairs = joined[joined.space.eq("pca") & np.isfinite(joined[["S", "M"]]).all(axis=1)]
    pairs = pairs[~pairs.f1.isin(VOCAB.positions) & ~pairs.f2.isin(VOCAB.positions)]
    features = [f for f in FEATURES if f in set(pairs.f1) | set(pairs.f2)]
    expect = stats.dependence_aware(
        stats.pairs_to_matrix(pairs, "S", features),
        stats.pairs_to_matrix(pairs, "M", features),
        200,
        199,
        5,
    )
    assert row["pearson_r"].item() == pytest.approx(expect["r"], abs=1e-12)
    assert row["feature_ci_low"].item() == pytest.approx(expect["feature_ci_low"])
    assert row["feature_ci_high"].item() == pytest.approx(expect["feature_ci_high"])
    assert row["mantel_p"].item() == pytest.approx(expect["mantel_p"])
    assert row["n_pairs"].item() == len(pairs) == expect["n_pairs"]


def test_summary_counts_significant_specifications_of_each_sign():
    specs = pd.DataFrame(
        {
            "metric": ["D"] * 5 + ["M"] * 2,
            "pearson_r": [-0.5, -0.4, 0.3, 0.1, np.nan, 0.2, 0.6],
            "mantel_p": [0.01, 0.2, 0.04, 0.5, np.nan, 0.3, 0.001],
            "feature_ci_low": [-0.8, -0.7, 0.05, -0.2, np.nan, -0.1, 0.3],
            "feature_ci_high": [-0.2, 0.1, 0.5, 0.4, np.nan, 0.5, 0.8],
        }
    )
    s = specification_summary(specs, alpha=0.05).set_index("metric")
    assert s.loc["D", "n_specifications"] == 5
    assert s.loc["D", "share_negative"] == pytest.approx(1 / 5)
    assert s.loc["D", "share_positive"] == pytest.approx(1 / 5)
    assert s.loc["D", "share_ci_below_zero"] == pytest.approx(1 / 5)
    assert s.loc["D", "share_ci_above_zero"] == pytest.approx(1 / 5)
    assert s.loc["D", "median_r"] == pytest.approx(-0.15)
    assert s.loc["M", "share_positive"] == pytest.approx(0.5)
    assert s.loc["M", "share_negative"] == 0


def test_the_specification_curve_figure_draws(tmp_path):
    from vlmbinding.report import figures

    rng = np.random.default_rng(0)
    rows = []
    for top_k in (10, 30):
        for n in (100, 1000):
            for layers in ("last-10", "all"):
                for metric in ("D", "M"):
                    r = rng.uniform(-0.8, 0.5)
                    rows.append(
                        {
                            "top_k": top_k,
                            "n_neurons": n,
                            "layers": layers,
                            "reduce": "mean",
                            "tokens": "all",
                            "space": "full",
                            "subset": "all",
                            "metric": metric,
                            "pearson_r": r,
                            "feature_ci_low": r - 0.2,
                            "feature_ci_high": r + 0.2,
                            "mantel_p": rng.uniform(),
                            "n_pairs": 120,
                        }  # fmt: skip
                    )
    specs = pd.DataFrame(rows)
    specs["main"] = (specs["top_k"] == 30) & (specs["n_neurons"] == 100) & specs["layers"].eq("all")
    summary = specification_summary(specs).assign(joint_p_share=0.2, joint_p_median=0.03)
    assert summary["main_r"].notna().all()  # the main analysis's full-space r, per metric
    fig = figures.specification_curve(specs, summary)
    figures.save_figure(fig, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 10_000
    assert "joint test" in fig.axes[0].get_title()
    assert "the main analysis" in [t.get_text() for t in fig.legends[0].get_texts()]
