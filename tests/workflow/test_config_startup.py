"""Config checks that need the workflow (the dataset size, each model's depth): they stop
the parse, before any job, naming the key."""

from __future__ import annotations

import pytest
from workflow_api import parse_workflow


@pytest.mark.parametrize(
    "change, words",
    [
        ({"analysis": {"top_k": 13}}, "analysis.top_k: 13 top images per neuron, but"),
        ({"analysis": {"layers": [2]}}, "analysis.layers: layer 2 is out of range"),
        ({"analysis": {"layers": [-3]}}, "analysis.layers: layer -3 is out of range"),
        ({"gradcam": {"layer": 5}}, "gradcam.layer: layer 5 is out of range"),
        ({"models": "twice"}, "models: model names must be unique"),
        ({"dataset": {"colors": ["red", "purple2"]}}, "dataset.colors[1]"),
        ({"analysis": {"n_neurons": -1}}, "analysis.n_neurons"),
        ({"analysis": {"top_k": "ten"}}, "not of type 'integer'"),
        ({"analysis": {"topk": 3}}, "topk"),
    ],
)
def test_bad_config_stops_the_parse_naming_the_key(tmp_path, tiny_config, change, words):
    for block, values in change.items():
        if values == "twice":
            tiny_config["models"] = tiny_config["models"] * 2
        else:
            tiny_config.setdefault(block, {}).update(values)
    with pytest.raises(Exception) as err:
        parse_workflow(tmp_path, tiny_config)
    assert words in str(err.value)
    assert not (tmp_path / "results").exists()
