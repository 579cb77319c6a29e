"""The workflow on a real SLURM through profiles/slurm (run by tests/slurm/run.sh).

The profile is edited exactly as docs/cluster.md's set-up says, then the tiny test
workflow runs through it; its jobs must really go through SLURM and give the same results
as a local run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_workflow

pytestmark = pytest.mark.skipif(
    not os.environ.get("SLURM_CONF") or not shutil.which("sbatch"),
    reason="needs a running SLURM: run `make test-slurm` (tests/slurm/run.sh starts one)",
)


def readme_commands() -> list[str]:
    """The shell lines of docs/cluster.md's set-up, in order (comments dropped)."""
    page = (REPO / "docs" / "cluster.md").read_text()
    section = page.split("## Set-up")[1].split("\n## ")[0]
    block = section.split("```bash")[1].split("```")[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["models"] = config["models"][:1]
    local = tmp_path_factory.mktemp("local")
    run_workflow(local, config)

    cluster = tmp_path_factory.mktemp("cluster")
    # follow docs/cluster.md word for word, in a copy of the profiles folder: every line but
    # the final snakemake call, which runs below on the test config
    shutil.copytree(REPO / "profiles", cluster / "profiles")
    lines = readme_commands()
    assert lines[-1].startswith("snakemake --profile profiles/mycluster")
    for line in lines[:-1]:
        line = line.replace("<partition>", "debug").replace("<account>", "root")
        subprocess.run(line, shell=True, check=True, cwd=cluster, executable="/bin/bash")
    proc = run_workflow(
        cluster,
        config,
        *lines[-1].split()[1:3],  # --profile profiles/mycluster
        "--slurm-init-seconds-before-status-checks",
        "2",
    )
    return local, cluster, proc


def test_jobs_went_through_slurm(runs):
    _, cluster, proc = runs
    out = proc.stdout + proc.stderr
    job_ids = re.findall(r"SLURM jobid (\d+)", out)
    assert len(job_ids) >= 5, out[-3000:]
    # the GPU rule went through SLURM too, asking for its GPU
    jobs = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True)
    gpu_rule = [j for j in jobs.stdout.splitlines() if "Comment=rule_extract_activations" in j]
    assert gpu_rule and ("gres/gpu=1" in gpu_rule[0] or "gpu:1" in gpu_rule[0]), gpu_rule
    accounted = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i %j %T"], capture_output=True, text=True
    ).stdout
    for job_id in job_ids:
        assert job_id in accounted
    # and Snakemake's own log of the run names them
    run_log = max((cluster / ".snakemake" / "log").glob("*.snakemake.log")).read_text()
    assert all(f"SLURM jobid {j}" in run_log for j in job_ids)


@pytest.mark.parametrize(
    "table",
    ["neurons.parquet", "superposition.parquet", "separability.parquet", "correlation.parquet"],
)
def test_results_equal_a_local_run(runs, table):
    local, cluster, _ = runs
    a = pd.read_parquet(local / "results" / "toy" / table)
    b = pd.read_parquet(cluster / "results" / "toy" / table)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)
