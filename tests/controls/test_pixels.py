"""The pixel-space baseline and the residual test."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import tiny_model
from PIL import Image
from scipy import stats as sps

from vlmbinding.analysis.correlation import mantel_test, pairs_to_matrix
from vlmbinding.controls import beyond_pixels as controls
from vlmbinding.controls import pixels
from vlmbinding.data.toyshapes import generate_dataset
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction import recording as act


@pytest.mark.parametrize("mode", ["model", "reference"])
def test_pixel_tensors_are_the_models_inputs(tmp_path, mode):
    table, _ = generate_dataset(tmp_path / "images", Vocabulary(), [1, 2], 3, seed=0)
    paths, ids = table["path"].tolist(), table["image_id"].tolist()
    loaded = tiny_model()
    fed = []
    hook = loaded.model.visual.register_forward_pre_hook(lambda m, args: fed.append(args[0]))
    act.extract_activations(loaded, paths, ids, tmp_path / "s.zarr", batch_size=4, preprocess=mode)
    hook.remove()
    seen = torch.cat(fed).flatten(1).numpy()
    got = pixels.model_inputs(loaded, paths, mode, batch_size=5)
    assert got.shape == (len(paths), 3 * 56 * 56) and got.dtype == np.float32
    np.testing.assert_array_equal(got, seen)


def test_pixel_D_and_M_by_hand(tmp_path):
    # 2x2 images of one colour each; the transform only scales to [0, 1]
    colours = {
        "a": (255, 0, 0),  # f1 only
        "b": (0, 0, 255),  # f1 only
        "c": (102, 0, 255),  # f2 only: (0.4, 0, 1)
        "d": (0, 255, 0),  # f2 only
        "e": (255, 255, 255),  # both: in neither class
        "f": (0, 0, 0),  # neither
    }
    paths = []
    for name, rgb in colours.items():
        Image.new("RGB", (2, 2), rgb).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    presence = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 0]])
    x = pixels.pixel_tensors(paths, act.reference_preprocess(2))
    assert x.shape == (6, 12)
    table = pixels.pixel_separability(x, presence, ["f1", "f2"], [("f1", "f2")])
    full = table[table["space"] == "full"].iloc[0]
    # centroids per pixel: class 1 (.5, 0, .5), class 2 (.2, .5, .5); 4 pixels
    assert full["D"] == pytest.approx(math.sqrt(4 * (0.3**2 + 0.5**2)))
    # per-pixel squared distances to (c1, c2): a (.5, 1.14) right; b (.5, .54) right;
    # c (.26, .54) nearer class 1: wrong; d (1.5, .54) right
    assert full["M"] == pytest.approx(1 / 4)
    assert (full["n1"], full["n2"]) == (2, 2)
    assert set(table["space"]) == {"full", "pca"}


def test_the_row_space_shortcut_changes_nothing():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 500)).astype(np.float32)
    presence = rng.uniform(size=(40, 4)) < 0.5
    feats = ["a", "b", "c", "d"]
    pairs = list(itertools.combinations(feats, 2))
    fast = pixels.pixel_separability(x, presence, feats, pairs, 0.9)
    from vlmbinding.analysis.separability import separability_table

    slow = separability_table(x, presence, feats, pairs, 0.9)
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9)


def test_the_residual_correlation_by_hand():
    s = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0])
    model = np.array([0.2, 0.5, 0.1, 0.9, 0.4, 0.8])
    pix = np.array([0.1, 0.3, 0.2, 0.4, 0.6, 0.5])
    features = ["a", "b", "c", "d"]
    f1, f2 = zip(*itertools.combinations(features, 2))
    out = controls.residual_test(s, model, pix, features, f1, f2, 99, 99, 0)
    b, a = np.polyfit(pix, model, 1)
    resid = model - (a + b * pix)
    assert out["slope"] == pytest.approx(b) and out["intercept"] == pytest.approx(a)
    b_s, a_s = np.polyfit(pix, s, 1)
    resid_s = s - (a_s + b_s * pix)
    # r, its interval and its p are all of the partial correlation r(S, M | pixels)
    assert out["r"] == pytest.approx(np.corrcoef(resid_s, resid)[0, 1])
    assert out["semipartial_r"] == pytest.approx(np.corrcoef(s, resid)[0, 1])
    table = pd.DataFrame({"f1": f1, "f2": f2, "a": resid_s, "b": resid})
    mats = [pairs_to_matrix(table, c, features) for c in ("a", "b")]
    assert mantel_test(*mats, 99, 0)[0] == pytest.approx(out["r"])  # the p's statistic
    full = np.arange(4)[None]
    mats = [pairs_to_matrix(pd.DataFrame({"f1": f1, "f2": f2, "v": v}), "v", features)
            for v in (s, model, pix)]  # fmt: skip
    assert controls.resampled_partial_correlation(full, *mats)[0] == pytest.approx(out["r"])
    assert out["r_model_pixels"] == pytest.approx(np.corrcoef(model, pix)[0, 1])
    assert out["n_pairs"] == 6
    assert 0 < out["mantel_p"] <= 1
    residual, *_ = controls.least_squares_residual([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 2.0, 3.0])
    assert np.isnan(residual[1]) and np.isfinite(residual[[0, 2, 3]]).all()


def _planted(seed: int, effect: float, f: int = 12):
    """Pairs of f features: pixel M, model M = pixel M (+ effect * g) + noise, and S that
    relates to the pixel M (and, with an effect, to g, the part the pixels do not explain)."""
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(f, k=1)
    u, v, w = rng.normal(size=(3, f))
    pixel = u[i] + u[j] + 0.5 * rng.normal(size=len(i))
    g = w[i] + w[j]
    noise = v[i] + v[j] + rng.normal(size=len(i))  # feature-structured, independent of S
    model = pixel + effect * g + noise
    s = pixel + effect * 2 * g + rng.normal(size=len(i))
    names = [f"f{k}" for k in range(f)]
    return s, model, pixel, names, [names[k] for k in i], [names[k] for k in j]


# The unit suite's versions use fewer seeds; the full simulations run in make test-slow.
@pytest.mark.parametrize("n_seeds", [40, pytest.param(150, marks=pytest.mark.slow)])
def test_the_residual_test_is_calibrated_when_S_only_follows_the_pixels(n_seeds):
    ps = [
        controls.residual_test(*_planted(seed, 0.0), 10, 199, seed)["mantel_p"]
        for seed in range(n_seeds)
    ]
    # a raw S-M correlation would be strongly "significant" here; beyond the pixels it is not
    assert sps.kstest(ps, "uniform").pvalue > 0.01
    assert np.mean(np.array(ps) < 0.05) < 0.12


@pytest.mark.parametrize("n_seeds", [40, pytest.param(80, marks=pytest.mark.slow)])
def test_the_partial_correlations_interval_is_calibrated_when_S_only_follows_the_pixels(n_seeds):
    """Coverage (features resampled): the true partial r is 0 here; the interval excludes
    it in about 5% of the seeds (at most 12%)."""
    out = [controls.residual_test(*_planted(s, 0.0), 150, 9, s) for s in range(n_seeds)]
    assert np.mean([o["feature_ci_low"] > 0 or o["feature_ci_high"] < 0 for o in out]) <= 0.12


def test_the_residual_test_finds_a_planted_effect_beyond_the_pixels():
    out = [controls.residual_test(*_planted(seed, 2.0), 100, 99, seed) for seed in range(20)]
    assert np.mean([o["mantel_p"] < 0.05 for o in out]) > 0.8
    assert np.mean([o["feature_ci_low"] > 0 for o in out]) > 0.7


def test_beyond_pixels_table_has_a_row_per_metric_space_subset():
    vocab = Vocabulary()
    feats = vocab.features
    rng = np.random.default_rng(0)
    pairs = list(itertools.combinations(feats, 2))
    sup = pd.DataFrame({"f1": [a for a, _ in pairs], "f2": [b for _, b in pairs]})
    sup["S"] = rng.normal(size=len(pairs))

    def sep():
        t = pd.concat([sup[["f1", "f2"]].assign(space=sp) for sp in ("full", "pca")])
        return t.assign(D=rng.normal(size=len(t)), M=rng.uniform(size=len(t)), n1=5, n2=5)

    table = controls.beyond_pixels_table(sup, sep(), sep(), vocab.feature_kinds, 50, 49, 0)
    assert list(table.columns) == controls.BEYOND_PIXELS_COLUMNS
    assert len(table) == 2 * 2 * 2
    assert (
        table.set_index(["metric", "space", "subset"]).loc[("M", "full", "all"), "n_pairs"] == 120
    )
    assert (
        table.set_index(["metric", "space", "subset"]).loc[("D", "pca", "no_position"), "n_pairs"]
        == 55
    )
