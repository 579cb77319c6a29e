"""Job resources from the model's geometry: a ViT-L/14 job asks for more than a toy's,
retries ask for more, and the rules hand these to the scheduler (not the profile)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml
from conftest import REPO
from workflow_api import parse_workflow

from vlmbinding.models.architectures import architecture_config
from vlmbinding.workflow import resources as res

TOY = json.loads((REPO / "resources" / "models" / "toy-vit.json").read_text())


@pytest.mark.parametrize(
    "stage", ["extract", "explain", "binding", "train", "layer", "separability"]
)
def test_larger_models_and_datasets_ask_for_more(stage):
    large = architecture_config("ViT-L-14")
    assert res.mem_mb(stage, large, 500) >= res.mem_mb(stage, TOY, 500)
    assert res.runtime_min(stage, large, 500) >= res.runtime_min(stage, TOY, 500)
    assert res.mem_mb(stage, large, 5000) >= res.mem_mb(stage, large, 500)
    assert res.mem_mb(stage, large, 500, attempt=2) == 2 * res.mem_mb(stage, large, 500)
    assert res.runtime_min(stage, large, 500, attempt=2) == 2 * res.runtime_min(stage, large, 500)


def test_paper_scale_numbers_cover_what_was_measured():
    large = architecture_config("ViT-L-14")
    # measured: a paper-scale layer job peaks at 1.35 GB; extraction at a few GB
    assert 1350 < res.mem_mb("layer", large, 500) <= 4000
    assert 4000 <= res.mem_mb("extract", large, 500, batch_size=32) <= 16000
    assert res.threads("extract", large) == 8 and res.threads("extract", TOY) == 2
    assert res.threads("layer", large) == 1
    with pytest.raises(ValueError, match="unknown stage"):
        res.mem_mb("dance", TOY, 10)


def _value(resource, *args):
    """A rule's resource function evaluated (Snakemake wraps it in a Resource)."""
    return resource._evaluator(*args)  # noqa: SLF001


def test_rules_ask_for_resources_computed_per_model(tmp_path, tiny_config):
    tiny_config["models"].append({"name": "wide", "arch": "toy-vit", "weights": "toy"})
    wf = parse_workflow(tmp_path, tiny_config)
    toy, wide = SimpleNamespace(model="toy"), SimpleNamespace(model="wide")
    for rule in ("extract_activations", "explain_bindings", "evaluate_binding"):
        r = wf.get_rule(rule)
        assert r.resources["gpu"] == 1
        mem, runtime = r.resources["mem_mb"], r.resources["runtime"]
        assert _value(mem, toy, 1) <= _value(mem, wide, 1)
        assert _value(runtime, wide, 2) == 2 * _value(runtime, wide, 1)
        assert _value(r.resources["_cores"], toy) == 2  # threads: job_threads(...)
    layer = wf.get_rule("neuron_statistics").resources
    assert _value(layer["mem_mb"], wide, 1) >= 1000 and _value(layer["runtime"], wide, 1) >= 10


def test_the_slurm_profile_keeps_only_site_settings():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert "set-threads" not in profile and "set-resources" not in profile
    assert set(profile["default-resources"]) == {"slurm_partition", "slurm_account"}
