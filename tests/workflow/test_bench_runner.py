"""The benchmarks' one job runner and the settings their jobs get (benchmarks/_common.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _common  # noqa: E402
import bench_analysis  # noqa: E402


def _job(name, code, deps=()):
    return _common.Job(name, [sys.executable, "-c", code], list(deps))


def test_jobs_run_after_their_dependencies_and_report(tmp_path):
    out = tmp_path / "order.txt"
    write = f"open({str(out)!r}, 'a').write('{{}}\\n'); print('RESULT {{{{\"x\": 1}}}}')"
    jobs = [
        _job("last", write.format("last"), deps=["a", "b"]),
        _job("a", write.format("a")),
        _job("b", write.format("b")),
    ]
    _common.run_jobs(jobs, 2, tmp_path / "logs")
    assert out.read_text().split()[-1] == "last"
    assert all(j.report == {"x": 1} and j.end >= j.start for j in jobs)
    assert jobs[0].start >= max(jobs[1].end, jobs[2].end)


def test_a_failed_job_raises_with_its_log(tmp_path):
    with pytest.raises(RuntimeError, match=r"job bad failed \(1\):\swent wrong"):
        _common.run_jobs([_job("bad", "raise SystemExit('went wrong')")], 1, tmp_path)


def test_jobs_get_the_parents_settings_from_the_workflow_config():
    args = bench_analysis.parse_args(["--workdir=/w", "--store=/s", "--images=100", "--top-k=7"])
    again = bench_analysis.parse_args(_common.job_argv(args))
    assert vars(again) == {**vars(args), "keep": False}
    s = bench_analysis.settings(again)
    assert s["neurons"] == {"top_k": 7, "reduce": "mean", "tokens": "all"}  # config defaults
    assert s["statistics"]["bootstrap"] == _common.workflow_config()["analysis"]["bootstrap"]
    assert bench_analysis.geometry(again)["tokens"] == 257  # ViT-L-14 at 224 px


def test_the_stage_projection_schedules_jobs_along_their_dependencies():
    import bench_sae_stage

    jobs = [
        {"name": "tokens", "duration": 10, "deps": []},
        {"name": "other", "duration": 4, "deps": ["not-in-the-stage"]},
        *({"name": f"train{i}", "duration": 6, "deps": ["tokens"]} for i in range(4)),
        {"name": "measure", "duration": 3, "deps": [f"train{i}" for i in range(4)]},
    ]
    # tokens 0-10 (other 0-4 beside it); trains two by two 10-16, 16-22; measure 22-25
    assert bench_sae_stage.project_wall(jobs, cores=2) == 25
    assert bench_sae_stage.project_wall(jobs, cores=1) == 10 + 4 + 24 + 3
    with pytest.raises(ValueError, match="never finish"):
        bench_sae_stage.project_wall([{"name": "a", "duration": 1, "deps": ["a"]}], 2)


def test_the_stage_benchmark_reads_the_dry_runs_rules():
    import bench_sae_stage

    text = "Building DAG of jobs...\nJob stats:\njob       count\n-----  -----\n"
    text += "train_sae     4\nsample_sae_tokens   1\ntotal   5\n"
    assert bench_sae_stage.dry_run_rules(text) == {"train_sae": 4, "sample_sae_tokens": 1}


def test_the_geometry_benchmark_takes_the_configs_null_draws():
    import bench_geometry

    g = _common.workflow_config()["sharing"]["geometry"]
    args = bench_geometry.parse([])
    assert (args.images, args.n_null, args.n_bins) == (500, g["n_null"], g["n_bins"])
    quick = bench_geometry.parse(["--quick"])
    assert (quick.images, quick.blocks, quick.n_null) == (100, 2, 19)
    again = bench_geometry.parse(_common.job_argv(args, ("job", "keep")))
    assert vars(again) == {**vars(args), "keep": False}
    assert bench_geometry.vision("ViT-L-14")["tokens"] == 257
