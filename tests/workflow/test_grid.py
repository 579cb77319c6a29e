"""The parse-time grid helpers: pure Python, so reading the params blocks loads no numpy,
pandas or scipy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from conftest import REPO

from vlmbinding.analysis import specification, specification_joint
from vlmbinding.workflow import grid


def test_importing_the_params_blocks_imports_no_pandas_scipy_or_numpy():
    code = (
        "import sys\n"
        "import vlmbinding.workflow.params, vlmbinding.workflow.grid\n"
        "loaded = [m for m in ('numpy', 'pandas', 'scipy', 'torch') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd="/",
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "workflow" / "scripts")},
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_thirds_split_as_numpy_array_split_does():
    for depth in range(1, 40):
        want = {
            f"third-{i + 1}": p.tolist()
            for i, p in enumerate(np.array_split(np.arange(depth), 3))
            if len(p)
        }
        assert grid.layer_pools(["thirds"], depth) == want, depth


def test_the_analysis_modules_re_export_the_grid_helpers():
    assert specification.layer_pools is grid.layer_pools
    assert specification_joint.grid_with_main is grid.grid_with_main
    assert specification_joint.pools_with_main is grid.pools_with_main
