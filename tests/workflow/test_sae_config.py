"""The autoencoder basis's config (sharing.sae): start-up refusals naming the key, the
parts and targets it adds, and which settings each of its steps tracks."""

from __future__ import annotations

import pytest
from conftest import REPO

from vlmbinding.workflow.checks import check_sae
from vlmbinding.workflow.config import ConfigError, validate_config
from vlmbinding.workflow.params import sae_params, sharing_params
from vlmbinding.workflow.targets import sharing_parts, sharing_targets


def config_with(tiny_config, sae=None, **blocks):
    tiny_config["sharing"] = {"enabled": True, "sae": {"enabled": True, **(sae or {})}}
    for block, values in blocks.items():
        tiny_config.setdefault(block, {}).update(values)
    return validate_config(tiny_config, REPO / "config" / "schema.yaml")


@pytest.mark.parametrize(
    "sae, blocks, words",
    [
        ({"dataset_seed": 0}, {}, ["sharing.sae.dataset_seed: 0 is dataset.seed"]),
        ({"dataset_seed": 7}, {"dataset": {"seed": 7}}, ["sharing.sae.dataset_seed"]),
        ({"n_images": 13}, {}, ["sharing.sae.n_images: 13 images", "has 12"]),
    ],
)
def test_what_the_autoencoder_basis_cannot_do_stops_the_run_naming_the_key(
    tiny_config, sae, blocks, words
):
    config = config_with(tiny_config, sae, **blocks)
    with pytest.raises(ConfigError) as err:
        check_sae(config, {"toy": {}}, 12)
    for w in words:
        assert w in str(err.value)


def test_a_replicate_analysed_on_the_training_seed_is_refused(tiny_config):
    config = config_with(tiny_config, {"dataset_seed": 5})
    with pytest.raises(ConfigError, match=r"sharing.sae.dataset_seed: 5 .*\['toy-r1'\]"):
        check_sae(config, {"toy": {}, "toy-r1": {"dataset_seed": 5}}, 12)


def test_an_external_dataset_is_refused(tiny_config):
    config = config_with(tiny_config)
    config["dataset"]["external"] = {"objects": "x.csv", "images": "imgs"}
    with pytest.raises(ConfigError, match="dataset.external"):
        check_sae(config, {"toy": {}}, 12)


def test_a_reduced_store_passes_its_latents_are_recomputed(tiny_config):
    config = config_with(tiny_config, activations={"store": "reduced"})
    check_sae(config, {"toy": {}}, 12)
    latents = sae_params(config, "latents")
    assert set(latents) == {"seeds", "dtype", "preprocess", "center_mlp_out", "autocast"}


def test_defaults_pass_and_a_disabled_basis_is_not_checked(tiny_config):
    config = config_with(tiny_config)
    assert config["sharing"]["sae"]["seeds"] == [0, 1, 2]
    check_sae(config, {"toy": {}}, 12)
    assert sharing_parts(config) == ["neurons", "sae"]
    assert "results/toy/sae/resolved.tsv" in sharing_targets(config, "toy")
    config["sharing"]["sae"]["enabled"] = False
    config["activations"]["store"] = "reduced"
    check_sae(config, {"toy": {}}, 12)
    assert sharing_parts(config) == ["neurons"]
    assert not any("sae" in t for t in sharing_targets(config, "toy"))


def test_each_step_tracks_only_its_settings(tiny_config):
    config = config_with(tiny_config)
    assert "sae" not in sharing_params(config)  # the neuron basis does not rerun for sae keys
    assert set(sae_params(config, "train")) == {"seeds", "expansion", "k", "epochs", "lr"}
    tokens = sae_params(config, "tokens")
    assert {"dataset_seed", "n_tokens", "n_images", "dtype", "preprocess"} <= set(tokens)
    assert "k" not in tokens and "k" not in sae_params(config, "measure")


def test_the_measure_reads_every_layers_curve_and_every_seeds_dictionary(tiny_config):
    from vlmbinding.workflow.targets import sae_files

    config = config_with(tiny_config, {"seeds": [3, 4]})
    assert sae_files(config, "m", [2, 5], "training") == [
        "results/m/sae/layer_2/training.tsv",
        "results/m/sae/layer_5/training.tsv",
    ]
    dictionaries = sae_files(config, "m", [2, 5], "dictionaries")
    assert len(dictionaries) == 4
    assert dictionaries[1] == "results/m/sae/layer_2/seed-4/dictionary.safetensors"
