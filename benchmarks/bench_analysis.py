"""Benchmark: the analysis from a paper-scale activation store to the correlation table.

Target: on 2 cores, the whole analysis (neuron statistics of the analysed layers, gather,
superposition score, separability, correlation) takes at most 2 minutes of wall time, and
no job's peak resident memory reaches 4 GB.

Every job calls the function its rule script calls (`vlmbinding.analysis.steps`), with the
settings the rule gets: the workflow's config/config.yaml, validated with its schema's
defaults (analysis.*, activations.*, the dataset's vocabulary), each overridable below.

Set-up (not part of the target, timed separately):
  * a real toy-shapes dataset of N images (`vlmbinding.data.toyshapes.generate_dataset`, 100 per
    object count 1..5 by default), its images.parquet and objects.parquet;
  * a synthetic activation store laid out as the extraction lays it out: the arrays of
    `extraction.metadata.store_arrays` (mlp_out [N, tokens, depth*width] at ViT-L/14's
    geometry by default: 500 x 257 x 24,576 float16 = 6.3 GB uncompressed), created by
    `extraction.store.create_store` with the config's activations codec, layout and batch
    size, written batch by batch by the extraction's own `recording.BatchWriter`, described
    by `metadata.store_attributes`, closed by `store.close_store`. Values are standard
    normal, with 1/8 of each layer's units given a planted dependence on one or two
    features (the same offset on every token of an image that has the feature), and
    embeddings with a planted per-feature direction, so affinities, S, D and M are not pure
    noise. An existing complete store of the right shape and image ids is reused.

Timed: every job in a fresh Python process (as Snakemake runs `script:` rules), by the one
job runner of benchmarks/_common.py:
  neurons layer L  steps.layer_neurons           (neuron_statistics.py), per analysed layer
  gather           steps.gather_tables           (gather_neurons.py)
  score            steps.score_superposition     (score_superposition.py)
  separability     steps.measure_separability    (measure_separability.py)
  correlation      steps.correlate_superposition (correlate_superposition.py)
each result written with `vlmbinding.atomic.write_parquet` as the rules write it. Jobs run
along their dependencies with at most --cores at once (as `snakemake --cores 2` would),
each with OMP/OpenBLAS/MKL_NUM_THREADS set to --job-threads (default 1: Snakemake sets these
to the rule's `threads`, 1 for all analysis rules; 0 leaves them unset). Each job's peak
RSS is the VmHWM of its own address space (not `ru_maxrss` from `os.wait4`: Linux carries
the parent's RSS at spawn time over into the child's; the wait4 figure is printed beside it
as an upper bound). Each job reports its import time (the steps module), the library call
(reading the store or tables and computing) and the write. Snakemake's own per-job overhead
is not included.

Command (from the repository root):

    .venv/bin/python benchmarks/bench_analysis.py                       # paper scale
    .venv/bin/python benchmarks/bench_analysis.py --store /tmp/bench_store.zarr --keep
    .venv/bin/python benchmarks/bench_analysis.py --images 100 --depth 12 --layers 4  # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import CpuShare, Job, job_argv, print_result, run_jobs, toy_dataset, workflow_config

GB = 1e9


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", default=None, help="dataset, tables and logs (default: temp)")
    p.add_argument("--store", default=None, help="activation store (default: <workdir>/...)")
    p.add_argument("--keep", action="store_true", help="keep the store and the work folder")
    p.add_argument("--images", type=int, default=500, help="images (a multiple of 5)")
    p.add_argument("--arch", default="ViT-L-14", help="open_clip architecture of the geometry")
    p.add_argument("--depth", type=int, default=None, help="blocks (default: the arch's)")
    p.add_argument("--width", type=int, default=None, help="MLP output width (the arch's)")
    p.add_argument("--embed-dim", type=int, default=None, help="embedding size (the arch's)")
    p.add_argument("--cores", type=int, default=2, help="jobs running at once")
    p.add_argument(
        "--job-threads",
        type=int,
        default=1,
        help="threads per job: OMP/OpenBLAS/MKL_NUM_THREADS as Snakemake sets them (0: unset)",
    )
    p.add_argument("--config", default=None, help="workflow config (config/config.yaml)")
    p.add_argument(
        "--layers",
        type=int,
        default=None,
        help="analyse the last N blocks (default: analysis.layers)",
    )
    for name, kind in [
        ("chunk-images", int),  # activations.batch_size
        ("top-k", int),
        ("reduce", str),
        ("tokens", str),
        ("n-neurons", int),
        ("ratio-threshold", float),
        ("pca-variance", float),
        ("bootstrap", int),
        ("permutations", int),
        ("seed", int),
    ]:
        p.add_argument(f"--{name}", type=kind, default=None, help="default: the config's")
    # internal: run one job in this process and print a RESULT line
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)
    p.add_argument("--layer", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- what the parent and the jobs share ---------------------------------------------------


def settings(args) -> dict:
    """The rules' params blocks from the workflow's config, with this run's overrides."""
    config = workflow_config(*([args.config] if args.config else []))
    a = config["analysis"]

    def pick(name, block=a, key=None):
        value = getattr(args, name)
        return block[key or name] if value is None else value

    return {
        "vocabulary": {k: config["dataset"][k] for k in ("shapes", "colors", "positions")},
        "neurons": {k: pick(k) for k in ("top_k", "reduce", "tokens")},
        "selection": {k: pick(k) for k in ("n_neurons", "ratio_threshold")},
        "pca_variance": pick("pca_variance"),
        "statistics": {k: pick(k) for k in ("bootstrap", "permutations", "seed")},
        "layers": a["layers"],
        "activations": {
            **config["activations"],
            "batch_size": pick("chunk_images", config["activations"], "batch_size"),
            "store": "tokens",  # the per-token store (the specification grid needs it)
        },
        "robustness": config["robustness"],
    }


def vocabulary(args):
    from vlmbinding.data.vocab import Vocabulary

    return Vocabulary.from_config(settings(args)["vocabulary"])


def geometry(args) -> dict:
    """The vision tower's geometry (`vision_geometry` of --arch), depth, width and
    embedding size overridden by --depth, --width, --embed-dim."""
    from vlmbinding.models.architectures import architecture_config, vision_geometry

    geo = vision_geometry(architecture_config(args.arch))
    overrides = {"layers": args.depth, "width": args.width, "embed_dim": args.embed_dim}
    return {**geo, **{k: v for k, v in overrides.items() if v is not None}}


def paths(args) -> dict[str, Path]:
    work = Path(args.workdir)
    res = work / "results"
    return {
        "dataset": work / "dataset",
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
    from vlmbinding.workflow.config import resolve_layers

    depth = geometry(args)["layers"]
    if args.layers is not None:
        return list(range(depth - args.layers, depth))
    return resolve_layers(settings(args)["layers"], depth)


def job_command(args, kind: str, layer: int | None = None) -> list[str]:
    """This script, run as one job of `kind` with the parent's settings."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *job_argv(args), "--job", kind]
    return cmd + (["--layer", str(layer)] if layer is not None else [])


def timed(step, write) -> dict:
    """Seconds of the library call and of writing its result."""
    t0 = time.perf_counter()
    result = step()
    t1 = time.perf_counter()
    write(result)
    return {"step_s": t1 - t0, "write_s": time.perf_counter() - t1}


# --- jobs (each runs in its own process) --------------------------------------------------


def job_create_store(args) -> dict:
    """The synthetic store, written by the extraction's writer, batch by batch."""
    import numpy as np

    from vlmbinding.data.reading import dataset_presence
    from vlmbinding.extraction import store as st
    from vlmbinding.extraction.metadata import store_arrays, store_attributes
    from vlmbinding.extraction.recording import BatchWriter

    p, geo, act = paths(args), geometry(args), settings(args)["activations"]
    image_ids, presence = dataset_presence(p["images"], p["objects"], vocabulary(args))
    n, depth, width, tokens = len(image_ids), geo["layers"], geo["width"], geo["tokens"]
    rng = np.random.default_rng(0 if args.seed is None else args.seed)
    planted = np.zeros((depth, presence.shape[1], width), dtype=np.float32)
    for layer in range(depth):
        for u in rng.choice(width, size=width // 8, replace=False):
            feats = rng.choice(presence.shape[1], size=rng.integers(1, 3), replace=False)
            planted[layer, feats, u] = rng.uniform(0.02, 0.3, size=len(feats))
    directions = rng.standard_normal((presence.shape[1], geo["embed_dim"])).astype(np.float32)
    directions *= rng.uniform(0.05, 0.5, size=(presence.shape[1], 1)).astype(np.float32)
    pres = presence.astype(np.float32)
    arrays = store_arrays("tokens", depth, width, tokens, geo["embed_dim"], act["dtype"])
    batch = act["batch_size"]
    root = st.create_store(
        p["store"],
        image_ids,
        arrays,
        batch,
        width,
        act["codec"],
        act["compression_level"],
        act["layout"],
    )
    t0 = time.perf_counter()
    writer = BatchWriter(root, 2, act["layout"] == "layer-chunks", image_ids=image_ids)
    for start in range(0, n, batch):
        rows = pres[start : start + batch]
        out = {}
        for layer in range(depth):
            x = rng.standard_normal((len(rows), tokens, width), dtype=np.float32)
            out[f"mlp_out/{layer}"] = (x + (rows @ planted[layer])[:, None, :]).astype(act["dtype"])
        out["embeddings"] = rng.standard_normal((len(rows), geo["embed_dim"]), dtype=np.float32)
        out["embeddings"] += rows @ directions
        writer.put(start, out, lambda: None, lambda: None)
        print(f"batch {start} of {n} ({time.perf_counter() - t0:.0f} s)", flush=True)
    writer.close()
    model = {"name": "synthetic", "arch": args.arch, "weights": "synthetic", "quick_gelu": True}
    extraction = (
        "preprocess",
        "center_mlp_out",
        "dtype",
        "store",
        "codec",
        "compression_level",
        "layout",
        "autocast",
    )
    attrs = store_attributes(model, geo, depth, image_ids, {k: act[k] for k in extraction})
    st.close_store(root, p["store"], attrs)
    return {"compute_s": time.perf_counter() - t0}


def job_neurons(args) -> dict:
    from vlmbinding.analysis import steps
    from vlmbinding.atomic import write_parquet

    p, s = paths(args), settings(args)
    return timed(
        lambda: steps.layer_neurons(
            p["images"], p["objects"], p["store"], args.layer, vocabulary(args), **s["neurons"]
        ),
        lambda table: write_parquet(table, p["neurons_dir"] / f"layer_{args.layer}.parquet"),
    )


def job_gather(args) -> dict:
    from vlmbinding.analysis import steps
    from vlmbinding.atomic import write_parquet

    p = paths(args)
    tables = [p["neurons_dir"] / f"layer_{layer}.parquet" for layer in analysed_layers(args)]
    return timed(lambda: steps.gather_tables(tables), lambda t: write_parquet(t, p["neurons"]))


def job_score(args) -> dict:
    from vlmbinding.analysis import steps
    from vlmbinding.atomic import write_parquet

    p, s = paths(args), settings(args)

    def write(result):
        write_parquet(result[0], p["feature_neurons"])
        write_parquet(result[1], p["superposition"])

    return timed(
        lambda: steps.score_superposition(p["neurons"], vocabulary(args), **s["selection"]),
        write,
    )


def job_separability(args) -> dict:
    from vlmbinding.analysis import steps
    from vlmbinding.atomic import write_parquet

    p, s = paths(args), settings(args)
    return timed(
        lambda: steps.measure_separability(
            p["images"], p["objects"], p["store"], vocabulary(args), s["pca_variance"]
        ),
        lambda table: write_parquet(table, p["separability"]),
    )


def job_correlation(args) -> dict:
    from vlmbinding.analysis import steps
    from vlmbinding.atomic import write_parquet

    p, s = paths(args), settings(args)
    return timed(
        lambda: steps.correlate_superposition(
            p["superposition"], p["separability"], vocabulary(args), **s["statistics"]
        ),
        lambda table: write_parquet(table, p["correlation"]),
    )


JOBS = {
    "create_store": job_create_store,
    "neurons": job_neurons,
    "gather": job_gather,
    "score": job_score,
    "separability": job_separability,
    "correlation": job_correlation,
}


def run_job(args, jobs: dict) -> None:
    """The job side: import the library (timed), run one job, print its RESULT line."""
    t0 = time.perf_counter()
    import vlmbinding.analysis.steps  # noqa: F401 - what every analysis job imports first

    import_s = time.perf_counter() - t0
    print_result({"import_s": import_s, **jobs[args.job](args)})


# --- the parent: set-up, scheduling, summary ----------------------------------------------


def prepare(args) -> tuple[Job | None, int, int]:
    """The dataset and the store (each reused when present): (the store-creation job or
    None, the store's size on disk, its size uncompressed)."""
    p, geo = paths(args), geometry(args)
    if args.images % 5:
        raise SystemExit("--images must be a multiple of 5 (one fifth per object count)")
    t_data = toy_dataset(
        p["dataset"], args.images, 0 if args.seed is None else args.seed, vocabulary(args)
    )
    print(f"dataset: {args.images} images ({t_data:.1f} s)", flush=True)
    itemsize = 2 if settings(args)["activations"]["dtype"] == "float16" else 4
    uncompressed = args.images * geo["tokens"] * geo["layers"] * geo["width"] * itemsize
    create = None
    if store_is_usable(args):
        print(f"reusing the complete store {p['store']}", flush=True)
    else:
        print(f"creating {p['store']} ({uncompressed / GB:.2f} GB uncompressed) ...")
        create = Job("create_store", job_command(args, "create_store"), kind="create_store")
        run_jobs([create], 1, p["logs"], args.job_threads)
    size = sum(f.stat().st_size for f in p["store"].rglob("*") if f.is_file())
    return create, size, uncompressed


def store_is_usable(args) -> bool:
    """An existing complete store of the right shape, chunks and image ids."""
    import pandas as pd

    from vlmbinding.extraction.store import open_store

    p, geo = paths(args), geometry(args)
    if not p["store"].exists():
        return False
    try:
        root = open_store(p["store"])
        mlp = root["mlp_out"]
        batch = settings(args)["activations"]["batch_size"]
        ids = pd.read_parquet(p["images"])["image_id"].astype(str).tolist()
        return (
            mlp.shape == (args.images, geo["tokens"], geo["layers"] * geo["width"])
            and mlp.chunks[0] == min(batch, args.images)
            and root["embeddings"].shape == (args.images, geo["embed_dim"])
            and list(root.attrs["image_ids"]) == ids
        )
    except Exception as e:  # anything unreadable is rebuilt
        print(f"existing store {p['store']} is not usable ({e}); rebuilding it")
        return False


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.job is not None:
        run_job(args, JOBS)
        return

    temp_work = args.workdir is None
    args.workdir = str(Path(args.workdir or tempfile.mkdtemp(prefix="bench_analysis_")).resolve())
    args.store = str(Path(args.store or Path(args.workdir) / "activations.zarr").resolve())
    p = paths(args)
    store_existed = p["store"].exists()
    try:
        p["neurons_dir"].mkdir(parents=True, exist_ok=True)
        create, size, uncompressed = prepare(args)
        store_existed = store_existed and create is None
        layers = analysed_layers(args)
        jobs = [
            Job(f"neurons_{layer}", job_command(args, "neurons", layer), kind="neurons")
            for layer in layers
        ]
        deps = {
            "separability": [],
            "gather": [f"neurons_{layer}" for layer in layers],
            "score": ["gather"],
            "correlation": ["score", "separability"],
        }
        jobs += [Job(k, job_command(args, k), d, kind=k) for k, d in deps.items()]
        print(f"analysis: {len(jobs)} jobs, at most {args.cores} at once", flush=True)
        share = CpuShare()
        total = run_jobs(jobs, args.cores, p["logs"], args.job_threads)
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

    geo, s = geometry(args), settings(args)
    table = pd.read_parquet(paths(args)["correlation"])
    print()
    print(
        f"summary: store {args.images} x {geo['tokens']} x {geo['layers'] * geo['width']} "
        f"{s['activations']['dtype']} ({s['activations']['codec']}, "
        f"{s['activations']['layout']}), {len(analysed_layers(args))} analysed layers, "
        f"neurons {s['neurons']}, {args.cores} jobs at once of {args.job_threads or 'any'} "
        f"thread(s), {os.cpu_count()} CPUs:"
    )
    print(sharing)
    if create is not None:
        print(
            f"store creation {create.wall:.1f} s, peak RSS {create.peak_mb:.0f} MiB "
            "(not part of the target)"
        )
    print(
        f"store {size / GB:.2f} GB on disk ({size / uncompressed:.2f} of "
        f"{uncompressed / GB:.2f} GB uncompressed)"
    )
    neurons = [j for j in jobs if j.kind == "neurons"]
    wall = max(j.end for j in neurons) - min(j.start for j in neurons)
    per_job = [j.wall for j in neurons]
    print(
        f"neurons: {len(neurons)} layer jobs, stage wall {wall:.1f} s, per job "
        f"{min(per_job):.1f}-{max(per_job):.1f} s (mean {sum(per_job) / len(per_job):.1f}), "
        f"peak RSS max {max(j.peak_mb for j in neurons):.0f} MiB"
    )

    def mean_of(key):
        return sum(j.report.get(key, 0.0) for j in neurons) / len(neurons)

    print(
        f"neurons per job: imports {mean_of('import_s'):.1f} s, steps.layer_neurons (read + "
        f"reduce + statistics) {mean_of('step_s'):.1f} s, write {mean_of('write_s'):.1f} s "
        "(means)"
    )
    for j in jobs:
        if j.kind == "neurons":
            continue
        parts = ", ".join(
            f"{k[:-2]} {v:.1f} s" for k, v in j.report.items() if k.endswith("_s") and k != "cpu_s"
        )
        print(
            f"{j.name}: wall {j.wall:.1f} s ({parts}), peak RSS {j.peak_mb:.0f} MiB, "
            f"ran {j.start:.1f}-{j.end:.1f} s"
        )
    peak = max(j.peak_mb for j in jobs)
    sequential = sum(j.wall for j in jobs)
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
