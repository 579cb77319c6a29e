"""Config validation: the schema's defaults and rejections, each naming the bad key."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO, run_workflow

from vlmbinding.workflow.config import ConfigError, resolve_layers, validate_config

SCHEMA = REPO / "config" / "schema.yaml"


def test_empty_config_gets_every_default():
    cfg = validate_config({}, SCHEMA)
    assert cfg["dataset"]["images_per_count"] == 100
    assert cfg["models"][0]["arch"] == "ViT-L-14"
    assert cfg["analysis"]["top_k"] == 30
    assert cfg["activations"]["dtype"] == "float16"


def test_shipped_configs_are_valid():
    for name in ("config.yaml", "demo.yaml", "test.yaml"):
        validate_config(yaml.safe_load((REPO / "config" / name).read_text()), SCHEMA)


def test_defaults_are_not_shared_between_configs():
    a = validate_config({}, SCHEMA)
    a["dataset"]["colors"].append("purple")
    assert "purple" not in validate_config({}, SCHEMA)["dataset"]["colors"]


def _every_key_has_description_and_default(node, path="config"):
    for name, sub in node.get("properties", {}).items():
        assert "description" in sub or "$ref" in sub, f"{path}.{name} lacks a description"
        required = name in node.get("required", [])
        assert "default" in sub or required, f"{path}.{name} lacks a default"
        _every_key_has_description_and_default(sub, f"{path}.{name}")
    if "items" in node and isinstance(node["items"], dict):
        _every_key_has_description_and_default(node["items"], f"{path}.items")


def test_schema_documents_every_key():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    _every_key_has_description_and_default(schema)


@pytest.mark.parametrize(
    "change, key, words",
    [
        ({"dataset": {"imagez_per_count": 3}}, "dataset", "imagez_per_count"),
        (
            {"dataset": {"images_per_count": "many"}},
            "dataset.images_per_count",
            "not of type",
        ),
        (
            {"dataset": {"images_per_count": -1}},
            "dataset.images_per_count",
            "less than",
        ),
        ({"dataset": {"colors": ["red", "purple2"]}}, "dataset.colors[1]", "purple2"),
        ({"analysis": {"top_k": 0}}, "analysis.top_k", "less than"),
        ({"robustness": {"measure": ["overlap"]}}, "robustness.measure", "must include 'S'"),
        (
            {"models": [{"name": "a b", "arch": "x", "weights": "toy"}]},
            "models[0].name",
            "match",
        ),
    ],
)
def test_schema_rejections_name_the_key(change, key, words):
    with pytest.raises(ConfigError) as err:
        validate_config(copy.deepcopy(change), SCHEMA)
    assert f"{key}:" in str(err.value) and words in str(err.value)


def test_layers_resolve_negative_indices_and_reject_out_of_range():
    assert resolve_layers([-2, -1, 0], 24) == [0, 22, 23]
    assert resolve_layers("all", 4) == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="layer 24 is out of range"):
        resolve_layers([24], 24)
    with pytest.raises(ConfigError, match="empty"):
        resolve_layers([], 24)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"dataset": {"shapes": ["cirle", "square"]}}, "dataset.shapes[0]"),
        ({"dataset": {"colors": ["red", "notacolour"]}}, "dataset.colors[1]"),
        ({"dataset": {"images_per_count": -5}}, "dataset.images_per_count"),
        ({"dataset": {"object_counts": [1, 7]}}, "dataset.object_counts"),
        ({"unknown_block": {}}, "unknown_block"),
    ],
)
def test_workflow_stops_before_any_job_and_names_the_key(tmp_path, change, words):
    proc = run_workflow(tmp_path, change, "-n", check=False)
    assert proc.returncode != 0
    assert words in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_conda_environment_carries_the_pinned_requirements():
    pins = [
        line.strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    env = yaml.safe_load((REPO / "envs" / "workflow.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == pins
    assert all("==" in pin for pin in pins), "every requirement is pinned"
