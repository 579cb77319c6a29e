"""The sanity table: trained model, random twin, pixels, difference, verdict."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis.correlation import correlation_table
from vlmbinding.controls import beyond_pixels as controls
from vlmbinding.controls import sanity, verdicts
from vlmbinding.data.vocab import Vocabulary

VOCAB = Vocabulary()
KINDS = VOCAB.feature_kinds
PAIRS = list(itertools.combinations(VOCAB.features, 2))
N_BOOT, N_PERM = 300, 199


def model_tables(seed: int, effect: float, pixel_m: np.ndarray) -> dict:
    """A model's tables with S related to its M by `effect` (features carry the effect)."""
    rng = np.random.default_rng(seed)
    f = {name: rng.normal() for name in VOCAB.features}
    latent = np.array([f[a] + f[b] for a, b in PAIRS])
    sup = pd.DataFrame({"f1": [a for a, _ in PAIRS], "f2": [b for _, b in PAIRS]})
    sup["S"] = latent + 0.3 * rng.normal(size=len(PAIRS))
    m = effect * latent + pixel_m + 0.3 * rng.normal(size=len(PAIRS))
    sep = pd.concat(
        [
            sup[["f1", "f2"]].assign(space=s, D=-m + rng.normal(size=len(m)), M=m)
            for s in ("full", "pca")
        ],
        ignore_index=True,
    ).assign(n1=10, n2=10)
    corr = correlation_table(sup, sep, KINDS, N_BOOT, N_PERM, seed)
    images = [f"img{i}" for i in range(40)]
    trials = pd.DataFrame({"image_id": np.repeat(images, 3)})
    p_correct = 0.9 if effect else 0.5
    trials["correct"] = rng.uniform(size=len(trials)) < p_correct
    shares = pd.DataFrame(
        {
            "image_id": np.repeat(images[:6], 2),
            "prompt": "a red circle",
            "kind": "true",
            "role": ["target", "other"] * 6,
            "share": rng.uniform(0.3, 0.6, 12) if effect else rng.uniform(0.03, 0.06, 12),
            "area_share": 0.04,
        }
    )
    neurons = pd.DataFrame(
        {"entropy": rng.uniform(2.5, 4, 200) if effect else rng.uniform(3.7, 4, 200)}
    )
    return {
        "neurons": neurons,
        "superposition": sup,
        "separability": sep,
        "correlation": corr,
        "trials": trials,
        "shares": shares,
    }


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(99)
    pixel_m = 0.1 * rng.normal(size=len(PAIRS))
    pix = pd.concat(
        [
            pd.DataFrame({"f1": [a for a, _ in PAIRS], "f2": [b for _, b in PAIRS]}).assign(
                space=s, D=-pixel_m, M=pixel_m
            )
            for s in ("full", "pca")
        ],
        ignore_index=True,
    ).assign(n1=10, n2=10)
    trained, random = model_tables(1, 1.0, pixel_m), model_tables(2, 0.0, pixel_m)
    for t in (trained, random):
        t["pixel_separability"] = pix
        t["beyond"] = controls.beyond_pixels_table(
            t["superposition"], t["separability"], pix, KINDS, N_BOOT, N_PERM, 0
        )
    return trained, random


def test_the_table_has_the_contracts_columns_and_rows(tables):
    trained, random = tables
    table = sanity.sanity_table(trained, random, KINDS, "full", 3.5, N_BOOT, 0)
    for col in [
        "statistic",
        "trained",
        "random",
        "pixels",
        "difference",
        "difference_ci_low",
        "difference_ci_high",
        "trained_mantel_p",
        "random_mantel_p",
    ]:
        assert col in table.columns
    stats = table.set_index("statistic")
    assert len(table) == 2 + 4 + 4 + 2
    assert np.isnan(stats.loc["median neuron entropy (bits)", "pixels"])
    assert np.isnan(stats.loc["binding accuracy (swapped captions)", "trained_mantel_p"])
    assert stats.loc["Grad-CAM share on the named object", "pixels"] == pytest.approx(0.04)
    assert np.isfinite(stats.loc["r(S, M), all pairs", "pixels"])
    # every estimate with an interval around it, difference = trained - random
    for row in table.itertuples():
        assert row.trained_ci_low <= row.trained <= row.trained_ci_high or row.unit == "features"
        assert row.difference == pytest.approx(row.trained - row.random)
    # the planted differences are found, and said so
    assert stats.loc["r(S, M), all pairs", "survives"]
    assert stats.loc["binding accuracy (swapped captions)", "survives"]
    assert stats.loc["median neuron entropy (bits)", "survives"]
    sentences = verdicts.sanity_sentences(table)
    assert len(sentences) == len(table) and "features resampled" in sentences[2]
    assert "Survive the controls: median neuron entropy" in verdicts.sanity_summary(table)


def test_a_model_against_itself_survives_nothing(tables):
    trained, _ = tables
    table = sanity.sanity_table(trained, trained, KINDS, "full", 3.5, N_BOOT, 0)
    plain = table[~table["statistic"].str.contains("beyond")]
    assert not plain["survives"].any()
    assert (plain["difference"] == 0).all()
    assert "does not survive" in plain["verdict"].iloc[0]


def test_neuron_and_image_bootstraps_by_hand():
    out = sanity.neuron_bootstrap(
        np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]), lambda e: np.median(e, axis=1), 200, 0
    )
    assert (out["trained"], out["random"], out["difference"]) == (2.0, 4.0, -2.0)
    assert out["trained_ci_low"] >= 1 and out["trained_ci_high"] <= 3
    per = pd.DataFrame(
        {"sum_trained": [2, 1], "n_trained": [2, 2], "sum_random": [1, 1], "n_random": [2, 2]}
    )
    out = sanity.image_bootstrap(per, 500, 0)
    assert out["trained"] == pytest.approx(0.75) and out["random"] == pytest.approx(0.5)
    assert out["difference_ci_low"] >= 0 and out["difference_ci_high"] <= 0.5


def test_verdicts_follow_the_numbers():
    base = {
        "difference_ci_low": 0.1,
        "difference_ci_high": 0.5,
        "trained_mantel_p": 0.01,
        "random_mantel_p": 0.5,
    }
    assert verdicts.verdict({**base, "kind": "correlation"})[0]
    assert not verdicts.verdict({**base, "kind": "correlation", "trained_mantel_p": 0.2})[0]
    _, why = verdicts.verdict(
        {**base, "kind": "correlation", "trained_mantel_p": 0.2, "trained_mde_r": 0.641}
    )
    assert "not detected" in why and "80% power only for |r| >= 0.64" in why
    assert "no effect" not in why
    no, why = verdicts.verdict(
        {**base, "kind": "correlation", "difference_ci_low": -0.1, "random_mantel_p": 0.01}
    )
    assert not no and "twin's own correlation is significant" in why
    assert verdicts.verdict({**base, "kind": "beyond_pixels"})[0]
    # beyond the pixels the twin condition applies too: a significant partial Mantel p
    # whose difference from the twin includes 0 does not survive
    assert not verdicts.verdict({**base, "kind": "beyond_pixels", "difference_ci_low": -0.1})[0]
    assert not verdicts.verdict({**base, "kind": "accuracy", "difference_ci_low": -0.1})[0]


def test_the_primary_test_comes_first_and_the_rest_is_called_exploratory():
    from vlmbinding.workflow.config import validate_config

    primary = validate_config({}, "config/schema.yaml")["analysis"]["primary"]
    assert primary == {"measure": "S", "metric": "M", "subset": "no_position", "space": "full"}
    names = [
        "median neuron entropy (bits)",
        verdicts.primary_statistic(primary),
        "r(S, D), all pairs",
    ]
    table = pd.DataFrame(
        {"statistic": names, "survives": [True, False, False], "verdict": ["a", "b", "c"]}
    )
    table = table.assign(
        **{
            c: 0.1
            for c in (
                "trained",
                "trained_ci_low",
                "trained_ci_high",
                "random",
                "random_ci_low",
                "random_ci_high",
                "pixels",
                "difference",
                "difference_ci_low",
                "difference_ci_high",
                "trained_mantel_p",
                "random_mantel_p",
            )
        },  # fmt: skip
        unit="features",
    )
    sections = verdicts.sanity_page_sections(table, primary, "full")
    title, head, body = sections[0]
    assert title == "The primary test" and "r(S, M), pairs without a position" in head
    assert "other 2 statistics below are exploratory" in head and body.startswith("r(S, M)")
    _, _, body = verdicts.sanity_page_sections(table, primary, "pca")[0]
    assert "correlation.parquet" in body
    assert len(verdicts.sanity_page_sections(table)) == 2  # no primary: the page as before


def _shares(values, images):
    return pd.DataFrame(
        {
            "image_id": images,
            "prompt": "a red circle",
            "kind": "true",
            "role": "target",
            "share": values,
            "area_share": 0.05,
        }
    )


def test_all_zero_gradcam_maps_have_no_share_and_are_left_out():
    """An all-zero map (NaN share) is counted, not averaged as 0: a twin whose few non-zero
    maps put the same share on the object as the trained model does not differ from it."""
    images = [f"img{i}" for i in range(40)]
    rng = np.random.default_rng(0)
    share = rng.uniform(0.2, 0.4, 40)
    twin = rng.uniform(0.2, 0.4, 40)
    twin[10:] = np.nan  # 30 of 40 twin maps are all zero
    row = sanity.gradcam_row(_shares(share, images), _shares(twin, images), 500, 0)
    assert "trained 40 of 40, twin 10 of 40; compared on the 10 both have" in row["note"]
    assert row["trained"] == pytest.approx(share[:10].mean())  # like with like
    assert row["difference_ci_low"] < 0 < row["difference_ci_high"]
    # Counted as 0, the same maps made the twin look far worse than the trained model.
    zeros = _shares(np.nan_to_num(twin), images)
    as_zero = sanity.gradcam_row(_shares(share, images), zeros, 500, 0)
    assert as_zero["difference_ci_low"] > 0.1
    none = sanity.gradcam_row(_shares(share, images), _shares(np.full(40, np.nan), images), 100, 0)
    assert np.isnan(none["difference"]) and "twin 0 of 40" in none["note"]
    assert "cannot be compared" in verdicts.verdict({**none, "kind": "gradcam"})[1]
    assert not verdicts.verdict({**none, "kind": "gradcam"})[0]


def test_several_twins_give_one_row_per_statistic_with_their_spread(tables):
    trained, random = tables
    table = sanity.sanity_table(trained, [random, trained], KINDS, "full", 3.5, 100, 0)
    assert len(table) == 12 and (table["n_twins"] == 2).all()
    row = table.set_index("statistic").loc["median neuron entropy (bits)"]
    assert row["random_ci_low"] < row["random"] < row["random_ci_high"]  # prediction interval
    assert "2 untrained twins" in verdicts.sanity_sentences(table)[0]
    # the front page reads the table as written (its columns, kind included)
    from vlmbinding.controls.front_page import model_verdict_sentences

    survived, _, _ = model_verdict_sentences(table[sanity.SANITY_COLUMNS], trained["correlation"])
    assert survived.startswith("Survived 2 random-weights twins")


def test_a_tower_without_a_text_tower_says_binding_and_gradcam_are_not_applicable(tables):
    from vlmbinding.models.applicability import NEEDS_TEXT

    trained, random = ({**t, "trials": None, "shares": None} for t in tables)
    table = sanity.sanity_table(trained, [random, random], KINDS, "full", 3.5, N_BOOT, 0)
    stats = table.set_index("statistic")
    for name in ("binding accuracy (swapped captions)", "Grad-CAM share on the named object"):
        row = stats.loc[name]
        assert row["note"] == NEEDS_TEXT and np.isnan(row["trained"]) and not row["survives"]
        assert NEEDS_TEXT in row["verdict"]
    assert len(table) == 2 + 4 + 4 + 2  # the same rows as with a text tower
    assert stats.loc["r(S, M), all pairs", "survives"]  # the image-side rows are untouched
    sentences = verdicts.sanity_sentences(table)
    assert sum(NEEDS_TEXT in s for s in sentences) == 2
