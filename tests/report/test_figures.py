"""Figures: every figure saves to PNG and PDF, reproducibly, without leaking open figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from vlmbinding.data.vocab import Vocabulary  # noqa: E402
from vlmbinding.report import figures as fg  # noqa: E402

VOCAB = Vocabulary(
    shapes=("circle", "square", "triangle"), colors=("red", "green", "blue"), positions=("TL", "BR")
)
FEATURES = VOCAB.features
KINDS = VOCAB.feature_kinds
PAIRS = VOCAB.feature_pairs()


def tiny_image(rng, size=24):
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    y, x = rng.integers(0, size - 8, 2)
    img[y : y + 8, x : x + 8] = rng.integers(0, 255, 3)
    return img


@pytest.fixture
def tables():
    """Small superposition, separability and correlation tables (as the workflow writes)."""
    rng = np.random.default_rng(0)
    s = rng.uniform(5, 30, len(PAIRS))
    sup = pd.DataFrame(
        {
            "f1": [a for a, _ in PAIRS],
            "f2": [b for _, b in PAIRS],
            "S": s,
            "n_over_threshold": (s // 3).astype(int),
            "n_neurons": 50,
        }
    )
    # Separability lists some pairs in the other order: the join must not care.
    sep = pd.concat(
        [
            pd.DataFrame(
                {
                    "f1": [b if i % 3 == 0 else a for i, (a, b) in enumerate(PAIRS)],
                    "f2": [a if i % 3 == 0 else b for i, (a, b) in enumerate(PAIRS)],
                    "space": space,
                    "D": 5 - 0.1 * s + rng.normal(0, 0.3, len(s)),
                    "M": np.clip(0.01 * s + rng.normal(0, 0.03, len(s)), 0, 1),
                    "n1": 20,
                    "n2": 20,
                }
            )
            for space in ("full", "pca")
        ],
        ignore_index=True,
    )
    corr = pd.DataFrame(
        [
            {
                "metric": metric,
                "space": space,
                "subset": subset,
                "n_pairs": 55 if subset == "all" else 15,
                "pearson_r": -0.4123 if metric == "D" else 0.3377,
                "pearson_p": 0.01,
                "pearson_ci_low": -0.6061 if subset == "all" else -0.7071,
                "pearson_ci_high": -0.1949 if subset == "all" else 0.0512,
                "spearman_rho": -0.3888,
                "spearman_p": 0.02,
                "spearman_ci_low": -0.6,
                "spearman_ci_high": -0.1,
                "mantel_r": -0.4,
                "mantel_p": 0.03,
                "feature_ci_low": -0.7512,
                "feature_ci_high": 0.0821,
            }
            for metric in ("D", "M")
            for space in ("full", "pca")
            for subset in ("all", "no_position")
        ]
    )
    return sup, sep, corr


def gradcam_inputs(rng):
    images = [tiny_image(rng) for _ in range(3)]
    maps = rng.random((3, 3, 24, 24))
    prompts = [["red square", "green circle", "red circle"], ["blue triangle"], ["a", "b"]]
    kinds = [["true", "swapped", "other"], ["true"], ["swapped", "true"]]
    shares = [["on colour obj 0.61 / shape obj 0.22", "x", "y"], ["z"], ["u", "v"]]
    return images, maps, prompts, kinds, shares


def neuron_rows(rng, ids):
    aff = rng.random((3, len(FEATURES)))
    return pd.DataFrame(
        {
            "layer": [10, 11, 11],
            "unit": [3, 7, 9],
            **{f: aff[:, j] for j, f in enumerate(FEATURES)},
            "entropy": [1.2, 2.3, 3.1],
            "top_images": [",".join(rng.choice(ids, 4, replace=False)) for _ in range(3)],
        }
    )


def binding_tables(sup):
    pairs = [(a, b) for a, b in PAIRS if KINDS[a] == KINDS[b] != "position"]
    acc = np.linspace(0.4, 0.9, len(pairs))
    return pd.DataFrame(
        {"f1": [a for a, _ in pairs], "f2": [b for _, b in pairs], "n": 30, "accuracy": acc}
    )


def zero_shot_table():
    return pd.DataFrame(
        {
            "attribute": ["color", "shape", "position", "triple"],
            "accuracy": [0.95, 0.6, 0.21, 0.1],
            "chance": [1 / 3, 1 / 3, 1 / 2, 1 / 18],
            "n": 60,
        }
    )


def split_zero_shot_table():
    """As train_toy_model writes it: seen and unseen combinations, Wilson intervals."""
    seen = zero_shot_table().assign(split="seen", ci_low=[0.85, 0.5, 0.1, 0.05], ci_high=0.99)
    unseen = seen.assign(split="unseen", accuracy=[0.7, 0.4, np.nan, 0.02], ci_low=0.0)
    return pd.concat([seen, unseen], ignore_index=True)


def test_zero_shot_bars_show_seen_and_unseen_side_by_side():
    fig = fg.zero_shot_bars(split_zero_shot_table(), "toy")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["0.95", "0.60", "0.21", "0.10", "0.70", "0.40", "n/a", "0.02"]
    legend = legend_texts(fig)
    assert "unseen combinations (held out of training), n = 60" in legend
    assert "seen combinations" in legend and "chance level" in legend
    assert len(ax.patches) == 8
    plt.close(fig)


def summary_table(n=2):
    return pd.DataFrame(
        {
            "model": ["ViT-L/14", "toy"][:n],
            "r_D": [-0.42, 0.1][:n],
            "r_D_low": [-0.58, -0.2][:n],
            "r_D_high": [-0.23, 0.4][:n],
            "r_M": [0.38, np.nan][:n],
            "r_M_low": [0.2, np.nan][:n],
            "r_M_high": [0.55, np.nan][:n],
            "binding_accuracy": [0.61, np.nan][:n],
            "median_entropy": [3.9, 3.7][:n],
        }
    )


def builders(tables):
    """name -> function making a fresh Figure from fixed data (rebuilt on every call)."""
    sup, sep, corr = tables

    def gradcam():
        images, maps, prompts, kinds, shares = gradcam_inputs(np.random.default_rng(0))
        return fg.gradcam_grid(images, maps, prompts, kinds, ["img 1", "img 2", "img 3"], shares)

    def entropy():
        h = np.random.default_rng(0).uniform(1, 4, 300)
        h[:3] = np.nan
        return fg.entropy_histogram(h, np.sort(h[3:])[49], 50, max_bits=np.log2(16))

    def gallery():
        rng = np.random.default_rng(0)
        ids = [f"img_{i}" for i in range(6)]
        images = {i: tiny_image(rng) for i in ids[:-1]}  # one image missing on purpose
        return fg.feature_neuron_gallery(neuron_rows(rng, ids), images, FEATURES, n_images=5)

    def patches():
        rng = np.random.default_rng(0)
        images = [tiny_image(rng, 28) for _ in range(3)]
        maps = [rng.normal(size=(4, 4)) for _ in range(3)]
        return fg.patch_activation_maps(images, maps, ["top 1", "top 2", "without"], "L3 U7")

    return {
        "gradcam": gradcam,
        "entropy": entropy,
        "gallery": gallery,
        "patches": patches,
        "scatter_D": lambda: fg.superposition_scatter(sup, sep, corr, "D", KINDS),
        "scatter_M_pca": lambda: fg.superposition_scatter(sup, sep, corr, "M", KINDS, "pca"),
        "binding": lambda: fg.binding_scatter(binding_tables(sup), sup, corr.iloc[0]),
        "zero_shot": lambda: fg.zero_shot_bars(zero_shot_table(), "toy CLIP"),
        "zero_shot_split": lambda: fg.zero_shot_bars(split_zero_shot_table(), "toy CLIP"),
        "models": lambda: fg.model_comparison(summary_table()),
        "one_model": lambda: fg.model_comparison(summary_table(1)),
    }


NAMES = [
    "gradcam",
    "entropy",
    "gallery",
    "patches",
    "scatter_D",
    "scatter_M_pca",
    "binding",
    "zero_shot",
    "zero_shot_split",
    "models",
    "one_model",
]


@pytest.mark.parametrize("name", NAMES)
def test_figure_saves_reproducibly_and_closes(name, tables, tmp_path):
    build = builders(tables)[name]
    fig = build()
    assert isinstance(fig, matplotlib.figure.Figure)
    # A low dpi keeps the test fast; the files' reproducibility does not depend on it.
    fg.save_figure(fig, tmp_path / "a" / f"{name}.png", tmp_path / "a" / f"{name}.pdf", dpi=50)
    assert plt.get_fignums() == []
    png, pdf = tmp_path / "a" / f"{name}.png", tmp_path / "a" / f"{name}.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000
    # The same data saved again gives the same bytes: no date, no version in the files.
    fg.save_figure(build(), tmp_path / "b" / f"{name}.png", tmp_path / "b" / f"{name}.pdf", dpi=50)
    assert png.read_bytes() == (tmp_path / "b" / f"{name}.png").read_bytes()
    assert pdf.read_bytes() == (tmp_path / "b" / f"{name}.pdf").read_bytes()
    for data in (png.read_bytes(), pdf.read_bytes()):
        assert matplotlib.__version__.encode() not in data
        assert b"CreationDate" not in data


def legend_texts(fig) -> str:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
    legends = [leg for leg in legends if leg is not None]
    return "\n".join(
        [leg.get_title().get_text() for leg in legends]
        + [t.get_text() for leg in legends for t in leg.get_texts()]
    )


@pytest.mark.parametrize("metric", ["D", "M"])
def test_scatter_legend_quotes_the_correlation_rows(metric, tables):
    sup, sep, corr = tables
    fig = fg.superposition_scatter(sup, sep, corr, metric, KINDS, label_extremes=2)
    text = legend_texts(fig)
    r = "-0.41" if metric == "D" else "0.34"
    assert f"all pairs: r = {r} [-0.75, 0.08], Mantel p = 0.030, n = 55" in text
    assert f"pairs without positions: r = {r} [-0.75, 0.08], Mantel p = 0.030, n = 15" in text
    conditional = "conditional (pairs treated as independent)"
    assert f"{conditional}: [-0.61, -0.19], ρ = -0.39" in text
    assert f"{conditional}: [-0.71, 0.05], ρ = -0.39" in text
    assert "features resampled" in text and "features permuted" in text
    # Every pair type appears with its count (2 positions among 8 features: 13 pairs).
    assert "pairs involving a position (13)" in text and "shape–shape pairs (3)" in text
    # Two highest and two lowest S named, each once.
    order = sup.sort_values("S")
    names = {t.get_text() for t in fig.axes[0].texts}
    expected = {f"{a}–{b}" for a, b in zip(order["f1"], order["f2"])}
    assert len(names) == 4 and names <= expected
    top = order.iloc[-1]
    assert f"{top['f1']}–{top['f2']}" in names


def test_scatter_labels_do_not_overlap(tables):
    sup, sep, corr = tables
    fig = fg.superposition_scatter(sup, sep, corr, "D", KINDS, label_extremes=4)
    fig.draw_without_rendering()
    boxes = [t.get_window_extent() for t in fig.axes[0].texts]
    assert len(boxes) == 8
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)


def test_scatter_without_correlation_rows_computes_r(tables):
    sup, sep, _ = tables
    fig = fg.superposition_scatter(sup, sep, None, "D", KINDS, label_extremes=0)
    assert "no bootstrap interval" in legend_texts(fig)
    assert len(fig.axes[0].texts) == 0


def test_binding_legend_quotes_the_correlation_row(tables):
    sup, _, _ = tables
    row = {
        "pearson_r": -0.5,
        "pearson_ci_low": -0.8,
        "pearson_ci_high": -0.1,
        "spearman_rho": -0.45,
        "n_pairs": 6,
        "feature_ci_low": -0.9,
        "feature_ci_high": 0.2,
        "mantel_p": 0.125,
    }
    text = legend_texts(fg.binding_scatter(binding_tables(sup), sup, row))
    # The dependence-aware numbers lead; the pair-level ones are labelled conditional.
    assert "r = -0.50 [-0.90, 0.20], Mantel p = 0.125, n = 6" in text
    assert "conditional (pairs treated as independent): [-0.80, -0.10], ρ = -0.45" in text
    assert text.index("Mantel") < text.index("conditional")
    assert "colour pairs" in text and "shape pairs" in text and "chance" in text


def test_gradcam_grid_pads_short_rows(tables):
    images, maps, prompts, kinds, _ = gradcam_inputs(np.random.default_rng(0))
    # maps may also be given per row, as ragged lists.
    ragged = [list(maps[i][: len(p)]) for i, p in enumerate(prompts)]
    fig = fg.gradcam_grid(images, ragged, prompts, kinds)
    axes = np.array(fig.axes[:-1]).reshape(3, 4)  # the last axes is the colorbar
    visible = [[ax.get_visible() for ax in row] for row in axes]
    assert visible == [[True] * 4, [True, True, False, False], [True, True, True, False]]
    titles = {ax.get_title(): ax.title.get_color() for ax in axes.ravel() if ax.get_visible()}
    assert titles["“red square”\ntrue binding"] == fg.TRUE_COLOR
    assert titles["“green circle”\nswapped binding"] == fg.SWAPPED_COLOR
    assert fig.axes[-1].get_ylabel() == "Grad-CAM (normalised)"
    plt.close(fig)


def test_gradcam_grid_rejects_mismatched_rows():
    images, maps, prompts, kinds, _ = gradcam_inputs(np.random.default_rng(0))
    with pytest.raises(ValueError, match="row 1"):
        fg.gradcam_grid(images, maps, prompts, [kinds[0], ["true", "swapped"], kinds[2]])


def test_entropy_histogram_labels_the_cut():
    fig = fg.entropy_histogram(np.linspace(2, 4, 100), 2.5, 25)
    assert "25 lowest-entropy neurons selected (H ≤ 2.50 bits)" in legend_texts(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Entropy of feature affinities (bits)"
    assert ax.get_ylabel() == "Neurons"


def test_gallery_row_titles_name_the_top_affinities():
    rows = pd.DataFrame(
        {
            "layer": [22],
            "unit": [417],
            **dict.fromkeys(FEATURES, 0.0),
            "entropy": [1.234],
            "top_images": ["a,b"],
        }
    )
    rows[["square", "circle", "red"]] = [0.83, 0.63, 0.40]
    rng = np.random.default_rng(0)
    fig = fg.feature_neuron_gallery(rows, {"a": tiny_image(rng), "b": tiny_image(rng)}, FEATURES)
    titles = [sf._suptitle.get_text() for sf in fig.subfigs]
    assert titles == ["L22 U417  H=1.23 bits  top: square 0.83, circle 0.63, red 0.40"]


def test_patch_maps_share_one_colour_scale():
    rng = np.random.default_rng(0)
    images = [tiny_image(rng, 32) for _ in range(2)]
    maps = [np.zeros((4, 4)), np.full((4, 4), 3.0)]
    fig = fg.patch_activation_maps(images, maps, ["top image 1", "without"], "L1 U2")
    overlays = [ax.get_images()[1] for ax in fig.axes[:2]]
    assert {im.get_clim() for im in overlays} == {(0.0, 3.0)}
    assert overlays[0].get_array().shape == (32, 32)  # upsampled to the image size
    assert fig.axes[-1].get_ylabel() == "activation of L1 U2"


def test_upsample_nearest_keeps_patches():
    grid = np.arange(4.0).reshape(2, 2)
    up = fg._upsample_nearest(grid, 4, 6)
    assert up.shape == (4, 6)
    assert (up[:2, :3] == 0).all() and (up[2:, 3:] == 3).all()


def test_save_figure_creates_folders_and_png_only(tmp_path):
    fig = fg.zero_shot_bars(zero_shot_table(), "toy")
    target = tmp_path / "x" / "y" / "z.png"
    fg.save_figure(fig, target)
    assert target.exists() and list(target.parent.iterdir()) == [target]
    assert plt.get_fignums() == []


def test_save_figure_closes_pyplot_figures(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    fg.save_figure(fig, tmp_path / "p.png")
    assert plt.get_fignums() == []


def test_functions_leave_rcparams_alone(tables):
    before = matplotlib.rcParams["font.size"]
    fg.zero_shot_bars(zero_shot_table(), "toy")
    assert matplotlib.rcParams["font.size"] == before


def test_sharing_panels_quote_their_rows_like_the_s_figure(tables):
    from vlmbinding.report.figures.sharing import sharing_scatter

    sup, sep, corr = tables
    rng = np.random.default_rng(1)
    sharing = sup[["f1", "f2"]].assign(
        measure="overlap", basis="neurons", z=rng.normal(0, 2, len(sup)), value=1
    )
    sharing.loc[3, "z"] = np.inf
    rows = corr.assign(measure="overlap", basis="neurons", score="z")
    fig = sharing_scatter(sharing, sep, rows, KINDS)
    assert len(fig.axes) == 2 and "1 pairs with an infinite z left out" in fig._suptitle.get_text()
    text = legend_texts(fig)
    for r in ("-0.41", "0.34"):  # D's panel, then M's: the same legend as the S figure
        assert f"all pairs: r = {r} [-0.75, 0.08], Mantel p = 0.030, n = 55" in text
        assert f"pairs without positions: r = {r} [-0.75, 0.08], Mantel p = 0.030, n = 15" in text
    kept = [a for ax in fig.axes for a in ax.artists if isinstance(a, matplotlib.legend.Legend)]
    assert len(kept) == 2 and "shape–shape pairs (3)" in [t.get_text() for t in kept[0].texts]
    plt.close("all")
