"""robustness.measure: omega's target and params, and the start-up refusals (sae; omega on a
reduced store)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from vlmbinding.workflow.checks import check_config
from vlmbinding.workflow.config import ConfigError, validate_config
from vlmbinding.workflow.params import robustness_omega_params, robustness_overlap_params
from vlmbinding.workflow.targets import robustness_omega

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "config" / "schema.yaml"


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_omega_is_a_target_only_when_asked(config):
    validate_config(config, SCHEMA)
    assert robustness_omega(config, "m") == []
    config["robustness"]["measure"] = ["S", "overlap", "omega"]
    assert robustness_omega(config, "m") == ["results/m/robustness/omega.parquet"]


def test_omegas_params_are_its_own_and_the_geometrys(config):
    validate_config(config, SCHEMA)
    before = robustness_overlap_params(config)
    changed = copy.deepcopy(config)
    changed["robustness"]["omega_n_null"] = 49
    changed["sharing"]["geometry"]["n_bins"] = 5
    assert robustness_omega_params(changed) == {"n_null": 49, "n_bins": 5, "seed": 0}
    assert robustness_overlap_params(changed) == before  # the overlap's jobs do not rerun


@pytest.mark.parametrize("name", ["sae", "overlap_sae"])
def test_the_autoencoder_basis_is_refused_with_the_reason(config, name):
    config["robustness"]["measure"] = ["S", name]
    with pytest.raises(ConfigError, match="would need dictionaries of its own blocks"):
        check_config(config, SCHEMA)


def test_omega_needs_a_tokens_store(config):
    config["robustness"]["measure"] = ["S", "omega"]
    config["activations"]["store"] = "reduced"
    with pytest.raises(ConfigError, match="activations.store: tokens or leave omega out"):
        check_config(config, SCHEMA)
    config["robustness"]["enabled"] = False  # no curve, nothing to refuse
    check_config(config, SCHEMA)
