"""The workflow's pure helpers (vlmbinding.workflow.targets, params, checks): config in,
paths and params out, no Snakemake needed."""

from __future__ import annotations

import copy

import pytest
from conftest import REPO

from vlmbinding.workflow import checks, params, targets
from vlmbinding.workflow.config import ConfigError
from vlmbinding.workflow.entries import model_entries

SCHEMA = REPO / "config" / "schema.yaml"
ARCH_DIR = REPO / "resources" / "models"


@pytest.fixture
def config(tiny_config) -> dict:
    """The test config, validated with its defaults filled in."""
    checks.check_config(tiny_config, SCHEMA)
    return tiny_config


def models_of(config: dict) -> dict:
    return {m["name"]: m for m in model_entries(config)}


def test_all_targets_follow_the_switches(config):
    models = models_of(config)
    base = targets.all_targets(models, config)
    assert "results/toy/figures/zero_shot.png" in base  # a toy model's zero-shot figure
    assert "results/toy/tables.html" in base and "results/comparison/models.png" in base
    assert "results/toy/figures/interventions.png" not in base
    on = copy.deepcopy(config)
    on["interventions"]["enabled"] = True
    on["controls"].update(random_weights=True, pixel_baseline=True)
    models = models_of(on)
    more = targets.all_targets(models, on)
    assert "results/toy/figures/interventions.png" in more
    assert "results/toy/controls/sanity.html" in more
    assert "results/toy/controls/beyond_pixels.parquet" in more
    assert "results/toy/controls/random/figures/gradcam.png" in more  # the twin's own figures
    assert "results/toy/controls/random/controls/sanity.html" not in more  # a twin has none


def test_the_sanity_table_reads_the_trained_model_and_its_twins(config):
    config["controls"].update(random_weights=True, pixel_baseline=True, random_twins=3)
    models = models_of(config)
    inputs = targets.sanity_inputs(models, config, "toy")
    assert inputs["trained_neurons"] == "results/toy/neurons.parquet"
    assert inputs["random0_neurons"] == "results/toy/controls/random/neurons.parquet"
    assert inputs["random2_neurons"] == "results/toy/controls/random-2/neurons.parquet"
    assert "random3_neurons" not in inputs
    everything = targets.all_targets(models, config)
    assert "results/verdicts.html" in everything
    # a second or later twin makes only what the sanity table reads, not figures
    assert not any(t.startswith("results/toy/controls/random-1/figures") for t in everything)
    assert inputs["trained_pixel_separability"] == "results/toy/separability_pixels.parquet"
    twin_pixels = targets.pixel_separability(models, "toy/controls/random")
    assert twin_pixels == "results/toy/separability_pixels.parquet"  # the trained model's
    assert "trained_sharing" not in inputs  # sharing off: no sharing rows


def test_the_sanity_table_reads_every_twins_sharing_tables(config):
    config["controls"].update(random_weights=True, random_twins=3)
    config["sharing"]["enabled"] = True
    inputs = targets.sanity_inputs(models_of(config), config, "toy")
    assert inputs["trained_sharing"] == "results/toy/sharing.parquet"
    for j, twin in enumerate(("random", "random-1", "random-2")):
        base = f"results/toy/controls/{twin}"
        assert inputs[f"random{j}_sharing"] == f"{base}/sharing.parquet"
        assert inputs[f"random{j}_sharing_correlation"] == f"{base}/sharing_correlation.parquet"


def test_paths_of_datasets_weights_and_layers(config):
    config["models"][0]["replicates"] = {"dataset_seeds": [0, 3]}
    models = models_of(config)
    assert targets.dataset_file(models["toy"], config, "images") == (
        "results/dataset/images.parquet"
    )
    replicate = models["toy/replicate-1"]
    assert targets.dataset_file(replicate, config, "objects") == (
        "results/dataset/seed-3/objects.parquet"
    )
    assert targets.weights_file(models["toy"]) == "results/toy/toy_model/checkpoint.pt"
    assert targets.weights_file({"name": "x", "weights": "openai"}) == []
    assert targets.weights_file({"name": "x", "weights": "/w/model.pt"}) == "/w/model.pt"
    assert targets.layer_tables("toy", [1, 0, 1]) == [
        "results/toy/neurons/layer_0.parquet",
        "results/toy/neurons/layer_1.parquet",
    ]
    assert "zero_shot" in targets.result_tables(models, "toy")


def test_robustness_tables_cover_every_pooled_block_and_bad_pools_name_the_model(config):
    geometries = checks.geometries(models_of(config), ARCH_DIR)
    tables = targets.robustness_layer_tables(config, geometries, "toy")
    assert tables == [f"results/toy/robustness/neurons/layer_{b}.parquet" for b in (0, 1)]
    config["robustness"]["layers"] = {"deep": [7]}
    with pytest.raises(ConfigError, match="models entry 'toy'"):
        params.robustness_pools(config, geometries, "toy")


def test_params_blocks_are_sorted_and_carry_only_what_their_jobs_use(config):
    assert list(params.dataset_params(config)) == sorted(config["dataset"])
    assert params.dataset_seed_params(config, "7")["seed"] == 7
    assert "enabled" not in params.intervention_params(config)
    assert set(params.robustness_neuron_params(config)) == {"reduce", "tokens", "top_k"}
    entry = {**config["models"][0], "toy": {"epochs": 3}, "toy_seed": 11}
    toy = params.toy_params(config, entry)
    assert toy["epochs"] == 3 and toy["seed"] == 11 and "vocabulary" in toy
    assert params.entry_seeds(config, entry) == [11, config["dataset"]["seed"]]
    assert params.entry_seeds(config, {"weights": "openai"}) == [None, config["dataset"]["seed"]]


def test_the_analysis_checks_return_each_models_layers_and_name_the_key(config):
    models = models_of(config)
    ids = checks.dataset_image_ids(config)
    assert len(ids) == 12
    layers = checks.check_analysis(config, checks.geometries(models, ARCH_DIR), ids)
    assert layers == {"toy": [0, 1]}
    config["analysis"]["top_k"] = 13
    with pytest.raises(ConfigError, match="analysis.top_k: 13"):
        checks.check_analysis(config, checks.geometries(models, ARCH_DIR), ids)


def test_a_models_weights_problem_names_the_entry(tmp_path):
    entry = {"name": "mine", "arch": "ViT-B-32", "weights": str(tmp_path / "missing.pt")}
    problem = checks.weights_problem_of(entry, ARCH_DIR)
    assert problem.startswith("models entry 'mine': ") and "does not exist" in problem
    assert checks.weights_problem_of({"name": "t", "weights": "toy"}, ARCH_DIR) is None


def test_the_overlap_specifications_follow_robustness_measure(config):
    assert targets.robustness_overlap(config, "toy") == []  # the test config: S only
    config["robustness"]["measure"] = ["S", "overlap"]
    assert targets.robustness_overlap(config, "toy") == ["results/toy/robustness/overlap.parquet"]
    config["analysis"]["reduce"] = "max"
    config["robustness"]["reduce"] = ["mean"]
    got = params.robustness_overlap_params(config)
    assert got["reduce"] == ["mean", "max"]  # the main analysis's reduction joins the grid
    assert got["n_null"] == config["robustness"]["overlap_n_null"] == 199
    assert (got["m"], got["seed"]) == (config["sharing"]["m"], config["sharing"]["seed"])


def test_the_comparison_reads_every_models_sharing_tables_when_sharing_is_on(config):
    config["controls"]["random_weights"] = True
    models = models_of(config)
    assert targets.comparison_sharing(models, config, "sharing.parquet") == []
    config["sharing"]["enabled"] = True
    got = targets.comparison_sharing(models, config, "sharing_correlation.parquet")
    assert got == [f"results/{m}/sharing_correlation.parquet" for m in models]


def test_a_tower_without_a_text_tower_leaves_out_gradcam_and_binding(config):
    from vlmbinding.models.applicability import NEEDS_TEXT, startup_notes, text_less

    config["controls"].update(random_weights=True, random_twins=2, pixel_baseline=False)
    config["sharing"]["enabled"] = True
    models = models_of(config)
    geometries = {name: {"has_text": False} for name in models}
    no_text = text_less(geometries)
    assert no_text == set(models)
    everything = targets.all_targets(models, config, no_text)
    assert not any(t.endswith(("gradcam.png", "binding_vs_S.png")) for t in everything)
    assert "results/toy/figures/entropy.png" in everything
    assert "results/toy/controls/sanity.html" in everything
    assert "results/toy/sharing_correlation.parquet" in everything
    tables = targets.result_tables(models, "toy", no_text)
    assert not any("binding" in k or "localisation" in k for k in tables)
    inputs = targets.sanity_inputs(models, config, "toy", no_text)
    assert not any(k.endswith(("_trials", "_shares")) for k in inputs)
    assert "random1_neurons" in inputs and "trained_sharing_correlation" in inputs
    assert targets.binding_per_pair("toy", no_text) == []
    assert targets.binding_per_pair("toy") == ["results/toy/binding/accuracy_per_pair.parquet"]
    assert targets.with_text(models, {"toy/controls/random"}) == ["toy", "toy/controls/random-1"]
    # said once per config entry, naming its twins
    (note,) = startup_notes(geometries, models)
    assert note.startswith("models entry 'toy':") and "'toy/controls/random-1'" in note
    assert NEEDS_TEXT in note and "Grad-CAM and the binding test" in note
    assert startup_notes({name: {} for name in models}, models) == []


def test_a_refused_architecture_names_the_users_entry_not_its_twin(config, tmp_path):
    import json

    folder = tmp_path / "qwen"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    config["models"] = [{"name": "my-qwen", "arch": "transformers", "weights": str(folder)}]
    config["controls"]["random_weights"] = True
    models = models_of(config)
    twin = models["my-qwen/controls/random"]
    for entry in (twin, models["my-qwen"]):
        with pytest.raises(ConfigError) as err:
            checks.model_geometry(entry, ARCH_DIR)
        message = str(err.value)
        assert message.startswith("models entry 'my-qwen': my-qwen (model_type 'qwen2_vl')")
        assert "controls/random" not in message and "packs or merges patches" in message
        assert message.count("models entry") == 1
