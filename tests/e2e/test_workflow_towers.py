"""End-to-end: towers other than the toy CLIP through the tiny configuration, offline with
random weights. A transformers vision-only tower (a CLIPVisionModel folder written here, as
LLaVA's eyes are shipped) and its random-weights twin run every image-side stage; Grad-CAM
and the binding test are reported as not applicable. A SigLIP-like open_clip tower (a timm
trunk without a CLS token, attention pool) runs everything, Grad-CAM and binding included.
Small EVA02-, PE-Core- and register towers (timm trunks in open_clip checkpoint files) run
the tiny configuration too, PE-Core's with its pooling head's MLP recorded
(activations.pooling_head). The CLIP tower inside a LlavaForConditionalGeneration folder (the
VLM's eyes in a VLM checkpoint, found by class) runs the tiny configuration alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow
from helpers import (
    SIGLIP_OVERRIDES,
    save_clip_vision,
    save_llava,
    save_siglip_checkpoint,
    save_timm_checkpoint,
)

from vlmbinding.extraction.recording import open_store
from vlmbinding.models.applicability import NEEDS_TEXT

pytest.importorskip("transformers")
pytestmark = pytest.mark.slow  # make test-slow: a whole workflow run

EYES, TWIN, SIGLIP = "eyes", "eyes/controls/random", "siglip"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import copy

    import yaml
    from conftest import REPO

    work = tmp_path_factory.mktemp("towers")
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["models"] = [
        {
            "name": EYES,
            "arch": "transformers",
            "weights": save_clip_vision(work / "eyes-hf", seed=1),
        },
        {
            "name": SIGLIP,
            "arch": "ViT-B-16-SigLIP",
            "weights": str(work / "siglip.pt"),
            "model_cfg": copy.deepcopy(SIGLIP_OVERRIDES),
            "random_twin": False,
        },
    ]
    save_siglip_checkpoint(work / "siglip.pt")
    # 45 images: the sharing stage's tuning regression needs more than 2 x 16 features + 3
    config["dataset"]["images_per_count"] = 15
    config["sharing"] = {"enabled": True, "n_null": 19}
    config["controls"] = {"random_weights": True, "random_twins": 1, "pixel_baseline": False}
    config["robustness"] = {"enabled": False}  # the specification curve reads any store alike
    config["analysis"].update(bootstrap=100)
    config["gradcam"] = {"n_images": 2}
    # interventions on D and M for every tower (full forward passes for these families)
    config["interventions"] = {"enabled": True, "pairs": 8, "control_draws": 2}
    proc = run_workflow(work, config)
    return work, proc


def test_the_store_records_each_towers_token_layout(run):
    work, _ = run
    expected = {  # tokens, prefix tokens, token 0 a CLS token, tower family
        EYES: (17, 1, True, "transformers"),
        TWIN: (17, 1, True, "transformers"),
        SIGLIP: (16, 0, False, "timm-vit"),
    }
    for name, (tokens, prefix, cls, tower) in expected.items():
        attrs = open_store(work / "results" / name / "activations.zarr").attrs
        assert (attrs["tokens"], attrs["n_prefix_tokens"], attrs["cls_token"]) == (
            tokens,
            prefix,
            cls,
        ), name
        assert attrs["tower"] == tower
    eyes = open_store(work / "results" / EYES / "activations.zarr")["mlp_out"][:]
    twin = open_store(work / "results" / TWIN / "activations.zarr")["mlp_out"][:]
    assert eyes.shape == twin.shape and not np.allclose(eyes, twin)  # the twin's own weights


def test_a_vision_only_tower_runs_the_image_side_and_says_what_does_not_apply(run):
    work, proc = run
    results = work / "results"
    for name in (EYES, TWIN):
        for f in ("neurons.parquet", "superposition.parquet", "separability.parquet"):
            assert (results / name / f).exists(), (name, f)
        assert (results / name / "figures" / "superposition_null.png").exists()
        assert not (results / name / "binding").exists()
        assert not (results / name / "gradcam").exists()
        corr = pd.read_parquet(results / name / "sharing_correlation.parquet")
        assert set(corr["metric"]) == {"D", "M"}  # no binding accuracy to correlate with
    page = (results / EYES / "tables.html").read_text()
    assert page.count(NEEDS_TEXT) == 3  # binding vs S, the binding test, Grad-CAM
    assert NEEDS_TEXT in (work / "logs" / "tabulate_results" / f"{EYES}.log").read_text()
    sanity = pd.read_parquet(results / EYES / "controls" / "sanity.parquet")
    na = sanity[sanity["note"].eq(NEEDS_TEXT)]
    assert set(na["kind"]) == {"accuracy", "gradcam"}
    assert (sanity["statistic"].str.startswith("r(overlap z")).sum() == 4
    # said once at start-up, naming the entry and its twin
    notes = [line for line in proc.stderr.splitlines() if "no text tower of its own" in line]
    assert len(notes) == 1 and f"models entry '{EYES}'" in notes[0] and TWIN in notes[0]
    comparison = pd.read_csv(results / "comparison" / "models.tsv", sep="\t").set_index("model")
    assert np.isnan(comparison.loc[EYES, "binding_accuracy"])
    assert np.isfinite(comparison.loc[SIGLIP, "binding_accuracy"])


def test_a_siglip_tower_without_cls_runs_gradcam_and_binding(run):
    work, _ = run
    results = work / "results" / SIGLIP
    trials = pd.read_parquet(results / "binding" / "trials.parquet")
    assert len(trials) > 0 and trials["correct"].isin([True, False]).all()
    shares = pd.read_parquet(results / "gradcam" / "shares.parquet")
    assert len(shares) > 0
    assert NEEDS_TEXT not in (results / "tables.html").read_text()
    assert (results / "figures" / "gradcam.png").exists()


def test_interventions_run_on_every_tower_and_leave_binding_empty_without_a_text_tower(run):
    work, _ = run
    for name in (EYES, SIGLIP):
        effects = pd.read_parquet(work / "results" / name / "interventions" / "effects.parquet")
        ablated = effects[effects["n_neurons"] > 0]
        assert len(ablated) and np.isfinite(ablated[["dD", "dM"]]).all().all(), name
        assert (work / "results" / name / "figures" / "interventions.png").stat().st_size > 0
    eyes = pd.read_parquet(work / "results" / EYES / "interventions" / "effects.parquet")
    assert eyes.filter(like="dbinding").isna().all().all()
    summary = pd.read_csv(work / "results" / EYES / "interventions" / "summary.tsv", sep="\t")
    assert (summary.loc[summary["measure"] == "dbinding", "note"] == NEEDS_TEXT).all()
    log = (work / "logs" / "intervene_neurons" / f"{EYES}.log").read_text()
    assert "not applicable" in log


# --- EVA02, PE-Core and register towers (timm trunks), random weights, 12 images ---------------
EVA, PE, REG = "eva02", "pe-core", "registers"


def timm_config(work, kinds, **activations):
    """The tiny configuration with small timm towers `kinds` (checkpoint files written here),
    no random twins, no specification curve; Grad-CAM on 2 images."""
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["models"] = [
        {"name": k, **save_timm_checkpoint(work / f"{k}.pt", k, seed=i), "random_twin": False}
        for i, k in enumerate(kinds)
    ]
    config["robustness"] = {"enabled": False}
    config["gradcam"] = {"n_images": 2}
    config["activations"].update(activations)
    return config


@pytest.fixture(scope="module")
def timm_runs(tmp_path_factory):
    """Two runs: EVA02 and the register tower; PE-Core alone with activations.pooling_head."""
    work = tmp_path_factory.mktemp("timm-towers")
    run_workflow(work / "a", timm_config(work, [EVA, REG]))
    run_workflow(work / "b", timm_config(work, [PE], pooling_head=True))
    return {EVA: work / "a", REG: work / "a", PE: work / "b"}


def test_eva02_pe_core_and_register_towers_record_their_token_layout(timm_runs):
    expected = {  # tokens = 4 x 4 patches + prefix, prefix, CLS, registers, family, pool
        EVA: (17, 1, True, 0, "timm-eva", "token"),
        PE: (17, 1, True, 0, "timm-eva", "map"),
        REG: (21, 5, True, 4, "timm-vit", "avg"),
    }
    for name, (tokens, prefix, cls, registers, tower, pool) in expected.items():
        root = open_store(timm_runs[name] / "results" / name / "activations.zarr")
        attrs = root.attrs
        got = (attrs["tokens"], attrs["n_prefix_tokens"], attrs["cls_token"])
        assert got == (tokens, prefix, cls) and tokens == 4 * 4 + prefix, name
        assert (attrs["n_registers"], attrs["tower"], attrs["pool"]) == (registers, tower, pool)
        assert attrs["token_grid"] == [4, 4]
        assert root["mlp_out"].shape == (12, tokens, 2 * 64), name
        assert ("pooling_head_mlp" in root) == (name == PE), name


def test_the_pooling_head_is_recorded_and_the_analysis_reads_the_blocks(timm_runs):
    from vlmbinding.extraction.pooling_head import read_pooling_head

    root = open_store(timm_runs[PE] / "results" / PE / "activations.zarr")
    head = read_pooling_head(root)
    assert head.shape == (12, 64) and np.isfinite(head).all() and np.abs(head).max() > 0
    assert root.attrs["pooling_head"] is True
    neurons = pd.read_parquet(timm_runs[PE] / "results" / PE / "neurons.parquet")
    assert set(neurons["layer"]) == {0, 1}  # the blocks only: the head is no analysed layer


def test_timm_towers_run_every_stage_of_the_tiny_configuration(timm_runs):
    for name, work in timm_runs.items():
        results = work / "results" / name
        for f in (
            "neurons.parquet",
            "superposition.parquet",
            "separability.parquet",
            "binding/trials.parquet",
            "gradcam/shares.parquet",
            "tables.html",
        ):
            assert (results / f).stat().st_size > 0, (name, f)
        assert NEEDS_TEXT not in (results / "tables.html").read_text()
        assert len(pd.read_parquet(results / "neurons.parquet")) == 2 * 64  # 2 blocks of 64
    comparison = pd.read_csv(timm_runs[EVA] / "results" / "comparison" / "models.tsv", sep="\t")
    assert set(comparison["model"]) == {EVA, REG}


def test_the_pooling_head_option_stops_a_run_with_a_tower_without_one(tmp_path):
    config = timm_config(tmp_path, [PE, EVA], pooling_head=True)
    proc = run_workflow(tmp_path / "w", config, "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "models entry 'eva02': activations.pooling_head: true" in out
    assert "no attention-pooling head" in out


# --- the tower inside a LLaVA checkpoint, alone: no twin, sharing, robustness, interventions ---
LLAVA = "llava"


@pytest.fixture(scope="module")
def llava_run(tmp_path_factory):
    import yaml
    from conftest import REPO

    work = tmp_path_factory.mktemp("llava")
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    weights = save_llava(work / "llava-hf", seed=2)
    config["models"] = [
        {"name": LLAVA, "arch": "transformers", "weights": weights, "random_twin": False}
    ]
    config["robustness"] = {"enabled": False}
    config["interventions"] = {"enabled": False}
    return work, run_workflow(work, config)


def test_the_tower_inside_a_llava_checkpoint_runs_the_image_side(llava_run):
    work, proc = llava_run
    results = work / "results" / LLAVA
    root = open_store(results / "activations.zarr")
    attrs = root.attrs
    got = (attrs["tokens"], attrs["n_prefix_tokens"], attrs["cls_token"], attrs["tower"])
    assert got == (17, 1, True, "transformers") and attrs["token_grid"] == [4, 4]
    assert root["mlp_out"].shape == (12, 17, 2 * 32)
    for f in ("neurons.parquet", "superposition.parquet", "separability.parquet"):
        assert (results / f).stat().st_size > 0, f
    assert not (results / "binding").exists() and not (results / "gradcam").exists()
    page = (results / "tables.html").read_text()
    assert page.count(NEEDS_TEXT) == 3  # binding vs S, the binding test, Grad-CAM
    assert NEEDS_TEXT in (work / "logs" / "tabulate_results" / f"{LLAVA}.log").read_text()
    notes = [line for line in proc.stderr.splitlines() if "no text tower of its own" in line]
    assert len(notes) == 1 and f"models entry '{LLAVA}'" in notes[0]
