"""Benchmark: the specification curve on a paper-scale activation store.

Target: on 2 cores, the default grid (top_k 10/30/100, n_neurons 100/1000, layer pools
last-10/all/thirds, reduce mean/max, tokens all/patches, space full/pca, subset
all/no_position: 480 specifications x 2 metrics, 1000 feature-bootstrap resamples and 999
Mantel permutations each) takes at most 3 minutes of wall time from the store to
specifications.parquet, and no job's peak resident memory reaches 4 GB.

Set-up (not timed): the dataset and the synthetic store of `bench_analysis.py` (500 images
x 257 tokens x 24 layers x 1024 neurons, float16, zstd level 1, planted feature neurons and
embedding directions), made by that script's own functions; an existing complete store of
the right shape is reused (--store).

Timed, each job in a fresh Python process as Snakemake runs `script:` rules, at most --cores
at once, OMP/OpenBLAS/MKL threads 1 per job (Snakemake sets them to the rules' threads: 1):
  specification_neurons layer L  (one per block in any pool: all 24)
  separability                   (measure_separability.py; the grid reuses its table)
  assemble                       (assemble_specifications.py: every specification)
Peak RSS per job is that process's VmHWM (see bench_analysis.py for why not ru_maxrss).

Command (from the repository root):

    .venv/bin/python benchmarks/bench_specification.py                    # paper scale
    .venv/bin/python benchmarks/bench_specification.py --store /tmp/bench_store.zarr --keep
    .venv/bin/python benchmarks/bench_specification.py --images 100 --depth 6 --width 256
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_analysis as ba
from _common import CpuShare, vm_hwm_mb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", default=None)
    p.add_argument("--store", default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--depth", type=int, default=24)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--embed-dim", type=int, default=768)
    p.add_argument("--chunk-images", type=int, default=32)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--top-k", type=int, nargs="+", default=[10, 30, 100])
    p.add_argument("--n-neurons", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--pools", nargs="+", default=["last-10", "all", "thirds"])
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--permutations", type=int, default=999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)
    p.add_argument("--layer", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def analysis_args(args):
    """The bench_analysis namespace for the same workdir and store (set-up and separability)."""
    return ba.parse_args(
        [
            f"--workdir={args.workdir}",
            f"--store={args.store}",
            f"--images={args.images}",
            f"--depth={args.depth}",
            f"--width={args.width}",
            f"--embed-dim={args.embed_dim}",
            f"--chunk-images={args.chunk_images}",
            f"--seed={args.seed}",
        ]
    )


def grid_dir(args) -> Path:
    return Path(args.workdir) / "results" / "robustness"


def pools(args) -> dict[str, list[int]]:
    from vlmbinding.analysis.specification import layer_pools

    return layer_pools(args.pools, args.depth)


# --- jobs ---------------------------------------------------------------------------------


def job_layer(args) -> dict:
    """specification_neurons.py for one block."""
    t0 = time.perf_counter()
    from vlmbinding.analysis.specification import layer_affinity_grid, usable_top_ks
    from vlmbinding.data.reading import dataset_presence, open_checked_store
    from vlmbinding.data.vocab import Vocabulary
    from vlmbinding.extraction.store import layer_slice

    t1 = time.perf_counter()
    p, vocab = ba.paths(analysis_args(args)), Vocabulary()
    image_ids, presence = dataset_presence(p["images"], p["objects"], vocab)
    acts = layer_slice(open_checked_store(p["store"], image_ids), args.layer)
    t2 = time.perf_counter()
    table = layer_affinity_grid(
        args.layer, acts, presence, vocab.features, usable_top_ks(args.top_k, len(image_ids))
    )
    table.to_parquet(grid_dir(args) / f"layer_{args.layer}.parquet", index=False)
    return {"import_s": t1 - t0, "read_s": t2 - t1, "compute_s": time.perf_counter() - t2}


def job_separability(args) -> dict:
    return ba.job_separability(analysis_args(args))


def job_assemble(args) -> dict:
    """assemble_specifications.py."""
    t0 = time.perf_counter()
    import pandas as pd

    from vlmbinding.analysis.specification import specification_summary, specification_table
    from vlmbinding.data.vocab import Vocabulary

    t1 = time.perf_counter()
    p = ba.paths(analysis_args(args))
    layer_pools = pools(args)
    blocks = sorted({b for pool in layer_pools.values() for b in pool})
    grid = pd.concat(
        [pd.read_parquet(grid_dir(args) / f"layer_{b}.parquet") for b in blocks],
        ignore_index=True,
    )
    t2 = time.perf_counter()
    table = specification_table(
        grid,
        pd.read_parquet(p["separability"]),
        Vocabulary().feature_kinds,
        layer_pools,
        args.n_neurons,
        n_boot=args.bootstrap,
        n_perm=args.permutations,
        seed=args.seed,
    )
    table.to_parquet(grid_dir(args) / "specifications.parquet", index=False)
    specification_summary(table).to_csv(grid_dir(args) / "summary.tsv", sep="\t", index=False)
    return {"import_s": t1 - t0, "read_s": t2 - t1, "compute_s": time.perf_counter() - t2}


JOBS = {"layer": job_layer, "separability": job_separability, "assemble": job_assemble}


# --- the parent ---------------------------------------------------------------------------


def command(args, kind: str, layer: int | None = None) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--job", kind]
    if layer is not None:
        cmd += ["--layer", str(layer)]
    for name in ("workdir", "store", "images", "depth", "width", "embed_dim", "chunk_images"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    cmd += ["--top-k", *map(str, args.top_k), "--n-neurons", *map(str, args.n_neurons)]
    cmd += ["--pools", *args.pools, f"--bootstrap={args.bootstrap}"]
    cmd += [f"--permutations={args.permutations}", f"--seed={args.seed}"]
    return cmd


def run(args, jobs: list[tuple[str, str, int | None, list[str]]]) -> tuple[float, dict]:
    """Run (name, kind, layer, deps) jobs along their dependencies, --cores at once."""
    env = {**os.environ, **dict.fromkeys(ba.THREAD_VARIABLES, "1")}
    logs = Path(args.workdir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    waiting, running, done, out = list(jobs), {}, {}, {}
    t0 = time.perf_counter()
    while waiting or running:
        for job in [j for j in waiting if set(j[3]) <= set(done)]:
            if len(running) >= args.cores:
                break
            waiting.remove(job)
            log = open(logs / f"{job[0]}.log", "w")  # noqa: SIM115 - closed when it ends
            proc = subprocess.Popen(
                command(args, job[1], job[2]), stdout=log, stderr=subprocess.STDOUT, env=env
            )
            running[proc.pid] = (job, log, time.perf_counter() - t0)
        pid, status, _ = os.wait4(-1, 0)
        if pid not in running:
            continue
        job, log, start = running.pop(pid)
        log.close()
        text = (logs / f"{job[0]}.log").read_text()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"job {job[0]} failed:\n{text[-4000:]}")
        report = json.loads([x for x in text.splitlines() if x.startswith("RESULT ")][-1][7:])
        report["wall_s"] = time.perf_counter() - t0 - start
        done[job[0]] = report
        out[job[0]] = report
    return time.perf_counter() - t0, out


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.job is not None:
        report = JOBS[args.job](args)
        report["vm_hwm_mb"] = vm_hwm_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        report["cpu_s"] = usage.ru_utime + usage.ru_stime
        print("RESULT " + json.dumps(report), flush=True)
        return
    temp_work = args.workdir is None
    args.workdir = str(Path(args.workdir or tempfile.mkdtemp(prefix="bench_spec_")).resolve())
    args.store = str(Path(args.store or Path(args.workdir) / "activations.zarr").resolve())
    b = analysis_args(args)
    store_existed = Path(args.store).exists()
    try:
        ba.paths(b)["separability"].parent.mkdir(parents=True, exist_ok=True)
        grid_dir(args).mkdir(parents=True, exist_ok=True)
        ba.ensure_dataset(b)
        if ba.store_is_usable(b):
            print(f"reusing the complete store {args.store}", flush=True)
        else:
            store_existed = False
            print(f"creating {args.store} (not timed) ...", flush=True)
            ba.run_jobs(b, [ba.Job("create_store", "create_store")], 1)
        layer_pools = pools(args)
        blocks = sorted({x for pool in layer_pools.values() for x in pool})
        jobs = [(f"layer_{x}", "layer", x, []) for x in blocks]
        jobs += [("separability", "separability", None, [])]
        jobs += [("assemble", "assemble", None, [j[0] for j in jobs])]
        share = CpuShare()
        total, reports = run(args, jobs)
        summarise(args, total, reports, layer_pools, share.report())
    finally:
        if not args.keep:
            if not store_existed:
                shutil.rmtree(args.store, ignore_errors=True)
            if temp_work:
                shutil.rmtree(args.workdir, ignore_errors=True)
        else:
            print(f"kept {args.workdir} and {args.store}")


def summarise(args, total, reports, layer_pools, sharing) -> None:
    import pandas as pd

    specs = pd.read_parquet(grid_dir(args) / "specifications.parquet")
    layers = {k: v for k, v in reports.items() if k.startswith("layer_")}
    print()
    print(
        f"store {args.images} x 257 x {args.depth}x{args.width} float16; pools "
        f"{list(layer_pools)}; top_k {args.top_k}; n_neurons {args.n_neurons}; "
        f"{args.bootstrap} bootstrap / {args.permutations} permutations; {args.cores} jobs at once"
    )
    print(sharing)
    walls = [r["wall_s"] for r in layers.values()]
    print(
        f"per-block jobs: {len(layers)}, {min(walls):.1f}-{max(walls):.1f} s each (read "
        f"{sum(r['read_s'] for r in layers.values()) / len(layers):.1f} s, compute "
        f"{sum(r['compute_s'] for r in layers.values()) / len(layers):.1f} s mean), peak RSS "
        f"max {max(r['vm_hwm_mb'] for r in layers.values()):.0f} MiB"
    )
    for name in ("separability", "assemble"):
        r = reports[name]
        print(
            f"{name}: wall {r['wall_s']:.1f} s (compute {r['compute_s']:.1f} s), "
            f"peak RSS {r['vm_hwm_mb']:.0f} MiB"
        )
    peak = max(r["vm_hwm_mb"] for r in reports.values())
    print(
        f"specification curve: {len(specs)} rows ({len(specs) // 2} specifications x 2 "
        f"metrics), total wall {total:.1f} s, largest job peak RSS {peak:.0f} MiB"
    )
    # On a shared machine the wall time measures the other users too: the jobs' own CPU
    # time bounds what 2 free cores would take (parallel stage / cores, then the assembly).
    parallel = sum(r["cpu_s"] for k, r in reports.items() if k != "assemble")
    free = parallel / args.cores + reports["assemble"]["cpu_s"]
    print(
        f"CPU time of the jobs: {parallel + reports['assemble']['cpu_s']:.1f} CPU-s "
        f"(assembly {reports['assemble']['cpu_s']:.1f}); on {args.cores} free cores about "
        f"{free:.0f} s of wall time"
    )
    print(
        f"target total <= 180 s: {'met' if total <= 180 else 'NOT met'}; "
        f"target every job < 4 GB: {'met' if peak * 2**20 < 4e9 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
