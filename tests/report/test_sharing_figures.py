"""Figures of the encoding geometry and the autoencoder basis: files written, axes labelled."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from vlmbinding.data.vocab import Vocabulary  # noqa: E402
from vlmbinding.report.figures.sae import sae_resolved, sae_training  # noqa: E402
from vlmbinding.report.figures.sharing import (  # noqa: E402
    deepest_block,
    geometry_scatter,
    sharing_scatter,
)
from vlmbinding.report.figures.style import save_figure  # noqa: E402

VOCAB = Vocabulary(
    shapes=("circle", "square", "triangle"), colors=("red", "green", "blue"), positions=("TL", "BR")
)
KINDS = VOCAB.feature_kinds
PAIRS = VOCAB.feature_pairs()


def correlation_rows(**keys) -> pd.DataFrame:
    """sharing_correlation rows of one measure, basis, block and score."""
    return pd.DataFrame(
        [
            {
                **keys,
                "metric": metric,
                "space": "full",
                "subset": subset,
                "n_pairs": 28 if subset == "all" else 15,
                "pearson_r": -0.25 if metric == "D" else 0.31,
                "pearson_ci_low": -0.5,
                "pearson_ci_high": 0.1,
                "spearman_rho": 0.2,
                "mantel_p": 0.042,
                "feature_ci_low": -0.61,
                "feature_ci_high": 0.07,
                "mde_r": 0.4,
                "additive_r2": 0.1,
            }
            for metric in ("D", "M")
            for subset in ("all", "no_position")
        ]
    )


@pytest.fixture
def tables():
    rng = np.random.default_rng(0)
    f1, f2 = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    sep = pd.DataFrame(
        {"f1": f1, "f2": f2, "space": "full", "D": rng.normal(3, 1, len(PAIRS))}
    ).assign(M=rng.uniform(0, 0.3, len(PAIRS)))
    rows, corr = [], []
    for measure, basis, layers in [
        ("interference", "neurons", "0"),
        ("neuron_sharing", "neurons", "0"),
        ("interference", "neurons", "3"),
        ("neuron_sharing", "neurons", "3"),
        ("overlap", "sae", "0,3"),
    ]:
        keys = {"measure": measure, "basis": basis, "layers": layers}
        rows.append(
            pd.DataFrame({"f1": f1, "f2": f2, **keys}).assign(
                value=rng.normal(0, 1, len(PAIRS)), z=rng.normal(0, 1, len(PAIRS))
            )
        )
        for score in ("value", "z"):
            corr.append(correlation_rows(**keys, score=score))
    return pd.concat(rows, ignore_index=True), sep, pd.concat(corr, ignore_index=True)


def labels(fig) -> list[str]:
    return [ax.get_xlabel() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]


def legend_text(fig) -> str:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return "\n".join(t.get_text() for leg in legends for t in leg.get_texts())


def test_the_geometry_figure_draws_iota_and_omega_at_the_deepest_block(tables, tmp_path):
    sharing, sep, corr = tables
    assert deepest_block(sharing) == "3"
    fig = geometry_scatter(sharing, sep, corr, KINDS)
    assert len(fig.axes) == 4 and "block 3" in fig._suptitle.get_text()
    names = labels(fig)
    assert sum("interference ι" in n for n in names) == 2
    assert sum("neuron sharing ω" in n for n in names) == 2
    assert sum("distance D" in n for n in names) == 2 and all(n for n in names)
    assert "all pairs: r = -0.25 [-0.61, 0.07], Mantel p = 0.042, n = 28" in legend_text(fig)
    save_figure(fig, tmp_path / "g.png", tmp_path / "g.pdf")
    assert (tmp_path / "g.png").stat().st_size > 0 and (tmp_path / "g.pdf").stat().st_size > 0


def test_a_missing_block_is_an_error_naming_it(tables):
    sharing, sep, corr = tables
    with pytest.raises(ValueError, match="'interference'.*layers '7'"):
        geometry_scatter(sharing, sep, corr, KINDS, layer=7)


def test_the_autoencoder_basis_overlap_is_drawn_like_the_neuron_basis(tables, tmp_path):
    sharing, sep, corr = tables
    fig = sharing_scatter(sharing, sep, corr, KINDS, basis="sae")
    assert all("autoencoder latents" in ax.get_xlabel() for ax in fig.axes[:2])
    assert "autoencoder" in fig._suptitle.get_text()
    assert "r = 0.31 [-0.61, 0.07]" in legend_text(fig)
    save_figure(fig, tmp_path / "s.png")
    assert (tmp_path / "s.png").exists()


def test_the_training_figure_has_a_line_per_layer_and_seed(tmp_path):
    curve = pd.DataFrame(
        {
            "seed": np.repeat([0, 1], 3),
            "step": np.tile([1, 2, 3], 2),
            "loss": [1.0, 0.5, 0.3, 1.1, 0.6, 0.35],
            "fvu": [0.5, 0.2, 0.1, 0.55, 0.25, 0.12],
            "dead_fraction": [0.0, 0.1, 0.2, 0.0, 0.1, 0.3],
        }
    )
    fig = sae_training({"0": curve, "3": curve})
    assert len(fig.axes) == 3 and all(len(ax.lines) == 4 for ax in fig.axes)
    assert [ax.get_ylabel().split(" ")[0] for ax in fig.axes] == ["training", "fraction", "dead"]
    assert all(ax.get_xlabel() == "training step" for ax in fig.axes)
    save_figure(fig, tmp_path / "t.png")
    assert (tmp_path / "t.png").exists()
    with pytest.raises(ValueError, match="layer 3: training.tsv lacks \\['fvu'\\]"):
        sae_training({"3": curve.drop(columns="fvu")})


def test_the_resolved_figure_has_bars_per_seed(tmp_path):
    resolved = pd.DataFrame(
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
        }
    )
    fig = sae_resolved(resolved)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "feature pairs" and ax.get_xlabel() == "autoencoder seed"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["seeds' mean", "seed 0", "seed 1"]
    assert "0.58 resolved\nr(z) 0.54" in [t.get_text() for t in ax.texts]
    save_figure(fig, tmp_path / "r.png")
    assert (tmp_path / "r.png").exists()
