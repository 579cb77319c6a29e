"""sharing.geometry: the parts and targets it adds, its blocks, what a reduced store pools
for it, and the start-up refusals."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from vlmbinding.workflow.checks import check_geometry
from vlmbinding.workflow.config import ConfigError, validate_config
from vlmbinding.workflow.params import (
    activation_params,
    extraction_params,
    geometry_layers,
    pools_objects,
    sharing_params,
)
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


def test_a_reduced_store_serves_the_geometry_by_pooling_objects(config):
    config["sharing"].update(enabled=True)
    config["sharing"]["geometry"]["enabled"] = True
    config["activations"]["store"] = "reduced"
    check_geometry(config, {"m": {"layers": 12}})  # no longer refused
    assert pools_objects(config)
    pooled = extraction_params(config, 12, [10, 11])
    assert pooled["object_pooling"] == {"canvas": [232, 231], "layers": [10, 11]}
    assert {k: v for k, v in pooled.items() if k != "object_pooling"} == activation_params(config)
    config["sharing"]["geometry"]["layers"] = [-1]
    assert extraction_params(config, 12, [10, 11])["object_pooling"]["layers"] == [11]


@pytest.mark.parametrize("change", ["tokens", "geometry off", "sharing off"])
def test_the_extraction_pools_nothing_otherwise(config, change):
    """A tokens store's params are the activations block, as before: no rerun."""
    config["sharing"].update(enabled=True)
    config["sharing"]["geometry"]["enabled"] = True
    config["activations"]["store"] = "reduced"
    if change == "tokens":
        config["activations"]["store"] = "tokens"
    elif change == "geometry off":
        config["sharing"]["geometry"]["enabled"] = False
    else:
        config["sharing"]["enabled"] = False
    assert not pools_objects(config)
    assert extraction_params(config, 12, [10, 11]) == activation_params(config)


def test_a_block_out_of_range_names_the_key_and_the_model(config):
    config["sharing"]["geometry"].update(enabled=True, layers=[20])
    with pytest.raises(ConfigError, match=r"sharing.geometry.layers.*models entry 'm'"):
        check_geometry(config, {"m": {"layers": 12}})
