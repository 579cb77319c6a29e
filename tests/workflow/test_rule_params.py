"""What the rules pass to their scripts and ask of the scheduler, read from the parsed
workflow (no job runs)."""

from __future__ import annotations

import pytest
from workflow_api import parse_workflow


@pytest.mark.parametrize("mode", ["model", "reference"])
def test_gradcam_and_binding_follow_the_activations_preprocessing(tmp_path, tiny_config, mode):
    tiny_config["activations"]["preprocess"] = mode
    wf = parse_workflow(tmp_path, tiny_config)
    assert wf.get_rule("explain_bindings").params.preprocess == mode
    # The binding test reads the image embeddings the extraction made with this setting.
    binding = wf.get_rule("evaluate_binding")
    assert "results/{model}/activations.zarr" in [str(f) for f in binding.input]
    assert wf.get_rule("extract_activations").params.activations["preprocess"] == mode
