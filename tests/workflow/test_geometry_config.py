"""sharing.geometry: the parts and targets it adds, its blocks, and the start-up refusals."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from vlmbinding.workflow.checks import check_geometry
from vlmbinding.workflow.config import ConfigError, validate_config
from vlmbinding.workflow.params import geometry_layers, sharing_params
from vlmbinding.workflow.targets import sharing_parts, sharing_targets

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(cfg, REPO / "config" / "schema.yaml")
    return cfg


def test_the_geometry_part_and_its_table_follow_enabled(config):
    assert not config["sharing"]["geometry"]["enabled"]  # off by default (its cost)
    config["sharing"]["geometry"]["enabled"] = True
    assert sharing_parts(config) == ["neurons", "geometry"]
    assert "results/m/geometry_beyond.parquet" in sharing_targets(config, "m")
    config["sharing"]["geometry"]["enabled"] = False
    assert sharing_parts(config) == ["neurons"]
    assert "results/m/geometry_beyond.parquet" not in sharing_targets(config, "m")


def test_geometry_settings_do_not_rerun_the_neuron_overlap(config):
    before = sharing_params(config)
    changed = copy.deepcopy(config)
    changed["sharing"]["geometry"]["n_null"] = 99
    assert sharing_params(changed) == before and "geometry" not in before


def test_blocks_default_to_the_analysed_ones(config):
    assert geometry_layers(config, 12, [11, 9, 10]) == [9, 10, 11]
    config["sharing"]["geometry"]["layers"] = [-1]
    assert geometry_layers(config, 12, [9, 10]) == [11]


def test_a_reduced_store_is_refused_naming_both_keys(config):
    config["sharing"]["geometry"]["enabled"] = True
    config["activations"]["store"] = "reduced"
    with pytest.raises(ConfigError, match="activations.store.*sharing.geometry.enabled"):
        check_geometry(config, {"m": {"layers": 12}})
    config["sharing"]["geometry"]["enabled"] = False
    check_geometry(config, {"m": {"layers": 12}})


def test_a_block_out_of_range_names_the_key_and_the_model(config):
    config["sharing"]["geometry"].update(enabled=True, layers=[20])
    with pytest.raises(ConfigError, match=r"sharing.geometry.layers.*models entry 'm'"):
        check_geometry(config, {"m": {"layers": 12}})
