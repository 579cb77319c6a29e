"""The sharing page's sentences: for the study, against it, not detected, twins, bases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlmbinding.report.sharing_page import (
    beyond_sentences,
    correlation_sentence,
    measure_sentences,
    resolved_sentences,
    sharing_page,
    sharing_sections,
    training_sentences,
)


def row(metric="D", r=-0.36, p=0.001, subset="all", n=120, mde=0.28):
    return {
        "metric": metric,
        "space": "full" if metric != "accuracy" else "binding",
        "subset": subset,
        "n_pairs": n,
        "pearson_r": r,
        "feature_ci_low": r - 0.13,
        "feature_ci_high": r + 0.16,
        "mantel_p": p,
        "mde_r": mde,
    }


def test_a_detected_relation_in_the_studys_direction_says_so():
    text = correlation_sentence(row("D", -0.36, 0.0004), "overlap z")
    assert text.startswith(
        "r(overlap z, D) over 120 pairs = -0.36 [-0.49, -0.20], Mantel p < 0.001"
    )
    assert "detected, as the study predicts" in text and "lie closer in the embedding" in text
    text = correlation_sentence(row("M", 0.29, 0.01, "no_position", 55), "overlap z")
    assert "over 55 pairs without a position" in text and "as the study predicts" in text
    assert "confused more often" in text


def test_a_detected_relation_against_the_study_says_so():
    text = correlation_sentence(row("D", 0.35, 0.02), "ω")
    assert "detected, against the study" in text and "farther apart" in text
    text = correlation_sentence(row("accuracy", 0.4, 0.03, n=25), "overlap z")
    assert "25 same-kind pairs" in text and "against the study" in text and "bind better" in text


def test_nothing_found_is_not_detected_with_the_power_of_the_test():
    text = correlation_sentence(row("accuracy", -0.12, 0.59, n=25, mde=0.59), "overlap z")
    assert "not detected (80% power only for |r| >= 0.59)" in text
    assert "absent" not in text and "study" not in text
    text = correlation_sentence(row("D", np.nan, np.nan), "ι")
    assert "could not be computed" in text


def sanity():
    return pd.DataFrame(
        [
            {
                "statistic": "r(overlap z, D), all pairs",
                "trained": -0.36,
                "random": -0.11,
                "random_ci_low": -0.28,
                "random_ci_high": 0.06,
                "n_twins": 3,
                "verdict": "survives: significant in the trained model",
            },
            {
                "statistic": "r(overlap z, D), all pairs (autoencoder basis)",
                "trained": -0.05,
                "random": -0.02,
                "random_ci_low": -0.2,
                "random_ci_high": 0.2,
                "n_twins": 1,
                "verdict": "not detected in the trained model",
            },
        ]
    )


def test_rows_of_the_same_pairs_are_said_once():
    corr = pd.DataFrame(
        [row("accuracy", -0.1, 0.6, "all", 25), row("accuracy", -0.1, 0.6, "no_position", 25)]
    )
    assert len(measure_sentences(corr, "overlap z")) == 1


def test_the_twin_comparison_follows_the_row_of_its_basis():
    corr = pd.DataFrame([row("D", -0.36, 0.001), row("accuracy", -0.1, 0.6, n=25)])
    text = " ".join(measure_sentences(corr, "overlap z", measure="overlap", sanity=sanity()))
    assert (
        "Against 3 random-weights twins: trained -0.36, twins -0.11 (prediction interval " in text
    )
    assert "[-0.28, 0.06]); survives" in text
    # with the difference's interval, the sentence gives the band the verdict used
    rows = sanity().assign(difference=[-0.25, np.nan], difference_ci_low=[-0.45, np.nan])
    text = " ".join(measure_sentences(corr, "overlap z", measure="overlap", sanity=rows))
    assert "[-0.28, 0.06]; with the trained model's own uncertainty added, the band it " in text
    assert "must leave is [-0.31, 0.09]); survives" in text
    text = " ".join(
        measure_sentences(corr, "overlap z", measure="overlap", basis="sae", sanity=sanity())
    )
    assert "Against its random-weights twin: trained -0.05" in text and "3 random" not in text


def geometry_beyond():
    return pd.DataFrame(
        [
            {"layers": "3", "score": "z", "metric": "D", "space": "full", "subset": "all",
             "n_pairs": 120, "r": 0.31, "feature_ci_low": 0.04, "feature_ci_high": 0.53,
             "mantel_p": 0.03},
            {"layers": "3", "score": "z", "metric": "M", "space": "full", "subset": "all",
             "n_pairs": 120, "r": 0.05, "feature_ci_low": -0.2, "feature_ci_high": 0.3,
             "mantel_p": 0.5, "mde_r": 0.46},
        ]
    )  # fmt: skip


def test_omega_beyond_iota_in_sentences():
    first, second = beyond_sentences(geometry_beyond())
    assert first.startswith("Block 3: partial r(ω z, D | ι z) over 120 pairs = 0.31 [0.04, 0.53]")
    assert "detected beyond interference, against the study" in first
    assert "not detected (80% power only for |r| >= 0.46)" in second
    older = geometry_beyond().drop(columns="mde_r")  # a table from before mde_r: said so
    assert "power not computed" in beyond_sentences(older)[1]
    # binding accuracy's two subsets are the same pairs: said once
    accuracy = geometry_beyond().iloc[:1].assign(metric="accuracy", space="binding", n_pairs=25)
    twice = pd.concat([accuracy, accuracy.assign(subset="no_position")], ignore_index=True)
    assert len(beyond_sentences(twice)) == 1


def geometry_sanity():
    """The sanity table's geometry rows (sharing_sanity.sharing_rows_against's statistic:
    measure words, subset, block), for blocks 1 and 3."""
    rows = []
    for words, block, trained in (("omega z", "1", 0.9), ("omega z", "3", -0.21),
                                  ("iota z", "3", 0.44)):  # fmt: skip
        for metric in ("D", "M"):
            rows.append(
                {
                    "statistic": f"r({words}, {metric}), all pairs, block {block}",
                    "trained": trained,
                    "random": 0.02,
                    "random_ci_low": -0.1,
                    "random_ci_high": 0.12,
                    "n_twins": 1,
                    "verdict": "not detected",
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


def test_the_geometry_sections_find_their_blocks_twin_rows():
    corr = pd.DataFrame([row("D", -0.4, 0.01), row("M", 0.2, 0.3)])
    keys = [("neuron_sharing", "3"), ("interference", "3"), ("neuron_sharing", "1")]
    corr = pd.concat(
        [
            corr.assign(measure=m, basis="neurons", layers=b, score=sc, additive_r2=r2)
            for m, b in keys
            for sc, r2 in (("z", 0.1), ("value", 0.7))
        ],  # fmt: skip
        ignore_index=True,
    )
    sections = sharing_sections(pd.DataFrame([row("D")]), corr, sanity=geometry_sanity())
    text = {h: t for h, t, _ in sections}
    omega3 = text["Neuron sharing ω (encoding geometry), neuron basis, block 3"]
    # the section reads ω's z, as the sanity row: the twin sentence follows its row
    assert omega3.startswith("ω z at block 3; additive R² 0.10")
    assert "Against its random-weights twin: trained -0.21" in omega3
    # the raw value in one sentence, with its additive R²
    assert "Read by its raw value instead (not centred on its null; additive R² 0.70" in omega3
    assert "r(ω, D) over 120 pairs = -0.40" in omega3
    assert omega3.count("trained -0.21") == 2  # D and M
    assert "block 1" not in omega3
    iota3 = text["Interference ι (encoding geometry), neuron basis, block 3"]
    assert "trained 0.44" in iota3 and "r(ι, D)" in iota3
    omega1 = text["Neuron sharing ω (encoding geometry), neuron basis, block 1"]
    assert "trained 0.90" in omega1 and "trained -0.21" not in omega1


def resolved():
    return pd.DataFrame(
        {
            "measure": "overlap",
            "sae_seed": ["mean", "0", "1"],
            "threshold": 1.645,
            "n_pairs": 120,
            "shared_neurons": 12,
            "shared_sae": [18, 17, 19],
            "shared_both": [5, 6, 7],
            "resolved": [7, 6, 5],
            "resolved_share": [0.58, 0.5, 0.42],
            "r_z": [0.54, 0.5, 0.52],
            "rho_z": [0.5, 0.5, 0.5],
        }
    )


def curve(dead_last=0.3):
    return pd.DataFrame(
        {
            "seed": [0, 0, 1, 1],
            "step": [1, 2, 1, 2],
            "loss": 1.0,
            "fvu": [0.5, 0.03, 0.5, 0.04],
            "dead_fraction": [0.0, 0.25, 0.0, dead_last],
        }
    )


def test_the_autoencoder_basis_in_sentences():
    (text,) = resolved_sentences(resolved())
    assert text.startswith("Co-tuned neuron overlap: 12 of 120 pairs share in the neuron basis")
    assert "7 of them do not" in text and "resolved share 0.58" in text
    assert "per seed the resolved share is 0.42 to 0.50" in text
    (text,) = training_sentences({"3": curve()})
    assert "Layer 3: 2 autoencoder(s)" in text and "FVU is 0.030 to 0.040" in text
    assert "latents that fired on no token in the last epoch 25% to 30%." in text
    assert "more than half dead" in training_sentences({"3": curve(0.7)})[0]


def test_the_page_labels_s_as_the_studys_additive_score_and_has_every_part():
    s = pd.DataFrame([row("D", -0.1, 0.4), row("M", 0.1, 0.5)])
    keys = [("overlap", "neurons", "0,3", "z"), ("overlap", "sae", "0,3", "z"),
            ("neuron_sharing", "neurons", "3", "z")]  # fmt: skip
    corr = pd.concat(
        [
            pd.DataFrame([row("D", -0.4, 0.01), row("M", 0.2, 0.3)]).assign(
                measure=m, basis=b, layers=lay, score=sc, additive_r2=0.06
            )
            for m, b, lay, sc in keys
        ],
        ignore_index=True,
    )
    sections = sharing_sections(
        s,
        corr,
        sanity=sanity(),
        beyond=geometry_beyond(),
        resolved=resolved(),
        training={"0": curve(), "3": curve()},
    )
    headings = [h for h, _, _ in sections]
    assert headings[0] == "S, the study's additive score"
    assert "S(f1, f2) = P(f1) + P(f2)" in sections[0][1]
    assert "Co-tuned neuron overlap, neuron basis, layers 0,3" in headings
    assert "Co-tuned neuron overlap, autoencoder basis, layers 0,3" in headings
    assert "Neuron sharing ω (encoding geometry), neuron basis, block 3" in headings
    assert headings[-3:] == [
        "Neuron sharing ω beyond interference ι",
        "What the autoencoder basis resolves",
        "Autoencoder training",
    ]
    omega = sections[headings.index("Neuron sharing ω (encoding geometry), neuron basis, block 3")]
    assert omega[1].startswith("ω z at block 3; additive R² 0.06 (S gives 1).")
    html = sharing_page("toy: shared neurons", sections)
    assert "<h1>toy: shared neurons</h1>" in html and "not detected" in html
    assert "mde_r" in html  # how to read the tables, on the first section
