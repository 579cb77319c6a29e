"""What the rules pass to their scripts and ask of the scheduler, read from the parsed
workflow (no job runs)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from snakemake.io import expand
from workflow_api import parse_workflow

from vlmbinding.workflow import targets
from vlmbinding.workflow.entries import model_entries
from vlmbinding.workflow.params import replicated_models


@pytest.mark.parametrize("mode", ["model", "reference"])
def test_gradcam_and_binding_follow_the_activations_preprocessing(tmp_path, tiny_config, mode):
    tiny_config["activations"]["preprocess"] = mode
    wf = parse_workflow(tmp_path, tiny_config)
    assert wf.get_rule("explain_bindings").params.preprocess == mode
    # The binding test reads the image embeddings the extraction made with this setting.
    binding = wf.get_rule("evaluate_binding")
    assert "results/{model}/activations.zarr" in [str(f) for f in binding.input]
    activations = wf.get_rule("extract_activations").params.activations  # per model
    assert activations(SimpleNamespace(model="toy"))["preprocess"] == mode


def test_the_cross_model_view_reads_each_models_tables_and_labels_its_rows(tmp_path, tiny_config):
    wf = parse_workflow(tmp_path, tiny_config)
    rule = wf.get_rule("compare_models")
    models = [m["name"] for m in tiny_config["models"]]
    toys = [m["name"] for m in tiny_config["models"] if m["weights"] == "toy"]
    # comparison_inputs spells the paths: they are the outputs of the rules that write them
    made_by = {
        "correlation": ("correlate_superposition", "table", models),
        "neurons": ("gather_neurons", "table", models),
        "binding": ("evaluate_binding", "overall", models),
        "binding_correlation": ("correlate_binding", "table", models),
        "superposition": ("score_superposition", "superposition", models),
        "separability": ("measure_separability", "table", models),
        "zero_shot": ("train_toy_model", "zero_shot", toys),
    }
    by_name = {m["name"]: m for m in model_entries(tiny_config)}
    made_by["entropy_halves"] = ("resample_entropy", "table", replicated_models(by_name))
    inputs = targets.comparison_inputs(by_name, tiny_config)
    assert set(inputs) == set(made_by) | {"sharing", "sharing_correlation"}
    assert not tiny_config["sharing"]["enabled"] and not inputs.pop("sharing")
    assert not inputs.pop("sharing_correlation")
    for key, (producer, name, names) in made_by.items():
        pattern = re.sub(
            r"\{(\w+),[^}]*\}", r"{\1}", str(getattr(wf.get_rule(producer).output, name))
        )
        assert inputs[key] == expand(pattern, model=names), key
    entries = rule.params.entries
    assert entries["models"] == models and entries["toy"] == [m in toys for m in models]
    pooled = replicated_models(by_name)
    assert entries["entropy_replicates"] == [m in pooled for m in models]
    assert len(entries["seeds"]) == len(models) and list(entries) == sorted(entries)
    assert "results/comparison/models.png" in [str(f) for f in rule.output]


@pytest.mark.parametrize("enabled", [False, True])
def test_the_comparison_names_its_sharing_table_only_with_sharing_on(
    tmp_path, tiny_config, enabled
):
    tiny_config["sharing"] = {"enabled": enabled}
    tiny_config["dataset"]["images_per_count"] = 15  # the tuning regression's 35 images
    wf = parse_workflow(tmp_path, tiny_config)
    output = wf.get_rule("compare_models").output
    named = dict(output._names)  # name -> index
    if not enabled:  # compare_models.py writes sharing.tsv only where the rule names it
        assert "sharing" not in named
        return
    table = output[named["sharing"][0]]
    assert str(table) == "results/comparison/sharing.tsv"
    assert table.flags.get("report")  # in the report, with its caption
    caption = table.flags["report"].caption
    assert caption and "comparison_sharing.rst" in str(caption)
