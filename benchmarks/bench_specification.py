"""Benchmark: the specification curve on a paper-scale activation store.

Target: on 2 cores, the default grid (top_k 10/30/100, n_neurons 100/1000, layer pools
last-10/all/thirds, reduce mean/max, tokens all/patches, space full/pca, subset
all/no_position: 480 specifications x 2 metrics, 1000 feature-bootstrap resamples and 999
Mantel permutations each) takes at most 3 minutes of wall time from the store to
specifications.parquet, and no job's peak resident memory reaches 4 GB.

The grid is the workflow config's `robustness` block (config/config.yaml with its schema's
defaults), each of --top-k, --n-neurons, --pools, --bootstrap, --permutations, --seed
overriding its key.

Set-up (not timed): the dataset and the synthetic store of `bench_analysis.py` (500 images
x 257 tokens x 24 layers x 1024 neurons, float16, planted feature neurons and embedding
directions), made by that script's own functions; an existing complete store of the right
shape is reused (--store).

Timed, each job in a fresh Python process as Snakemake runs `script:` rules, by the job
runner of benchmarks/_common.py, at most --cores at once, OMP/OpenBLAS/MKL threads 1 per
job (Snakemake sets them to the rules' threads: 1):
  layer L        steps.layer_specifications    (specification_neurons.py; every block in
                                               any pool: all 24)
  separability   steps.measure_separability    (measure_separability.py; the grid reuses it)
  assemble       steps.assemble_specifications (assemble_specifications.py)
Peak RSS per job is that process's VmHWM (see bench_analysis.py for why not ru_maxrss).

Command (from the repository root):

    .venv/bin/python benchmarks/bench_specification.py                    # paper scale
    .venv/bin/python benchmarks/bench_specification.py --store /tmp/bench_store.zarr --keep
    .venv/bin/python benchmarks/bench_specification.py --images 100 --depth 6 --width 256
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import bench_analysis as ba
from _common import CpuShare, Job, job_argv, run_jobs


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", default=None)
    p.add_argument("--store", default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--arch", default="ViT-L-14")
    p.add_argument("--depth", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--embed-dim", type=int, default=None)
    p.add_argument("--chunk-images", type=int, default=None)
    p.add_argument("--config", default=None, help="workflow config (config/config.yaml)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--top-k", type=int, nargs="+", default=None)
    p.add_argument("--n-neurons", type=int, nargs="+", default=None)
    p.add_argument("--pools", nargs="+", default=None, help="robustness.layers")
    p.add_argument("--bootstrap", type=int, default=None)
    p.add_argument("--permutations", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)
    p.add_argument("--layer", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def analysis_args(args):
    """The bench_analysis namespace for the same workdir, store and config."""
    shared = ("workdir", "store", "images", "arch", "depth", "width", "embed_dim")
    shared += ("chunk_images", "config")
    keep = argparse.Namespace(**{k: getattr(args, k) for k in shared})
    return ba.parse_args(job_argv(keep))


def grid(args) -> dict:
    """The config's robustness block with this run's overrides."""
    block = dict(ba.settings(analysis_args(args))["robustness"])
    overrides = {"top_k": args.top_k, "n_neurons": args.n_neurons, "layers": args.pools}
    overrides |= {"bootstrap": args.bootstrap, "permutations": args.permutations}
    overrides["seed"] = args.seed
    return block | {k: v for k, v in overrides.items() if v is not None}


def grid_dir(args) -> Path:
    return Path(args.workdir) / "results" / "robustness"


def pools(args) -> dict[str, list[int]]:
    from vlmbinding.analysis.specification import layer_pools

    return layer_pools(grid(args)["layers"], ba.geometry(analysis_args(args))["layers"])


def blocks(args) -> list[int]:
    return sorted({b for pool in pools(args).values() for b in pool})


# --- jobs ---------------------------------------------------------------------------------


def job_layer(args) -> dict:
    from vlmbinding.analysis import steps
    from vlmbinding.atomic import write_parquet

    b, g = analysis_args(args), grid(args)
    p = ba.paths(b)
    neurons = {k: g[k] for k in ("top_k", "reduce", "tokens")}
    return ba.timed(
        lambda: steps.layer_specifications(
            p["images"], p["objects"], p["store"], args.layer, ba.vocabulary(b), **neurons
        ),
        lambda table: write_parquet(table, grid_dir(args) / f"layer_{args.layer}.parquet"),
    )


def job_separability(args) -> dict:
    return ba.job_separability(analysis_args(args))


def job_assemble(args) -> dict:
    from vlmbinding.analysis import steps
    from vlmbinding.atomic import write_parquet

    b = analysis_args(args)
    s = ba.settings(b)
    layers = [grid_dir(args) / f"layer_{x}.parquet" for x in blocks(args)]

    def write(result):
        write_parquet(result[0], grid_dir(args) / "specifications.parquet")
        result[1].to_csv(grid_dir(args) / "summary.tsv", sep="\t", index=False)

    return ba.timed(
        lambda: steps.assemble_specifications(
            layers,
            ba.paths(b)["separability"],
            ba.vocabulary(b),
            pools(args),
            grid(args),
            s["selection"]["ratio_threshold"],
        ),
        write,
    )


JOBS = {"layer": job_layer, "separability": job_separability, "assemble": job_assemble}


# --- the parent ---------------------------------------------------------------------------


def command(args, kind: str, layer: int | None = None) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *job_argv(args), "--job", kind]
    return cmd + (["--layer", str(layer)] if layer is not None else [])


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.job is not None:
        ba.run_job(args, JOBS)
        return
    temp_work = args.workdir is None
    args.workdir = str(Path(args.workdir or tempfile.mkdtemp(prefix="bench_spec_")).resolve())
    args.store = str(Path(args.store or Path(args.workdir) / "activations.zarr").resolve())
    b = analysis_args(args)
    store_existed = Path(args.store).exists()
    try:
        ba.paths(b)["separability"].parent.mkdir(parents=True, exist_ok=True)
        grid_dir(args).mkdir(parents=True, exist_ok=True)
        create, _, _ = ba.prepare(b)
        store_existed = store_existed and create is None
        jobs = [Job(f"layer_{x}", command(args, "layer", x), kind="layer") for x in blocks(args)]
        jobs.append(Job("separability", command(args, "separability"), kind="separability"))
        jobs.append(Job("assemble", command(args, "assemble"), [j.name for j in jobs]))
        share = CpuShare()
        total = run_jobs(jobs, args.cores, Path(args.workdir) / "logs", threads=1)
        summarise(
            args,
            total,
            {j.name: {**j.report, "wall_s": j.wall} for j in jobs},
            pools(args),
            share.report(),
        )
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
    geo, g = ba.geometry(analysis_args(args)), grid(args)
    print()
    print(
        f"store {args.images} x {geo['tokens']} x {geo['layers']}x{geo['width']}; pools "
        f"{list(layer_pools)}; top_k {g['top_k']}; n_neurons {g['n_neurons']}; reduce "
        f"{g['reduce']}; tokens {g['tokens']}; {g['bootstrap']} bootstrap / "
        f"{g['permutations']} permutations; {args.cores} jobs at once"
    )
    print(sharing)
    walls = [r["wall_s"] for r in layers.values()]
    print(
        f"per-block jobs: {len(layers)}, {min(walls):.1f}-{max(walls):.1f} s each (imports "
        f"{sum(r['import_s'] for r in layers.values()) / len(layers):.1f} s, "
        "steps.layer_specifications "
        f"{sum(r['step_s'] for r in layers.values()) / len(layers):.1f} s mean), peak RSS "
        f"max {max(r['vm_hwm_mb'] for r in layers.values()):.0f} MiB"
    )
    for name in ("separability", "assemble"):
        r = reports[name]
        print(
            f"{name}: wall {r['wall_s']:.1f} s (library call {r['step_s']:.1f} s), "
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
