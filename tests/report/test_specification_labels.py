"""The specification curve labels the omega measure's rows: its name, the S-only choices it
does not make, and its object-box tokens."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlmbinding.report import figures


def _specs(measure: str, n: int, seed: int, **choices) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    r = rng.uniform(-0.5, 0.5, n)
    rows = pd.DataFrame(
        {
            "measure": measure,
            "metric": np.repeat(["D", "M"], n // 2),
            "pearson_r": r,
            "feature_ci_low": r - 0.2,
            "feature_ci_high": r + 0.2,
            "mantel_p": rng.uniform(0, 1, n),
            "space": "full",
            "subset": np.tile(["all", "no_position"], n // 2),
            "layers": np.tile(["all", "third-3"], n // 2),
        }
    )
    return rows.assign(**choices)


def _labels(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]


def test_an_omega_table_plots_with_its_labels(tmp_path):
    s = _specs("S", 8, 0, top_k=10, n_neurons=8, reduce="max", tokens="patches")
    omega = _specs("omega", 4, 1, top_k=0, n_neurons=0, reduce="mean", tokens="box")
    fig = figures.specification_curve(pd.concat([s, omega], ignore_index=True))
    figures.save_figure(fig, tmp_path / "curve.png")
    labels = _labels(fig)
    assert "top-k images: not a choice (omega)" in labels
    assert "neurons in S: not a choice (omega)" in labels
    assert "tokens: patches in the object's box (omega)" in labels
    assert "top-k images: 10" in labels and "tokens: patch tokens" in labels
    titles = [ax.get_title() for ax in fig.axes]
    assert sum(t.startswith("omega z (neuron sharing) vs") for t in titles) == 2
    assert sum(t.startswith("S vs") for t in titles) == 2


def test_the_placeholder_names_every_measure_that_carries_it():
    omega = _specs("omega", 4, 1, top_k=0, n_neurons=0, reduce="mean", tokens="box")
    overlap = _specs("overlap", 4, 2, top_k=0, n_neurons=0, reduce="max", tokens="patches")
    fig = figures.specification_curve(pd.concat([overlap, omega], ignore_index=True))
    assert "top-k images: not a choice (overlap, omega)" in _labels(fig)
    titles = [ax.get_title() for ax in fig.axes]  # overlap first, then omega (MEASURE_NAMES)
    assert [t.split(" vs")[0] for t in titles if " vs " in t][::2] == [
        "overlap z",
        "omega z (neuron sharing)",
    ]
