"""End-to-end: the intervention stage on the tiny config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_workflow

# make test-slow (pytest.ini): a whole workflow run of an optional stage
pytestmark = pytest.mark.slow


def test_tiny_intervention_run(tmp_path, tiny_config):
    config = tiny_config
    config["interventions"] = {"enabled": True, "control_draws": 2}  # select: shared
    # tuning every neuron to 16 features jointly needs more images than the tiny 12
    config["dataset"]["images_per_count"] = 14
    targets = [
        "results/toy/figures/interventions.png",
        "results/toy/figures/interventions_example.png",
    ]
    run_workflow(tmp_path, config, *targets)
    effects = pd.read_parquet(tmp_path / "results/toy/interventions/effects.parquet")
    assert len(effects) == 120
    for col in ["f1", "f2", "S", "n_neurons", "overlap", "n_f1_only", "z", "p"] + [
        f"d{m}{suffix}"
        for m in ("D", "M", "binding")
        for suffix in ("", "_control_mean", "_control_sd", "_z", "_p", "_f1_only", "_f2_only")
    ]:
        assert col in effects.columns, col
    assert (effects["select"] == "shared").all() and (effects["n_neurons"] > 0).any()
    done = effects[(effects["n_neurons"] > 0) & (effects["n1"] > 0) & (effects["n2"] > 0)]
    assert np.isfinite(done["dM"]).all() and np.isfinite(done["dM_control_mean"]).all()
    assert done["p"].between(1 / 3, 1).all()
    summary = pd.read_csv(tmp_path / "results/toy/interventions/summary.tsv", sep="\t")
    random = summary[(summary["measure"] == "dM") & (summary["contrast"] == "random")]
    assert len(random) == 1 and (random["unit"] == "feature").all()
    assert random["n_pairs"].iloc[0] == len(done)
    for target in targets:
        assert (tmp_path / target).stat().st_size > 0
