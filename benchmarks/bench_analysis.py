"""Benchmark: the analysis from a paper-scale activation store to the correlation table.

Target: on 2 cores, the whole analysis (neuron statistics of the analysed layers, gather,
superposition score, separability, correlation) takes at most 2 minutes of wall time, and
no job's peak resident memory reaches 4 GB.

Set-up (not part of the target, timed separately):
  * a real toy-shapes dataset of N images (`vlmbinding.data.toyshapes.generate_dataset`, 100 per
    object count 1..5 by default), its images.parquet and objects.parquet;
  * a synthetic activation store with the exact layout of `create_store` as
    `extract_activations` uses it: mlp_out [N, 257, depth*width] float16 (default
    500 x 257 x 24,576 = 6.3 GB uncompressed, 24 layers of width 1024), chunks
    (32, 257, width), zstd level 1, embeddings [N, 768] float32, and the attributes
    extract_activations writes (image_ids of images.parquet in order, complete=True).
    Values are standard normal, written batch by batch (at most two batches in memory),
    with 1/8 of each layer's units given a planted dependence on one or two features (the
    same offset on every token of an image that has the feature), and embeddings with a
    planted per-feature direction, so affinities, S, D and M are not pure noise. The store
    is built under <store>.partial and renamed when complete; an existing complete store
    of the right shape and image ids is reused.

Timed: every job in a fresh Python process (as Snakemake runs `script:` rules), with the
same library calls as the rule scripts (their few lines of glue copied here):
  neurons layer L  (neuron_statistics.py) for each analysed layer (default the last 10)
  gather           (gather_neurons.py)
  score            (score_superposition.py: n_neurons 1000, ratio threshold 0.3)
  separability     (measure_separability.py: PCA keeping 0.9 of the variance)
  correlation      (correlate_superposition.py: 10,000 bootstrap resamples, 9,999
                    Mantel permutations)
Jobs are scheduled along their dependencies with at most --cores running at once (as
`snakemake --cores 2` would; separability may run beside the neuron jobs), each with
OMP/OpenBLAS/MKL_NUM_THREADS set to --job-threads (default 1: Snakemake sets these to the
rule's `threads`, which is 1 for all analysis rules; 0 leaves them unset, so numpy's BLAS
takes every core and jobs side by side oversubscribe the CPU). Each job's peak
RSS is the VmHWM of that process's own address space, read from /proc/self/status as it
ends (not `ru_maxrss` from `os.wait4`/`RUSAGE_CHILDREN`: Linux carries the parent's RSS at
spawn time over into the child's ru_maxrss, so a parent that imported torch shows up as a
~0.9 GB floor under every job; the wait4 figure is printed beside it as an upper bound).
Each job also reports its import time and its read/compute time. Snakemake's own per-job
overhead is not included.

Command (from the repository root):

    .venv/bin/python benchmarks/bench_analysis.py                       # paper scale
    .venv/bin/python benchmarks/bench_analysis.py --store /tmp/bench_store.zarr --keep
    .venv/bin/python benchmarks/bench_analysis.py --images 100 --depth 12 --layers 4  # quick
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
from dataclasses import dataclass, field
from pathlib import Path

from _common import CpuShare, vm_hwm_mb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

TOKENS = 257  # ViT-L-14 at 224 px: 16 x 16 patches + CLS
GRID, IMAGE_SIZE, PATCH_SIZE = 16, 224, 14
OBJECT_COUNTS = [1, 2, 3, 4, 5]
GB = 1e9


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", default=None, help="dataset, tables and logs (default: temp)")
    p.add_argument("--store", default=None, help="activation store (default: <workdir>/...)")
    p.add_argument("--keep", action="store_true", help="keep the store and the work folder")
    p.add_argument("--images", type=int, default=500, help="images (a multiple of 5)")
    p.add_argument("--depth", type=int, default=24, help="blocks in the store")
    p.add_argument("--width", type=int, default=1024, help="MLP output width per block")
    p.add_argument("--embed-dim", type=int, default=768)
    p.add_argument("--chunk-images", type=int, default=32, help="activations.batch_size")
    p.add_argument("--layers", type=int, default=10, help="analyse the last N blocks")
    p.add_argument("--cores", type=int, default=2, help="jobs running at once")
    p.add_argument(
        "--job-threads",
        type=int,
        default=1,
        help="threads per job: OMP/OpenBLAS/MKL_NUM_THREADS as Snakemake sets them (0: unset)",
    )
    p.add_argument("--top-k", type=int, default=30)
    p.add_argument("--n-neurons", type=int, default=1000)
    p.add_argument("--ratio-threshold", type=float, default=0.3)
    p.add_argument("--pca-variance", type=float, default=0.9)
    p.add_argument("--bootstrap", type=int, default=10000)
    p.add_argument("--permutations", type=int, default=9999)
    p.add_argument("--seed", type=int, default=0)
    # internal: run one job in this process and print a RESULT line
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)
    p.add_argument("--layer", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- paths shared by the parent and the jobs ---------------------------------------------


def paths(args) -> dict[str, Path]:
    work = Path(args.workdir)
    res = work / "results"
    return {
        "images": work / "dataset" / "images.parquet",
        "objects": work / "dataset" / "objects.parquet",
        "store": Path(args.store),
        "neurons_dir": res / "neurons",
        "neurons": res / "neurons.parquet",
        "feature_neurons": res / "feature_neurons.parquet",
        "superposition": res / "superposition.parquet",
        "separability": res / "separability.parquet",
        "correlation": res / "correlation.parquet",
        "logs": work / "logs",
    }


def analysed_layers(args) -> list[int]:
    return list(range(args.depth - args.layers, args.depth))


# --- jobs (each runs in its own process) -------------------------------------------------


def job_create_store(args) -> dict:
    """The synthetic store, batch by batch, writes overlapping the next batch's drawing."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from vlmbinding.data.reading import dataset_presence
    from vlmbinding.data.vocab import Vocabulary
    from vlmbinding.extraction import store as st
    from vlmbinding.extraction.recording import TOKEN_ORDER, store_arrays

    p = paths(args)
    image_ids, presence = dataset_presence(p["images"], p["objects"], Vocabulary())
    n, depth, width = len(image_ids), args.depth, args.width
    rng = np.random.default_rng(args.seed)
    planted = np.zeros((depth, presence.shape[1], width), dtype=np.float32)
    for layer in range(depth):
        units = rng.choice(width, size=width // 8, replace=False)
        for u in units:
            feats = rng.choice(presence.shape[1], size=rng.integers(1, 3), replace=False)
            planted[layer, feats, u] = rng.uniform(0.02, 0.3, size=len(feats))
    pres = presence.astype(np.float32)
    arrays = store_arrays("tokens", depth, width, TOKENS, args.embed_dim, "float16")
    root = st.create_store(p["store"], image_ids, arrays, args.chunk_images, width)
    mlp_store, emb_store = root["mlp_out"], root["embeddings"]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(1) as writer:
        pending = None
        for start in range(0, n, args.chunk_images):
            stop = min(start + args.chunk_images, n)
            buf = np.empty((stop - start, TOKENS, depth * width), dtype=np.float16)
            for layer in range(depth):
                x = rng.standard_normal((stop - start, TOKENS, width), dtype=np.float32)
                x += (pres[start:stop] @ planted[layer])[:, None, :]
                buf[:, :, layer * width : (layer + 1) * width] = x
            if pending is not None:
                pending.result()
            pending = writer.submit(mlp_store.__setitem__, slice(start, stop), buf)
            print(f"batch {start}-{stop} of {n} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if pending is not None:
            pending.result()
    directions = rng.standard_normal((presence.shape[1], args.embed_dim)).astype(np.float32)
    directions *= rng.uniform(0.05, 0.5, size=(presence.shape[1], 1)).astype(np.float32)
    emb = rng.standard_normal((n, args.embed_dim), dtype=np.float32) + pres @ directions
    emb_store[:] = emb
    root.attrs.update(
        {
            "model": "synthetic (benchmarks/bench_analysis.py)",
            "arch": "ViT-L-14",
            "weights": "synthetic",
            "quick_gelu": True,
            "layers": depth,
            "width": width,
            "neuron_index": "layer * width + unit",
            "tokens": TOKENS,
            "token_grid": [GRID, GRID],
            "token_order": TOKEN_ORDER,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "embed_dim": args.embed_dim,
            "preprocess": "model",
            "center_mlp_out": False,
            "dtype": "float16",
            "reduction": "none (per token)",
            "mlp_out": "output of each block's MLP before the residual add",
            "embeddings": "final projected image embedding, float32, not normalised",
            "image_ids": list(image_ids),
            "mode": "tokens",
        }
    )
    st.close_store(root, p["store"], {})
    return {"compute_s": time.perf_counter() - t0}


def job_neurons(args) -> dict:
    """neuron_statistics.py for one layer."""
    t0 = time.perf_counter()
    from vlmbinding.analysis.neurons import neuron_table
    from vlmbinding.data.reading import dataset_presence, open_checked_store
    from vlmbinding.data.vocab import Vocabulary
    from vlmbinding.extraction.recording import layer_slice

    t1 = time.perf_counter()
    p, layer, vocab = paths(args), args.layer, Vocabulary()
    image_ids, presence = dataset_presence(p["images"], p["objects"], vocab)
    root = open_checked_store(p["store"], image_ids)
    acts = layer_slice(root, layer)
    t2 = time.perf_counter()
    table = neuron_table(
        layer, acts, presence, vocab.features, image_ids, args.top_k, how="mean", tokens="all"
    )
    table.to_parquet(p["neurons_dir"] / f"layer_{layer}.parquet", index=False)
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "read_s": t2 - t1, "compute_s": t3 - t2}


def job_gather(args) -> dict:
    """gather_neurons.py."""
    t0 = time.perf_counter()
    import pandas as pd

    t1 = time.perf_counter()
    p = paths(args)
    inputs = [p["neurons_dir"] / f"layer_{layer}.parquet" for layer in analysed_layers(args)]
    tables = [pd.read_parquet(path) for path in inputs]
    pd.concat(tables, ignore_index=True).to_parquet(p["neurons"], index=False)
    return {"import_s": t1 - t0, "compute_s": time.perf_counter() - t1}


def job_score(args) -> dict:
    """score_superposition.py."""
    t0 = time.perf_counter()
    import pandas as pd

    from vlmbinding.analysis.neurons import select_feature_neurons, superposition_scores
    from vlmbinding.data.vocab import Vocabulary, all_pairs

    t1 = time.perf_counter()
    p, features = paths(args), Vocabulary().features
    selected = select_feature_neurons(pd.read_parquet(p["neurons"]), args.n_neurons)
    selected.to_parquet(p["feature_neurons"], index=False)
    scores = superposition_scores(selected, features, all_pairs(features), args.ratio_threshold)
    scores.to_parquet(p["superposition"], index=False)
    return {"import_s": t1 - t0, "compute_s": time.perf_counter() - t1}


def job_separability(args) -> dict:
    """measure_separability.py."""
    t0 = time.perf_counter()
    from vlmbinding.analysis.separability import separability_table
    from vlmbinding.data.reading import dataset_presence, open_checked_store
    from vlmbinding.data.vocab import Vocabulary, all_pairs

    t1 = time.perf_counter()
    p, vocab = paths(args), Vocabulary()
    features = vocab.features
    image_ids, presence = dataset_presence(p["images"], p["objects"], vocab)
    embeddings = open_checked_store(p["store"], image_ids)["embeddings"][:]
    t2 = time.perf_counter()
    table = separability_table(
        embeddings, presence, features, all_pairs(features), args.pca_variance
    )
    table.to_parquet(p["separability"], index=False)
    return {"import_s": t1 - t0, "read_s": t2 - t1, "compute_s": time.perf_counter() - t2}


def job_correlation(args) -> dict:
    """correlate_superposition.py."""
    t0 = time.perf_counter()
    import pandas as pd

    from vlmbinding.analysis.correlation import correlation_table
    from vlmbinding.data.vocab import Vocabulary

    t1 = time.perf_counter()
    p = paths(args)
    table = correlation_table(
        pd.read_parquet(p["superposition"]),
        pd.read_parquet(p["separability"]),
        Vocabulary().feature_kinds,
        n_boot=args.bootstrap,
        n_perm=args.permutations,
        seed=args.seed,
    )
    table.to_parquet(p["correlation"], index=False)
    return {"import_s": t1 - t0, "compute_s": time.perf_counter() - t1}


JOBS = {
    "create_store": job_create_store,
    "neurons": job_neurons,
    "gather": job_gather,
    "score": job_score,
    "separability": job_separability,
    "correlation": job_correlation,
}


# --- the parent: set-up, scheduling, summary ---------------------------------------------


@dataclass
class Job:
    name: str
    kind: str
    deps: list[str] = field(default_factory=list)
    layer: int | None = None
    start: float = 0.0
    end: float = 0.0
    peak_mb: float = 0.0  # the job's own VmHWM, else the wait4 figure
    wait4_mb: float = 0.0
    report: dict = field(default_factory=dict)


def job_command(args, job: Job) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--job", job.kind]
    if job.layer is not None:
        cmd += ["--layer", str(job.layer)]
    for name in (
        "workdir",
        "store",
        "images",
        "depth",
        "width",
        "embed_dim",
        "chunk_images",
        "layers",
        "top_k",
        "n_neurons",
        "ratio_threshold",
        "pca_variance",
        "bootstrap",
        "permutations",
        "seed",
    ):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return cmd


THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def job_env(args) -> dict[str, str]:
    """The environment of a job: Snakemake sets these to the rule's `threads` (1 here)."""
    env = dict(os.environ)
    if args.job_threads > 0:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(args.job_threads)))
    return env


def run_jobs(args, jobs: list[Job], cores: int) -> float:
    """Run `jobs` along their dependencies, at most `cores` at once; the wall time."""
    logs = paths(args)["logs"]
    logs.mkdir(parents=True, exist_ok=True)
    done: set[str] = set()
    waiting = list(jobs)
    running: dict[int, tuple[Job, subprocess.Popen, object]] = {}
    t0 = time.perf_counter()
    while waiting or running:
        for job in [j for j in waiting if set(j.deps) <= done]:
            if len(running) >= cores:
                break
            waiting.remove(job)
            out = open(logs / f"{job.name}.log", "w")  # noqa: SIM115 - closed when it ends
            job.start = time.perf_counter() - t0
            proc = subprocess.Popen(
                job_command(args, job), stdout=out, stderr=subprocess.STDOUT, env=job_env(args)
            )
            running[proc.pid] = (job, proc, out)
        if not running:
            raise RuntimeError(f"jobs whose dependencies never finish: {waiting}")
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        job, proc, out = running.pop(pid)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.close()
        job.end = time.perf_counter() - t0
        job.wait4_mb = usage.ru_maxrss / 1024
        text = (logs / f"{job.name}.log").read_text()
        if proc.returncode != 0:
            for _, other, _ in running.values():
                other.kill()
            raise RuntimeError(f"job {job.name} failed ({proc.returncode}):\n{text[-4000:]}")
        result = [x for x in text.splitlines() if x.startswith("RESULT ")]
        job.report = json.loads(result[-1][len("RESULT ") :]) if result else {}
        job.peak_mb = job.report.pop("vm_hwm_mb", None) or job.wait4_mb
        print(
            f"  {job.name:<16} {job.end - job.start:7.1f} s  peak RSS {job.peak_mb:6.0f} MiB "
            f"(wait4 ru_maxrss {job.wait4_mb:.0f} MiB)",
            flush=True,
        )
        done.add(job.name)
    return time.perf_counter() - t0


def ensure_dataset(args) -> float:
    """The toy-shapes dataset and its tables (reused when present); seconds spent."""
    from vlmbinding.data import toyshapes as ds
    from vlmbinding.data.vocab import Vocabulary

    p = paths(args)
    if p["images"].exists() and p["objects"].exists():
        return 0.0
    if args.images % len(OBJECT_COUNTS):
        raise SystemExit(f"--images must be a multiple of {len(OBJECT_COUNTS)}")
    t0 = time.perf_counter()
    folder = p["images"].parent
    images, objects = ds.generate_dataset(
        folder / "images", Vocabulary(), OBJECT_COUNTS, args.images // 5, args.seed
    )
    ds.write_table(images, p["images"])
    ds.write_table(objects, p["objects"])
    return time.perf_counter() - t0


def store_is_usable(args) -> bool:
    """An existing complete store of the right shape, chunks and image ids."""
    import pandas as pd

    from vlmbinding.extraction.recording import open_store

    p = paths(args)
    if not p["store"].exists():
        return False
    try:
        root = open_store(p["store"])
        mlp = root["mlp_out"]
        ids = pd.read_parquet(p["images"])["image_id"].astype(str).tolist()
        return (
            mlp.shape == (args.images, TOKENS, args.depth * args.width)
            and mlp.chunks == (min(args.chunk_images, args.images), TOKENS, args.width)
            and root["embeddings"].shape == (args.images, args.embed_dim)
            and list(root.attrs["image_ids"]) == ids
        )
    except Exception as e:  # anything unreadable is rebuilt
        print(f"existing store {p['store']} is not usable ({e}); rebuilding it")
        return False


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.job is not None:
        report = JOBS[args.job](args)
        report["vm_hwm_mb"] = vm_hwm_mb()
        print("RESULT " + json.dumps(report), flush=True)
        return

    temp_work = args.workdir is None
    args.workdir = str(Path(args.workdir or tempfile.mkdtemp(prefix="bench_analysis_")).resolve())
    args.store = str(Path(args.store or Path(args.workdir) / "activations.zarr").resolve())
    p = paths(args)
    store_existed = p["store"].exists()
    try:
        p["neurons_dir"].mkdir(parents=True, exist_ok=True)
        t_data = ensure_dataset(args)
        print(f"dataset: {args.images} images ({t_data:.1f} s)", flush=True)
        uncompressed = args.images * TOKENS * args.depth * args.width * 2
        create = None
        if store_is_usable(args):
            print(f"reusing the complete store {p['store']}", flush=True)
        else:
            store_existed = False
            print(f"creating {p['store']} ({uncompressed / GB:.2f} GB uncompressed) ...")
            create = Job("create_store", "create_store")
            run_jobs(args, [create], 1)
        size = dir_size(p["store"])

        layers = analysed_layers(args)
        jobs = [Job(f"neurons_{layer}", "neurons", layer=layer) for layer in layers]
        jobs += [
            Job("separability", "separability"),
            Job("gather", "gather", deps=[f"neurons_{layer}" for layer in layers]),
            Job("score", "score", deps=["gather"]),
            Job("correlation", "correlation", deps=["score", "separability"]),
        ]
        print(f"analysis: {len(jobs)} jobs, at most {args.cores} at once", flush=True)
        share = CpuShare()
        total = run_jobs(args, jobs, args.cores)
        summarise(args, jobs, total, create, size, uncompressed, share.report())
    finally:
        if not args.keep:
            if not store_existed:
                shutil.rmtree(p["store"], ignore_errors=True)
            if temp_work:
                shutil.rmtree(args.workdir, ignore_errors=True)
        else:
            print(f"kept {args.workdir} and {args.store}")


def summarise(args, jobs, total, create, size, uncompressed, sharing) -> None:
    import pandas as pd

    table = pd.read_parquet(paths(args)["correlation"])
    print()
    print(
        f"summary: store {args.images} x {TOKENS} x {args.depth * args.width} float16, "
        f"last {args.layers} layers, {args.cores} jobs at once of {args.job_threads or 'any'} "
        f"thread(s), {os.cpu_count()} CPUs:"
    )
    print(sharing)
    if create is not None:
        print(
            f"store creation {create.end - create.start:.1f} s, peak RSS "
            f"{create.peak_mb:.0f} MiB (not part of the target)"
        )
    print(
        f"store {size / GB:.2f} GB on disk ({size / uncompressed:.2f} of "
        f"{uncompressed / GB:.2f} GB uncompressed)"
    )
    neurons = [j for j in jobs if j.kind == "neurons"]
    wall = max(j.end for j in neurons) - min(j.start for j in neurons)
    per_job = [j.end - j.start for j in neurons]
    print(
        f"neurons: {len(neurons)} layer jobs, stage wall {wall:.1f} s, per job "
        f"{min(per_job):.1f}-{max(per_job):.1f} s (mean {sum(per_job) / len(per_job):.1f}), "
        f"peak RSS max {max(j.peak_mb for j in neurons):.0f} MiB"
    )

    def mean_of(key):
        vals = [j.report.get(key, 0.0) for j in neurons]
        return sum(vals) / len(vals)

    print(
        f"neurons per job: imports {mean_of('import_s'):.1f} s, reading the layer "
        f"{mean_of('read_s'):.1f} s, statistics + parquet {mean_of('compute_s'):.1f} s (means)"
    )
    for j in jobs:
        if j.kind == "neurons":
            continue
        r = j.report
        parts = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in r.items() if k.endswith("_s"))
        print(
            f"{j.name}: wall {j.end - j.start:.1f} s ({parts}), peak RSS {j.peak_mb:.0f} MiB, "
            f"ran {j.start:.1f}-{j.end:.1f} s"
        )
    peak = max(j.peak_mb for j in jobs)
    sequential = sum(j.end - j.start for j in jobs)
    print(
        f"total wall {total:.1f} s (sum of job walls {sequential:.1f} s), "
        f"largest job peak RSS {peak:.0f} MiB"
    )
    ok_time = "met" if total <= 120 else "NOT met"
    ok_mem = "met" if peak * 2**20 < 4e9 else "NOT met"
    print(f"target total <= 120 s: {ok_time}; target every job < 4 GB: {ok_mem}")
    print(f"correlation table: {len(table)} rows, e.g.")
    cols = ["metric", "space", "subset", "n_pairs", "pearson_r", "spearman_rho", "mantel_p"]
    print(table[cols].head(4).to_string(index=False))


if __name__ == "__main__":
    main()
