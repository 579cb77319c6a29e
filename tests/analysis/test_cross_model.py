"""Replicates: derived model entries and the random-effects pool per base model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from vlmbinding.analysis.cross_model import (
    fisher_z,
    pool_replicates,
    random_effects,
    z_standard_error,
)
from vlmbinding.workflow.config import validate_config
from vlmbinding.workflow.entries import dataset_dir, expand_replicates, identity, model_entries

SCHEMA = REPO / "config" / "schema.yaml"


def _config(models):
    return validate_config({"models": models}, SCHEMA)


def test_replicates_become_entries_of_their_own_with_base_role_and_seed():
    config = _config(
        [
            {
                "name": "toy",
                "arch": "toy-vit",
                "weights": "toy",
                "replicates": {"seeds": [7, 8, 9]},
            },
            {"name": "other", "arch": "toy-vit", "weights": "toy"},
        ]
    )
    entries = expand_replicates(
        [{**m, "base": m["name"], "role": "trained"} for m in config["models"]], config
    )
    names = [e["name"] for e in entries]
    assert names == ["toy", "toy/replicate-1", "toy/replicate-2", "other"]
    assert [e.get("toy_seed") for e in entries] == [7, 8, 9, None]
    assert [e["base"] for e in entries] == ["toy", "toy", "toy", "other"]
    assert {e["role"] for e in entries} == {"trained"}
    assert all("replicates" not in e for e in entries)
    # the copies do not share nested dicts with each other
    entries[1]["model_cfg"]["x"] = 1
    assert "x" not in entries[2]["model_cfg"]


def test_model_entries_applies_replicates_to_the_validated_config():
    config = _config(
        [{"name": "toy", "arch": "toy-vit", "weights": "toy", "replicates": {"seeds": [0, 1]}}]
    )
    names = [e["name"] for e in model_entries(config)]
    assert names[:2] == ["toy", "toy/replicate-1"]


def test_replicates_of_a_model_the_workflow_does_not_train_are_refused():
    config = _config(
        [{"name": "vit", "arch": "ViT-B-32", "weights": "openai", "replicates": {"seeds": [0, 1]}}]
    )
    with pytest.raises(ValueError, match="models entry 'vit'.*use replicates.dataset_seeds"):
        expand_replicates([{**config["models"][0], "base": "vit", "role": "trained"}], config)


def test_dataset_seeds_replicate_any_model_on_its_own_dataset():
    config = _config(
        [
            {
                "name": "vit",
                "arch": "ViT-B-32",
                "weights": "openai",
                "replicates": {"dataset_seeds": [0, 5, 6]},
            }
        ]
    )
    entries = model_entries(config)
    trained = [e for e in entries if e["role"] == "trained"]
    assert [e["name"] for e in trained] == ["vit", "vit/replicate-1", "vit/replicate-2"]
    assert [e["dataset_seed"] for e in trained] == [0, 5, 6]
    assert all("toy_seed" not in e for e in trained)
    assert [dataset_dir(e, config) for e in trained] == [
        "results/dataset",  # dataset.seed (0): the one dataset
        "results/dataset/seed-5",
        "results/dataset/seed-6",
    ]
    twin = next(e for e in entries if e["role"] == "random")
    assert dataset_dir(twin, config) == "results/dataset"


def test_training_and_dataset_seeds_cross_and_the_twin_uses_replicate_zero_data():
    config = _config(
        [
            {
                "name": "toy",
                "arch": "toy-vit",
                "weights": "toy",
                "replicates": {"seeds": [1, 2], "dataset_seeds": [7, 8]},
            }
        ]
    )
    entries = model_entries(config)
    trained = [e for e in entries if e["role"] == "trained"]
    assert [(e["toy_seed"], e["dataset_seed"]) for e in trained] == [
        (1, 7),
        (1, 8),
        (2, 7),
        (2, 8),
    ]
    assert [e.get("replicate") for e in trained] == [0, 1, 2, 3]
    twin = next(e for e in entries if e["role"] == "random")
    assert twin["dataset_seed"] == 7 and dataset_dir(twin, config) == "results/dataset/seed-7"
    assert "toy_seed" not in twin


def test_dataset_seeds_with_an_external_dataset_and_repeated_seeds_are_refused():
    models = [{"name": "m", "arch": "toy-vit", "weights": "toy", "replicates": {}}]
    config = validate_config(
        {"models": models, "dataset": {"external": {"images": "i", "objects": "o.csv"}}}, SCHEMA
    )
    config["models"][0]["replicates"] = {"dataset_seeds": [1, 2]}
    with pytest.raises(ValueError, match="models entry 'm'.*dataset.external"):
        model_entries(config)
    config = _config(models)
    config["models"][0]["replicates"] = {"dataset_seeds": [1, 1]}  # past the schema
    with pytest.raises(ValueError, match="replicates.dataset_seeds repeat"):
        model_entries(config)


def test_adding_replicates_leaves_the_entrys_own_params_unchanged():
    plain = {"name": "toy", "arch": "toy-vit", "weights": "toy"}
    before = {e["name"]: identity(e, _config([plain])) for e in model_entries(_config([plain]))}
    grown = _config([{**plain, "replicates": {"seeds": [0, 1], "dataset_seeds": [0, 4]}}])
    after = {e["name"]: identity(e, grown) for e in model_entries(grown)}
    assert after["toy"] == before["toy"]  # toy.seed 0 and dataset.seed 0: the same model
    assert after["toy/controls/random"] == before["toy/controls/random"]
    assert after["toy/replicate-1"]["dataset_seed"] == 4  # its own dataset is tracked
    assert "dataset_seed" not in after["toy/replicate-2"]


def test_the_sweep_config_runs_three_replicates_per_width():
    config = validate_config(yaml.safe_load((REPO / "config" / "sweep.yaml").read_text()), SCHEMA)
    entries = [e for e in model_entries(config) if e["role"] == "trained"]
    bases = pd.Series([e["base"] for e in entries]).value_counts()
    assert (bases == 3).all() and len(bases) == 3
    for base in bases.index:
        seeds = [e["toy_seed"] for e in entries if e["base"] == base]
        assert len(set(seeds)) == 3


def test_random_effects_on_hand_made_numbers():
    # z = 0.1, 0.5, 0.9 with variances 0.01, 0.02, 0.04: by hand, w = 100, 50, 25,
    # z_fe = 57.5 / 175, Q = 104/7, C = 175 - 13125/175 = 100, tau2 = (Q - 2)/C = 9/70,
    # I2 = (Q - 2)/Q = 90/104.
    r = np.tanh([0.1, 0.5, 0.9])
    se = np.sqrt([0.01, 0.02, 0.04])
    out = random_effects(r, se)
    assert out["k"] == 3
    assert out["Q"] == pytest.approx(104 / 7)
    assert out["tau2"] == pytest.approx(9 / 70)
    assert out["I2"] == pytest.approx(90 / 104)
    w = 1 / (se**2 + 9 / 70)
    z = (w * [0.1, 0.5, 0.9]).sum() / w.sum()
    half = 1.959963984540054 / np.sqrt(w.sum())
    assert out["r_pooled"] == pytest.approx(np.tanh(z))
    assert out["ci_low"] == pytest.approx(np.tanh(z - half))
    assert out["ci_high"] == pytest.approx(np.tanh(z + half))


def test_agreeing_replicates_have_no_heterogeneity_and_a_narrower_pool():
    out = random_effects([0.3, 0.3, 0.3, 0.3], [0.2] * 4)
    assert out["tau2"] == 0 and out["I2"] == 0
    assert out["r_pooled"] == pytest.approx(0.3)
    assert out["ci_high"] - out["ci_low"] == pytest.approx(
        np.tanh(np.arctanh(0.3) + 1.96 * 0.1) - np.tanh(np.arctanh(0.3) - 1.96 * 0.1), abs=1e-4
    )


def test_one_replicate_keeps_its_own_interval_and_missing_ones_are_left_out():
    out = random_effects([0.4, np.nan], [0.25, 0.3])
    assert out["k"] == 1 and np.isnan(out["I2"])
    assert out["r_pooled"] == pytest.approx(0.4)
    assert out["ci_low"] == pytest.approx(np.tanh(np.arctanh(0.4) - 1.959963984540054 * 0.25))
    assert random_effects([np.nan], [0.1])["k"] == 0


def test_the_standard_error_is_read_off_the_interval_on_the_z_scale():
    z0, se = 0.2, 0.15
    low, high = np.tanh(z0 - 1.959963984540054 * se), np.tanh(z0 + 1.959963984540054 * se)
    assert z_standard_error(low, high) == pytest.approx(se)
    assert np.isfinite(fisher_z(1.0))


def _summary():
    return pd.DataFrame(
        {
            "model": ["toy", "toy/replicate-1", "toy/replicate-2", "toy/controls/random", "b"],
            "base": ["toy", "toy", "toy", "toy", "b"],
            "role": ["trained", "trained", "trained", "random", "trained"],
            "r_D": [-0.4, -0.2, -0.3, 0.9, 0.1],
            "r_D_low": [-0.6, -0.4, -0.5, 0.8, -0.1],
            "r_D_high": [-0.2, 0.0, -0.1, 0.95, 0.3],
            "r_D_feature_low": [-0.8, -0.7, -0.75, 0.5, np.nan],
            "r_D_feature_high": [0.1, 0.3, 0.2, 0.99, np.nan],
            "r_M": [0.2, 0.1, 0.3, 0.0, 0.5],
            "r_M_low": [0.0, -0.1, 0.1, -0.2, 0.3],
            "r_M_high": [0.4, 0.3, 0.5, 0.2, 0.7],
        }
    )


def test_pooling_uses_trained_replicates_and_the_feature_interval_where_given():
    summary = _summary()
    pooled = pool_replicates(summary).set_index(["base", "metric"])
    row = pooled.loc[("toy", "D")]
    assert row["k"] == 3  # the random twin is not a replicate
    assert row["se_source"] == "feature bootstrap"
    trained = summary.iloc[:3]
    se = z_standard_error(trained["r_D_feature_low"], trained["r_D_feature_high"])
    expect = random_effects(trained["r_D"], se)
    assert row["r_pooled"] == pytest.approx(expect["r_pooled"])
    assert row["r_mean"] == pytest.approx(-0.3) and row["r_sd"] == pytest.approx(0.1)
    assert row["r_replicates"] == "-0.400,-0.200,-0.300"
    # no feature interval for M: the pair bootstrap, and said so
    assert pooled.loc[("toy", "M"), "se_source"] == "pair bootstrap"
    assert pooled.loc[("b", "D"), "k"] == 1
    assert pooled.loc[("b", "D"), "se_source"] == "pair bootstrap"


def test_the_replicate_forest_plot_draws(tmp_path):
    from vlmbinding.report import figures

    summary = _summary()
    fig = figures.replicate_forest(summary, pool_replicates(summary))
    figures.save_figure(fig, tmp_path / "forest.png")
    assert (tmp_path / "forest.png").stat().st_size > 10_000


def test_the_pooled_interval_covers_the_common_correlation_as_often_as_advertised():
    # Replicates of one true correlation, each estimated with its own known error on the
    # z scale (the unit is the replicate): the 95% pooled interval covers the truth in about
    # 95% of 400 seeds, and Cochran's Q is chi-square(k - 1), so its p-values are uniform.
    from scipy import stats as st

    true_z, k, covered, q_p = np.arctanh(-0.3), 5, 0, []
    for seed in range(400):
        rng = np.random.default_rng(seed)
        se = rng.uniform(0.1, 0.3, size=k)
        out = random_effects(np.tanh(true_z + rng.normal(0, se)), se)
        covered += out["ci_low"] <= np.tanh(true_z) <= out["ci_high"]
        q_p.append(st.chi2.sf(out["Q"], k - 1))
    assert 0.91 <= covered / 400 <= 0.99
    assert st.kstest(q_p, "uniform").pvalue > 0.01


def test_heterogeneity_between_replicates_is_found():
    # the seeds really differ (between-replicate sd 0.4 on z, own errors 0.1): I2 is high
    rng = np.random.default_rng(0)
    z = np.arctanh(0.2) + rng.normal(0, 0.4, size=12)
    se = np.full(12, 0.1)
    out = random_effects(np.tanh(z + rng.normal(0, se)), se)
    assert out["I2"] > 0.6 and out["tau2"] > 0.05
    # and the pooled interval is wider than the fixed-effect one would be
    assert out["ci_high"] - out["ci_low"] > np.tanh(0.2 + 1.96 * 0.1 / np.sqrt(12)) - np.tanh(
        0.2 - 1.96 * 0.1 / np.sqrt(12)
    )


def test_replicate_means_give_a_t_interval_over_seeds_on_hand_made_numbers():
    from vlmbinding.analysis.cross_model import replicate_means

    summary = pd.DataFrame(
        {
            "model": ["a", "a/replicate-1", "a/replicate-2", "a/controls/random", "b"],
            "base": ["a", "a", "a", "a", "b"],
            "role": ["trained", "trained", "trained", "random", "trained"],
            "binding_accuracy": [0.5, 0.6, 0.7, 0.1, 0.55],
            "median_entropy": [3.0, 3.0, 3.0, 4.0, np.nan],
        }
    )
    out = replicate_means(summary, statistics=("binding_accuracy", "median_entropy"))
    a = out[(out["base"] == "a") & (out["statistic"] == "binding_accuracy")].iloc[0]
    # mean 0.6, sd 0.1, t(0.975, 2) = 4.302653, half width 4.302653 * 0.1 / sqrt(3)
    assert a["k"] == 3 and a["mean"] == pytest.approx(0.6) and a["sd"] == pytest.approx(0.1)
    assert a["ci_high"] - a["mean"] == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-5)
    same = out[(out["base"] == "a") & (out["statistic"] == "median_entropy")].iloc[0]
    assert same["ci_low"] == same["ci_high"] == 3.0  # the twin's 4.0 is not a replicate
    b = out[out["base"] == "b"].set_index("statistic")
    assert b.loc["binding_accuracy", "k"] == 1 and np.isnan(b.loc["binding_accuracy", "ci_low"])
    assert b.loc["median_entropy", "k"] == 0


def test_the_binding_pressure_config_gives_two_bases_of_three_seeds_and_a_twin_each():
    config = validate_config(
        yaml.safe_load((REPO / "config" / "binding-pressure.yaml").read_text()), SCHEMA
    )
    entries = model_entries(config)
    trained = [e for e in entries if e["role"] == "trained"]
    assert [e["base"] for e in trained] == ["toy-plain"] * 3 + ["toy-negclip"] * 3
    assert [e.get("toy_seed") for e in trained] == [0, 1, 2] * 2
    assert all(e["toy"]["hard_negatives"] for e in trained if e["base"] == "toy-negclip")
    assert sorted(e["name"] for e in entries if e["role"] == "random") == [
        f"{base}/controls/random{suffix}"
        for base in ("toy-negclip", "toy-plain")
        for suffix in ("", "-1", "-2")  # controls.random_twins: 3 by default
    ]


def _two_bases(a, b, stat="binding_accuracy"):
    return pd.DataFrame(
        {
            "base": ["a"] * len(a) + ["b"] * len(b) + ["a"],
            "role": ["trained"] * (len(a) + len(b)) + ["random"],
            stat: list(a) + list(b) + [100.0],  # the twin is not a replicate
        }
    )


def test_base_differences_give_welch_intervals_on_hand_made_numbers():
    from scipy import stats as st

    from vlmbinding.analysis.cross_model import base_differences

    out = base_differences(_two_bases([0.5, 0.6, 0.7], [0.4, 0.4, 0.5, 0.5]), ["binding_accuracy"])
    row = out.iloc[0]
    assert (row["base_a"], row["base_b"], row["k_a"], row["k_b"]) == ("a", "b", 3, 4)
    assert row["difference"] == pytest.approx(0.6 - 0.45)
    # by hand: s_a^2 = 0.01, s_b^2 = 0.01 / 3; Welch-Satterthwaite degrees of freedom
    qa, qb = 0.01 / 3, (1 / 300) / 4
    df = (qa + qb) ** 2 / (qa**2 / 2 + qb**2 / 3)
    assert row["df"] == pytest.approx(df)
    half = st.t.ppf(0.975, df) * np.sqrt(qa + qb)
    assert row["ci_low"] == pytest.approx(0.15 - half) and row["ci_high"] == pytest.approx(
        0.15 + half
    )
    welch = st.ttest_ind([0.5, 0.6, 0.7], [0.4, 0.4, 0.5, 0.5], equal_var=False)
    assert row["p"] == pytest.approx(welch.pvalue)
    one = base_differences(_two_bases([0.5], [0.4, 0.5]), ["binding_accuracy"]).iloc[0]
    assert one["difference"] == pytest.approx(0.05) and np.isnan(one["ci_low"])
    exact = base_differences(_two_bases([1.0, 1.0], [0.0, 0.0]), ["binding_accuracy"]).iloc[0]
    assert (exact["ci_low"], exact["ci_high"], exact["p"]) == (1.0, 1.0, 0.0)


def test_base_differences_are_calibrated_and_find_a_planted_shift():
    # the unit is the replicate: 3 seeds per base, as config/binding-pressure.yaml runs.
    # Same distribution: p uniform over 300 draws, the interval covers 0 about 95% of the time;
    # a shift of 3 seed-sds is found in most draws.
    from scipy import stats as st

    from vlmbinding.analysis.cross_model import base_differences

    p_null, covered, found = [], 0, 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        row = base_differences(
            _two_bases(rng.normal(0, 1, 3), rng.normal(0, 1, 3)), ["binding_accuracy"]
        ).iloc[0]
        p_null.append(row["p"])
        covered += row["ci_low"] <= 0 <= row["ci_high"]
        shifted = base_differences(
            _two_bases(rng.normal(3, 1, 3), rng.normal(0, 1, 3)), ["binding_accuracy"]
        ).iloc[0]
        found += shifted["p"] < 0.05 and shifted["ci_low"] > 0
    assert st.kstest(p_null, "uniform").pvalue > 0.01
    assert 0.91 <= covered / 300 <= 0.99
    assert found / 300 > 0.6


def test_model_summary_spread_of_s_and_means_of_d_and_m_over_the_pairs_without_positions():
    from vlmbinding.analysis.cross_model import model_summary, pair_table

    kinds = {"red": "color", "blue": "color", "circle": "shape", "TL": "position"}
    feats = list(kinds)
    pairs = [(a, b) for i, a in enumerate(feats) for b in feats[i + 1 :]]
    sup = pd.DataFrame({"f1": [a for a, _ in pairs], "f2": [b for _, b in pairs]})
    sup["S"] = np.arange(len(pairs), dtype=float)
    sup["n_over_threshold"] = np.arange(len(pairs)) * 2
    sep = pd.concat([sup[["f1", "f2"]].assign(space=s) for s in ("full", "pca")])
    sep["D"], sep["M"] = 10.0 + np.arange(len(sep)), 0.5
    table = pair_table(sup, sep, kinds)
    assert sorted(zip(table["f1"], table["f2"])) == sorted(
        [("red", "blue"), ("red", "circle"), ("blue", "circle")]
    )
    empty = pd.DataFrame(columns=["metric", "space", "subset"])
    out = model_summary("m", empty, pd.DataFrame({"entropy": [1.0, 2.0]}), pairs=table)
    assert out["sd_S"] == pytest.approx(np.std([0, 1, 3], ddof=1))  # red-blue, red-circle, ...
    assert out["mean_n_over_threshold"] == pytest.approx(np.mean([0, 2, 6]))
    assert out["mean_D"] == pytest.approx(np.mean([10, 11, 13])) and out["mean_M"] == 0.5
    assert out["entropy_p10"] == pytest.approx(1.1)


def _sharing_tables():
    """A sharing table with overlap z (neuron basis) and decoys of other measures and bases,
    its separability and its sharing_correlation table."""
    from vlmbinding.analysis.sharing_stage import sharing_correlation_table

    kinds = {"red": "color", "blue": "color", "green": "color", "circle": "shape",
             "square": "shape", "TL": "position"}  # fmt: skip
    feats = list(kinds)
    pairs = [(a, b) for i, a in enumerate(feats) for b in feats[i + 1 :]]
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"f1": [a for a, _ in pairs], "f2": [b for _, b in pairs]})
    z = rng.normal(size=len(pairs))
    common = {"layers": "0", "value": 1.0, "null_mean": 0.0, "null_sd": 1.0, "p": 0.5}
    sharing = pd.concat(
        [
            base.assign(measure="overlap", basis="neurons", z=z, **common),
            base.assign(measure="overlap", basis="sae", z=100.0, **common),
            base.assign(measure="geometry", basis="neurons", z=-100.0, **common),
        ],
        ignore_index=True,
    )
    sep = base.assign(space="full", D=2 * z + rng.normal(size=len(z)), M=-z)
    corr = sharing_correlation_table(sharing, sep, kinds, n_boot=100, n_perm=99, seed=0)
    return kinds, sharing, sep, corr, z


def test_the_overlap_beside_s_reads_only_the_overlap_in_the_neuron_basis():
    from vlmbinding.analysis.cross_model import sharing_pair_table, sharing_summary

    kinds, sharing, sep, corr, z = _sharing_tables()
    pairs = sharing_pair_table(sharing, sep, kinds)
    assert len(pairs) == 10  # the pairs without a position, each once
    assert pairs["S"].abs().max() < 10  # the decoys' +-100 are left alone
    assert np.corrcoef(pairs["S"], pairs["M"])[0, 1] == pytest.approx(-1)
    out = sharing_summary(corr)
    want = corr[
        corr["measure"].eq("overlap") & corr["basis"].eq("neurons") & corr["score"].eq("z")
        & corr["metric"].eq("M") & corr["space"].eq("full") & corr["subset"].eq("no_position")
    ].iloc[0]  # fmt: skip
    assert out["r_overlap_M"] == pytest.approx(want["pearson_r"]) == pytest.approx(-1)
    assert out["r_overlap_M_low"] == want["feature_ci_low"]
    assert out["r_overlap_D_mantel_p"] == pytest.approx(
        corr[corr["measure"].eq("overlap") & corr["basis"].eq("neurons") & corr["score"].eq("z")
             & corr["metric"].eq("D") & corr["subset"].eq("no_position")]["mantel_p"].iloc[0]
    )  # fmt: skip
    assert np.isnan(sharing_summary(None)["r_overlap_D"])
    with pytest.raises(ValueError, match="no rows of measure 'overlap', basis 'neurons'"):
        sharing_pair_table(sharing[sharing["basis"].eq("sae")], sep, kinds)


def test_the_comparison_and_forest_figures_draw_the_overlap_beside_s(tmp_path):
    from vlmbinding.analysis.pooling import pool_replicate_pairs
    from vlmbinding.report import figures

    summary = _summary()
    for metric, r in (("D", 0.4), ("M", -0.3)):
        summary[f"r_overlap_{metric}"] = r
        summary[f"r_overlap_{metric}_low"], summary[f"r_overlap_{metric}_high"] = r - 0.2, r + 0.2
    kinds, sharing, sep, _, _ = _sharing_tables()
    from vlmbinding.analysis.cross_model import sharing_pair_table

    tables = [sharing_pair_table(sharing, sep, kinds)] * 2
    pooled = pd.concat(
        [
            pool_replicate_pairs({"toy": tables, "b": tables[:1]}, 50, 0),
            pool_replicate_pairs({"toy": tables, "b": tables[:1]}, 50, 0, measure="overlap"),
        ]
    )
    figures.save_figure(figures.replicate_forest(summary, pooled), tmp_path / "forest.png")
    figures.save_figure(figures.model_comparison(summary), tmp_path / "models.png")
    assert (tmp_path / "forest.png").stat().st_size > 10_000
    assert (tmp_path / "models.png").stat().st_size > 10_000
