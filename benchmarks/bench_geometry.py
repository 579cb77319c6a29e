"""Benchmark: the encoding geometry (measure 2 of sharing) per block at ViT-L/14 geometry.

Target: the neuron-basis measures of one layer pool at ViT-L/14 geometry (500 images, 257
tokens = 1 CLS + 16 x 16 patches, 1,024 neurons a block) from a tokens or a reduced store
in at most 2 minutes on CPU and 4 GB of peak memory per job. The geometry's job
(`measure_geometry`, one thread) measures its blocks one after another, so it is timed per
block and projected for a 10-block pool and for all 24 blocks: the job's CPU seconds outside
the blocks (interpreter start-up, imports, set-up) + blocks x the mean per block.

Set-up (not timed): the paper's 500-image objects table from the workflow's own scene
sampler (`toyshapes.sample_scenes`, dataset seed 0, 100 images per object count 1..5) with
its boxes (`toyshapes.add_boxes`, the config's canvas) and the patch masks the rule builds
(`geometry_stage.object_masks`, the config's preprocessing). Synthetic float16 tokens per
block: standard normal, a fixed offset per patch position (what the per-position mean
removes), and on each object's patches the sum of its features' planted directions
(standard normal x 0.5 per neuron). They are written, batch by batch, into two real Zarr
stores by the library's own writers: a tokens store (`store.create_store` with the config's
codec, layout and batch size, `recording.BatchWriter`, `store.close_store`) and a reduced
store that holds each object's pooled patch vectors (`object_pooling.ObjectPooling`, its
`device_outputs` run by torch on the CPU, as the extraction runs them on the model's
device). Only --blocks blocks are written: with the default layer-chunks layout a block's
read touches only that block's chunk files, so a 24-block store reads the same per block.

Timed, in one fresh process per store (as Snakemake runs the `script:` rule, one job at a
time, BLAS threads --threads): what `measure_geometry.py` runs. Job set-up: read the
tables, `data.reading.open_checked_store`, `object_masks`,
`object_pooling.object_vector_reader`. Then per block `geometry_stage.geometry_part` on
that block (its object vectors from the store, `geometry.encoding_geometry` with the
config's sharing.geometry n_null, n_bins and seed), its store read (the object vectors)
reported apart. After the blocks, measure 1's read of each block (what
`measure_sharing.py` reads of its layer pool: `store.reduced_layer` with the config's
analysis.reduce and analysis.tokens) is timed too, the cache dropped again: with the CPU
seconds of `bench_sharing.py` (neuron_overlap, conjunction_coding on 24,576 neurons) it gives
measure 1 from a store. The store's files are flushed and dropped from the page cache
(posix_fadvise) before each job, so the reads come from disk. CPU seconds are the job's own
(getrusage); its peak memory (VmHWM) covers the geometry and measure 1's reads; wall time
is printed beside them with the CPU other processes took meanwhile.

Command (from the repository root):

    .venv/bin/python benchmarks/bench_geometry.py                # 500 images, 3 blocks
    .venv/bin/python benchmarks/bench_geometry.py --quick        # 100 images, 2 blocks, 19 draws
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import CpuShare, Job, job_argv, print_result, run_jobs, workflow_config

TARGET_S, TARGET_MIB = 120.0, 4e9 / 2**20  # 2 minutes, 4 GB a job
MODES = ("tokens", "reduced")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100 images, 2 blocks, 19 null draws")
    p.add_argument("--images", type=int, default=None, help="images, a multiple of 5 (500)")
    p.add_argument("--blocks", type=int, default=None, help="blocks written and timed (3)")
    p.add_argument("--arch", default="ViT-L-14", help="open_clip architecture of the geometry")
    p.add_argument("--n-null", type=int, default=None, help="sharing.geometry.n_null (config)")
    p.add_argument("--n-bins", type=int, default=None, help="sharing.geometry.n_bins (config)")
    p.add_argument("--pool", type=int, default=10, help="blocks of the projected layer pool")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads a job (0: unset)")
    p.add_argument("--workdir", default=None, help="stores and tables (default: temp)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--job", choices=MODES, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    g = workflow_config()["sharing"]["geometry"]
    quick = args.quick
    args.images = args.images or (100 if quick else 500)
    args.blocks = args.blocks or (2 if quick else 3)
    args.n_null = args.n_null or (19 if quick else g["n_null"])
    args.n_bins = args.n_bins or g["n_bins"]
    return args


def settings() -> dict:
    """What the rules get from the workflow's config."""
    c = workflow_config()
    return {
        "activations": c["activations"],
        "canvas": (c["dataset"]["width"], c["dataset"]["height"]),
        "seed": c["sharing"]["geometry"]["seed"],
        "reduction": (c["analysis"]["reduce"], c["analysis"]["tokens"]),
        "vocabulary": {k: c["dataset"][k] for k in ("shapes", "colors", "positions")},
    }


def vision(arch: str) -> dict:
    from vlmbinding.models.architectures import architecture_config, vision_geometry

    return vision_geometry(architecture_config(arch))


def tables(n_images: int):
    """The vocabulary, objects table (with boxes) and images table of the paper's images."""
    from vlmbinding.data.toyshapes import Canvas, add_boxes, images_table, sample_scenes
    from vlmbinding.data.vocab import Vocabulary

    s = settings()
    vocab = Vocabulary.from_config(s["vocabulary"])
    scenes = sample_scenes(vocab, [1, 2, 3, 4, 5], n_images // 5, seed=0)
    objects = add_boxes(scenes, Canvas(*s["canvas"]))
    return vocab, objects, images_table(objects, "unused")


def write_stores(args, work: Path) -> None:
    """The tables, a tokens store and a reduced store with pooled object vectors."""
    import numpy as np
    import torch

    from vlmbinding.analysis.geometry import object_labels
    from vlmbinding.analysis.geometry_stage import image_sizes, object_image_rows, object_masks
    from vlmbinding.data.crop import crops_to_square
    from vlmbinding.extraction import store as st
    from vlmbinding.extraction.metadata import store_arrays, store_attributes
    from vlmbinding.extraction.object_pooling import ObjectPooling
    from vlmbinding.extraction.recording import BatchWriter

    s, geo = settings(), vision(args.arch)
    act, blocks, width, tokens = s["activations"], args.blocks, geo["width"], geo["tokens"]
    prefix, grid = geo["n_prefix_tokens"], [geo["grid"]] * 2
    vocab, objects, images = tables(args.images)
    objects.to_parquet(work / "objects.parquet")
    images.to_parquet(work / "images.parquet")
    ids = images["image_id"].tolist()
    sizes = image_sizes(images, *s["canvas"])
    masks = object_masks(objects, sizes, crops_to_square(act["preprocess"]), grid)
    rows = object_image_rows(objects, ids)
    rng = np.random.default_rng(0)
    directions = 0.5 * rng.standard_normal((len(vocab.features), width))
    planted = (object_labels(objects, vocab.features) @ directions).astype(np.float32)
    offsets = 2.0 * rng.standard_normal((masks.shape[1], width)).astype(np.float32)
    batch, dtype = act["batch_size"], act["dtype"]
    codec = (act["codec"], act["compression_level"])
    model = {"name": "synthetic", "arch": args.arch, "weights": "synthetic", "quick_gelu": True}
    keys = ("preprocess", "center_mlp_out", "dtype", "codec", "compression_level", "layout")
    roots, writers, attrs = {}, {}, {}
    pooling = ObjectPooling(masks, rows, objects["image_id"], range(blocks), len(ids))
    for mode in MODES:
        arrays = store_arrays(mode, blocks, width, tokens, geo["embed_dim"], dtype)
        root = st.create_store(work / mode, ids, arrays, batch, width, *codec, act["layout"])
        per_layer = mode == "tokens" and act["layout"] == "layer-chunks"
        pool = pooling if mode == "reduced" else None
        if pool is not None:
            pool.create(root, batch, width, *codec)
        roots[mode] = root
        writers[mode] = BatchWriter(root, 0, per_layer, image_ids=ids, dtype=dtype, pool=pool)
        extraction = {**{k: act[k] for k in keys}, "store": mode, "autocast": "none"}
        attrs[mode] = store_attributes(model, geo, blocks, ids, extraction)
    for start in range(0, len(ids), batch):
        n = min(batch, len(ids) - start)
        layers = []
        for _ in range(blocks):
            x = rng.standard_normal((n, tokens, width), dtype=np.float32)
            x[:, prefix:] += offsets
            for o in pooling.batch_objects(start, start + n):
                x[rows[o] - start, prefix:][masks[o]] += planted[o]
            layers.append(x.astype(dtype))
        emb = rng.standard_normal((n, geo["embed_dim"]), dtype=np.float32)
        out = {f"mlp_out/{b}": x for b, x in enumerate(layers)}
        writers["tokens"].put(start, {**out, "embeddings": emb}, lambda: None, lambda: None)
        wide = np.concatenate(layers, axis=-1).astype(np.float32)
        reduced = {
            "mlp_mean": wide.mean(1),
            "mlp_max": wide.max(1),
            "mlp_mean_patches": wide[:, prefix:].mean(1),
            "mlp_max_patches": wide[:, prefix:].max(1),
        }
        device = pooling.device_outputs([torch.from_numpy(x) for x in layers], start, prefix)
        reduced |= {k: v.numpy() for k, v in device.items()}
        writers["reduced"].put(start, {**reduced, "embeddings": emb}, lambda: None, lambda: None)
    for mode in MODES:
        writers[mode].close()
        extra = pooling.finish(roots[mode]) if mode == "reduced" else {}
        st.close_store(roots[mode], work / mode, {**attrs[mode], **extra})


def drop_cache(folder: Path) -> None:
    """Flush the store's files and drop them from the page cache (reads come from disk)."""
    for f in folder.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def cpu_seconds() -> float:
    return time.process_time()


def job(args) -> None:
    """One `measure_geometry` job on one store, block by block; a RESULT line."""
    work = Path(args.workdir)
    drop_cache(work / args.job)
    cpu0, wall0, share = cpu_seconds(), time.perf_counter(), CpuShare()
    import pandas as pd

    from vlmbinding.analysis.geometry_stage import geometry_part, image_sizes, object_masks
    from vlmbinding.data.crop import crops_to_square
    from vlmbinding.data.reading import open_checked_store
    from vlmbinding.data.vocab import Vocabulary
    from vlmbinding.extraction.object_pooling import object_vector_reader
    from vlmbinding.extraction.store import reduced_layer

    s = settings()
    vocab = Vocabulary.from_config(s["vocabulary"])
    images = pd.read_parquet(work / "images.parquet")
    objects = pd.read_parquet(work / "objects.parquet")
    ids = images["image_id"].astype(str).tolist()
    root = open_checked_store(work / args.job, ids)
    crop = crops_to_square(s["activations"]["preprocess"])
    masks = object_masks(objects, image_sizes(images, *s["canvas"]), crop, root.attrs["token_grid"])
    reader = object_vector_reader(root, objects, ids, masks)
    report = {"setup_cpu_s": cpu_seconds() - cpu0, "setup_wall_s": time.perf_counter() - wall0}
    reads = []

    def timed_reader(layer):
        c, w = cpu_seconds(), time.perf_counter()
        vectors = reader(layer)
        reads.append((cpu_seconds() - c, time.perf_counter() - w))
        return vectors

    blocks, z3 = [], 0
    for b in range(args.blocks):
        c, w = cpu_seconds(), time.perf_counter()
        table = geometry_part(
            None,
            [b],
            objects,
            ids,
            vocab.features,
            masks,
            n_null=args.n_null,
            n_bins=args.n_bins,
            seed=s["seed"],
            read_vectors=timed_reader,
        )
        blocks.append((cpu_seconds() - c, time.perf_counter() - w))
        z3 += int((table["z"] > 3).sum())
    drop_cache(work / args.job)  # measure_sharing's read of the pool, block by block
    pool_reads = []
    for b in range(args.blocks):
        c, w = cpu_seconds(), time.perf_counter()
        reduced_layer(root, b, *s["reduction"])
        pool_reads.append((cpu_seconds() - c, time.perf_counter() - w))
    report |= {
        "pool_reads": pool_reads,
        "blocks": blocks,
        "reads": reads,
        "objects": len(objects),
        "rows_z_over_3": z3,
        "rows": len(table) * args.blocks,
        "load": share.report(),
    }
    print_result(report)


def summary(mode: str, r: dict, args) -> list[str]:
    import numpy as np

    cpu, wall = np.array(r["blocks"]).T
    read_cpu, read_wall = np.array(r["reads"]).T
    pool_cpu, pool_wall = np.array(r["pool_reads"]).T
    per = cpu.mean()
    rest = r["cpu_s"] - cpu.sum() - pool_cpu.sum()  # start-up, imports, set-up
    lines = [
        f"{mode} store: job start-up and set-up {rest:.1f} CPU-s (of it tables, store, masks, "
        f"reader {r['setup_cpu_s']:.1f} CPU-s, {r['setup_wall_s']:.1f} s wall)",
        f"  per block: {per:.2f} CPU-s mean, {cpu.max():.2f} max ({wall.mean():.2f} s wall "
        f"under load); of it the store read {read_cpu.mean():.2f} CPU-s "
        f"({read_wall.mean():.2f} s wall)",
    ]
    for n in (args.pool, 24):
        total = rest + n * per
        lines.append(
            f"  projected {n} blocks: {total:.0f} CPU-s (target {TARGET_S:.0f} s: "
            f"{'met' if total <= TARGET_S else 'NOT met'})"
        )
    peak = r["vm_hwm_mb"]
    lines.append(
        f"  job peak memory {peak:.0f} MiB, job CPU {r['cpu_s']:.1f} s (target {TARGET_MIB:.0f} "
        f"MiB = 4 GB: {'met' if peak <= TARGET_MIB else 'NOT met'}); {r['rows_z_over_3']} of "
        f"{r['rows']} rows z > 3"
    )
    lines.append(
        f"  measure 1's read of a block (measure_sharing: store.reduced_layer, "
        f"{' over '.join(settings()['reduction'])}): {pool_cpu.mean():.2f} CPU-s "
        f"({pool_wall.mean():.2f} s wall); {args.pool} blocks {args.pool * pool_cpu.mean():.0f} "
        f"CPU-s, 24 blocks {24 * pool_cpu.mean():.0f} CPU-s"
    )
    lines.append(f"  {r['load']}")
    return lines


def main(argv=None) -> None:
    args = parse(argv)
    if args.job:
        job(args)
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_geometry_"))
    work.mkdir(parents=True, exist_ok=True)
    args.workdir = str(work)
    geo = vision(args.arch)
    print(
        f"{args.arch}: {args.images} images, {geo['tokens']} tokens ({geo['n_prefix_tokens']} "
        f"prefix + {geo['grid']}x{geo['grid']}), {geo['width']} neurons a block, {args.blocks} "
        f"blocks timed, {args.n_null} null draws, {args.n_bins} variance bins, BLAS threads "
        f"{args.threads or 'unset'}; work folder {work}",
        flush=True,
    )
    try:
        t0 = time.perf_counter()
        write_stores(args, work)
        print(
            f"set-up (not timed in the target): stores written in {time.perf_counter() - t0:.0f} s"
        )
        me = [sys.executable, str(Path(__file__).resolve()), *job_argv(args, ("job", "keep"))]
        jobs = [Job(m, [*me, "--job", m], kind=m) for m in MODES]
        run_jobs(jobs, cores=1, logs=work / "logs", threads=args.threads)
        for j in jobs:
            print("\n".join(summary(j.name, j.report, args)))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
