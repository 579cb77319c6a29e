"""The sharing page's and figures' targets follow sharing.geometry and sharing.sae."""

from __future__ import annotations

from conftest import REPO

from vlmbinding.workflow.config import validate_config
from vlmbinding.workflow.entries import model_entries
from vlmbinding.workflow.targets import sharing_page_inputs, sharing_targets


def configured(tiny_config, geometry=False, sae=False, twins=False):
    tiny_config["sharing"] = {
        "enabled": True,
        "geometry": {"enabled": geometry},
        "sae": {"enabled": sae},
    }
    tiny_config.setdefault("controls", {})["random_weights"] = twins
    config = validate_config(tiny_config, REPO / "config" / "schema.yaml")
    return config, {m["name"]: m for m in model_entries(config)}


def test_the_figures_and_page_are_asked_for_only_with_their_blocks(tiny_config):
    config, models = configured(tiny_config)
    plain = sharing_targets(config, "toy")
    assert "results/toy/sharing.html" in plain
    assert not any(f in t for t in plain for f in ("geometry.png", "sae_", "sharing_sae"))
    assert set(sharing_page_inputs(models, config, "toy", [0, 1])) == {
        "correlation",
        "sharing_correlation",
    }
    config, models = configured(tiny_config, geometry=True, sae=True, twins=True)
    full = sharing_targets(config, "toy")
    for f in ("geometry", "sharing_sae", "sae_training", "sae_resolved"):
        assert f"results/toy/figures/{f}.png" in full
    inputs = sharing_page_inputs(models, config, "toy", [0, 1])
    assert inputs["sanity"] == "results/toy/controls/sanity.parquet"
    assert inputs["beyond"] == "results/toy/geometry_beyond.parquet"
    assert inputs["resolved"] == "results/toy/sae/resolved.tsv"
    assert inputs["training"] == [f"results/toy/sae/layer_{k}/training.tsv" for k in (0, 1)]
    twin = sharing_page_inputs(models, config, "toy/controls/random", [0, 1], ["toy"])
    assert "sanity" not in twin  # a twin has no sanity table of its own
    assert "beyond" not in sharing_page_inputs(models, config, "toy", [0, 1], ["toy"])
