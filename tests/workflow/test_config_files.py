"""The config files: every shipped one valid, config.yaml = the schema's defaults, and
config/README.md generated from the schema (regenerate with `make config-doc`)."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from vlmbinding.workflow.config import validate_config
from vlmbinding.workflow.configdoc import render

SCHEMA = REPO / "config" / "schema.yaml"
SHIPPED = sorted(p for p in (REPO / "config").glob("*.yaml") if p.name != "schema.yaml")


def test_config_readme_is_generated_from_the_schema():
    expected = render(yaml.safe_load(SCHEMA.read_text()))
    actual = (REPO / "config" / "README.md").read_text()
    assert actual == expected, "config/README.md is stale: run `make config-doc`"


def test_config_readme_lists_every_key():
    doc = (REPO / "config" / "README.md").read_text()
    for key in ("dataset.external", "models[].trust_checkpoint", "analysis.top_k"):
        assert f"`{key}`" in doc


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    validate_config(yaml.safe_load(path.read_text()) or {}, SCHEMA)


def test_config_yaml_is_the_schema_defaults():
    """config/config.yaml documents the defaults; it must not drift from the schema."""
    defaults = validate_config({}, SCHEMA)
    shipped = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), SCHEMA)
    differ = [
        f"{block}.{key}" if isinstance(defaults[block], dict) else block
        for block in defaults
        for key in (defaults[block] if isinstance(defaults[block], dict) else [None])
        if (defaults[block].get(key) if key else defaults[block])
        != (shipped[block].get(key) if key else shipped[block])
    ]
    assert not differ, f"config.yaml differs from the schema defaults at {differ}"
