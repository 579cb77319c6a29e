"""Benchmark: the whole sharing stage of one model, autoencoder basis included, as Snakemake
runs it: each job's CPU seconds and the stage's projected wall time on an unloaded machine.

Target (the issue): the demo's toy model, SAEs included, in at most 3 minutes on the 2-core
machine. The machine this runs on is usually shared, so the measured wall time says little;
the figures to read are CPU seconds, and the projection from them.

Set-up (not timed): a finished run's results/ (e.g. `make demo`'s; --results) is copied into
a scratch folder (mtimes kept; the finished run is only read), the stage's outputs and the
autoencoders' fresh dataset are removed there, and sharing.sae.enabled is switched on (with
--set KEY=VALUE overrides, e.g. --set sharing.sae.epochs=3). A dry run first checks that
only the stage's rules would run (else the copy lacks something upstream: an error).

Timed: `snakemake --cores N` for the model's sharing_correlation.parquet, sae/resolved.tsv
and figures/sharing.png. Every Python process (Snakemake and each job's script) reports its
own CPU seconds when it exits (benchmarks/_probe/sitecustomize.py on PYTHONPATH). Printed:
per job, its CPU and wall seconds (wall is stretched by other processes' load); per rule,
the CPU summed; Snakemake's own CPU; the share of the machine other processes took; and the
projected wall time with no other load: the jobs list-scheduled along their dependencies,
at most N at once, each taking its CPU seconds (`project_wall`), plus Snakemake's own CPU.

    .venv/bin/python benchmarks/bench_sae_stage.py --results /path/to/demo/results
    .venv/bin/python benchmarks/bench_sae_stage.py --results ... --set sharing.sae.epochs=3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CpuShare  # noqa: E402

# the stage's rules (workflow/rules/sharing.smk, sae.smk); anything else in the dry run
# means the copied results lack an upstream file
STAGE_RULES = {
    "generate_replicate_dataset",
    "sample_sae_tokens",
    "train_sae",
    "measure_sharing",
    "measure_sharing_sae",
    "gather_sharing",
    "correlate_sharing",
    "resolve_sae",
    "plot_sharing",
}


def project_wall(jobs: list[dict], cores: int) -> float:
    """Wall seconds of `jobs` ({"name", "duration", "deps": [names]}) list-scheduled on
    `cores`: whenever a core is free, the first job (in list order) whose dependencies have
    finished starts; each runs for its duration. Dependencies outside the list count as done."""
    names = {j["name"] for j in jobs}
    finish: dict[str, float] = {}
    running: list[tuple[float, str]] = []  # (end, name)
    waiting = list(jobs)
    now = 0.0
    while waiting or running:
        ready = [j for j in waiting if all(d in finish or d not in names for d in j["deps"])]
        while ready and len(running) < cores:
            job = ready.pop(0)
            waiting.remove(job)
            running.append((now + float(job["duration"]), job["name"]))
        if not running:
            raise ValueError(
                f"jobs whose dependencies never finish: {[j['name'] for j in waiting]}"
            )
        running.sort()
        now, name = running.pop(0)
        finish[name] = now
    return now


def job_graph(records: list[dict]) -> list[dict]:
    """The probe's job records as project_wall jobs: a job depends on the jobs whose outputs
    it reads; in the order they started (as Snakemake chose)."""
    made = {out: r["name"] for r in records for out in r["output"]}
    return [
        {
            "name": r["name"],
            "duration": r["cpu_s"] + r["children_cpu_s"],
            "deps": sorted({made[i] for i in r["input"] if i in made} - {r["name"]}),
        }
        for r in sorted(records, key=lambda r: r["start"])
    ]


def read_probes(folder: Path) -> tuple[list[dict], list[dict]]:
    """(job records, other processes' records) the probe wrote into folder."""
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    jobs = [r for r in records if "rule" in r]
    for r in jobs:
        label = ",".join(f"{k}={v}" for k, v in r["wildcards"].items())
        r["name"] = f"{r['rule']}[{label}]"
    return jobs, [r for r in records if "rule" not in r]


def overlay(sets: list[str]) -> dict:
    """{"sharing": {"sae": {"enabled": True, ...}}} with each KEY=VALUE (YAML value) set."""
    import yaml

    config = {"sharing": {"sae": {"enabled": True}}}
    for item in sets:
        key, _, value = item.partition("=")
        node = config
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return config


def prepare(args, work: Path) -> list[str]:
    """Copy the finished run, remove the stage's outputs, write the overlay; the targets."""
    import yaml

    src = Path(args.results)
    model = args.model
    if not (src / model / "activations.zarr").exists():
        raise SystemExit(f"--results {src}: no {model}/activations.zarr (a finished run?)")
    dst = work / "results"
    if not dst.exists():
        dst.mkdir(parents=True)
        shutil.copytree(src / "dataset", dst / "dataset", symlinks=True)
        shutil.copytree(src / model, dst / model, symlinks=True)
    config = overlay(args.set)
    seed = config["sharing"]["sae"].get("dataset_seed", 1000)
    for stale in [
        dst / model / "sae",
        dst / model / "sharing",
        dst / model / "sharing.parquet",
        dst / model / "sharing_correlation.parquet",
        dst / model / "figures" / "sharing.png",
        dst / model / "figures" / "sharing.pdf",
        dst / "dataset" / f"seed-{seed}",
        work / "benchmarks",
        work / "logs",
    ]:
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    (work / "stage.yaml").write_text(yaml.safe_dump(config))
    return [
        f"results/{model}/sharing_correlation.parquet",
        f"results/{model}/sae/resolved.tsv",
        f"results/{model}/figures/sharing.png",
    ]


def snakemake(args, work: Path, targets: list[str], *extra: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("snakemake")),
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(work),
        "--configfile", str(REPO / args.configfile), str(work / "stage.yaml"),
        "--cores", str(args.cores),
        "--rerun-triggers", "mtime",
        *extra,
        "--", *targets,
    ]  # fmt: skip


def dry_run_rules(text: str) -> dict[str, int]:
    """Rule -> job count from a dry run's "Job stats" table."""
    rules, inside = {}, False
    for line in text.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            inside = True
        elif inside and parts and parts[0] == "total":
            break
        elif inside and len(parts) == 2 and parts[1].isdigit():
            rules[parts[0]] = int(parts[1])
    return rules


def check_dry_run(args, work, targets, env) -> None:
    done = subprocess.run(
        snakemake(args, work, targets, "--dry-run", "--quiet", "rules"),
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    text = done.stdout + done.stderr
    extra = set(dry_run_rules(text)) - STAGE_RULES
    if extra:
        raise SystemExit(
            f"the copy of {args.results} would also run {sorted(extra)}: it lacks their "
            f"outputs (a finished run of {args.configfile} needed)\n{text}"
        )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", required=True, help="a finished run's results/ (only read)")
    p.add_argument("--model", default="toy-clip")
    p.add_argument("--configfile", default="config/demo.yaml", help="relative to the repo")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE, e.g. sharing.sae.k=8")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--workdir", help="scratch folder (default: a temporary one, removed)")
    args = p.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_sae_stage_"))
    probes = work / "probes"
    try:
        targets = prepare(args, work)
        env = dict(os.environ)
        paths = [str(REPO / "benchmarks" / "_probe"), str(REPO / "workflow" / "scripts")]
        env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(":")
        check_dry_run(args, work, targets, env)
        shutil.rmtree(probes, ignore_errors=True)
        probes.mkdir(parents=True)
        env["BENCH_PROBE_DIR"] = str(probes)
        print(f"Sharing stage of {args.model} ({args.configfile}, {args.set or 'defaults'}), "
              f"--cores {args.cores}, in {work}", flush=True)  # fmt: skip
        share, t0 = CpuShare(), time.perf_counter()
        subprocess.run(snakemake(args, work, targets, "--quiet"), env=env, check=True)
        wall = time.perf_counter() - t0
        load = share.report()
        report(*read_probes(probes), wall, load, args.cores)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def report(jobs: list[dict], others: list[dict], wall: float, load: str, cores: int) -> None:
    print(f"{'job':<44} {'CPU s':>7} {'wall s':>7}")
    for r in sorted(jobs, key=lambda r: r["start"]):
        cpu = r["cpu_s"] + r["children_cpu_s"]
        print(f"{r['name']:<44} {cpu:7.1f} {r['wall_s']:7.1f}")
    by_rule: dict[str, float] = {}
    for r in jobs:
        by_rule[r["rule"]] = by_rule.get(r["rule"], 0.0) + r["cpu_s"] + r["children_cpu_s"]
    print("CPU s per rule: " + ", ".join(f"{k} {v:.1f}" for k, v in by_rule.items()))
    smk = [r for r in others if "snakemake" in Path(r["argv"][0]).name]
    own = sum(r["cpu_s"] for r in smk)  # the scheduler itself (its jobs are its children)
    in_jobs = sum(by_rule.values())
    # CPU of Snakemake's children the probes did not see: each job's interpreter teardown
    # after the probe wrote (atexit handlers run before it), shells; spread over the jobs
    unseen = max(0.0, sum(r["children_cpu_s"] for r in smk) - in_jobs)
    total = in_jobs + own + unseen
    graph = job_graph(jobs)
    for job in graph:
        job["duration"] += unseen / max(1, len(graph))
    projected = project_wall(graph, cores) + own
    print(
        f"total: {total:.1f} CPU s ({in_jobs:.1f} in the jobs' scripts, {unseen:.1f} in their "
        f"teardown and shells, {own:.1f} Snakemake itself)"
    )
    print(f"measured wall: {wall:.1f} s; {load}")
    print(
        f"projected wall with no other load: {projected:.0f} s ({projected / 60:.1f} min) on "
        f"{cores} cores (jobs list-scheduled along their dependencies, each its CPU seconds "
        "with the teardown spread evenly, plus Snakemake's own CPU)"
    )


if __name__ == "__main__":
    main()
