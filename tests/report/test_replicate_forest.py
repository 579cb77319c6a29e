"""The replicate forest's overlap diamond is the neuron basis's over the neuron pool, even
when the pooled table lists the autoencoder basis's per-layer rows first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlmbinding.report import figures
from vlmbinding.report.figures.replicates import neuron_pool_overlap


def _pooled_row(base, measure, basis, layers, metric, r):
    return {
        "base": base, "measure": measure, "basis": basis, "layers": layers, "metric": metric,
        "k": 2, "r_pooled": r, "ci_low": r - 0.1, "ci_high": r + 0.1,
    }  # fmt: skip


def _tables():
    summary = pd.DataFrame(
        {
            "model": ["toy", "toy/replicate-1"],
            "base": ["toy", "toy"],
            "role": ["trained", "trained"],
            "r_D": [-0.4, -0.2],
            "r_D_low": [-0.6, -0.4],
            "r_D_high": [-0.2, 0.0],
            "r_M": [0.2, 0.1],
            "r_M_low": [0.0, -0.1],
            "r_M_high": [0.4, 0.3],
        }
    )
    rows = []
    for metric in ("D", "M"):
        rows += [  # sae (per layer) first, then a one-block neuron row, then the pool
            _pooled_row("toy", "overlap", "sae", "0", metric, 0.9),
            _pooled_row("toy", "overlap", "sae", "1", metric, 0.8),
            _pooled_row("toy", "neuron_sharing", "neurons", "1", metric, 0.7),
            _pooled_row("toy", "overlap", "neurons", "1", metric, 0.6),
            _pooled_row("toy", "overlap", "neurons", "0,1", metric, -0.35),
            _pooled_row("toy", "S", "", "", metric, 0.05),
        ]
    return summary, pd.DataFrame(rows)


def test_the_overlap_diamond_is_the_neuron_pools_not_the_first_row():
    summary, pooled = _tables()
    picked = neuron_pool_overlap(pooled)
    assert set(picked["basis"]) == {"neurons"} and set(picked["layers"]) == {"0,1"}
    assert sorted(picked["metric"]) == ["D", "M"]
    assert np.allclose(picked["r_pooled"], -0.35)
    fig = figures.replicate_forest(summary, pooled)
    notes = [t.get_text() for ax in fig.axes for t in ax.texts]
    overlap_notes = [t for t in notes if t.startswith("overlap z:")]
    assert overlap_notes == ["overlap z: -0.35 [-0.45, -0.25]"] * 2
    assert neuron_pool_overlap(pooled.drop(columns="measure")).empty
