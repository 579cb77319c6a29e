"""Benchmark: peak memory of the activation extraction against the number of images.

Target: the peak resident memory of `extract_activations` for 400 images is within 10% of
the peak for 100 images (the store is written batch by batch, so memory must not grow with
the number of images).

The toy-shapes images are drawn once (`vlmbinding.data.toyshapes.generate_dataset`, enough for
the largest count). Then, for each image count, a fresh Python process builds the
random-weights open_clip model (default ViT-B-32), wraps it in `LoadedModel` and runs
`extract_activations` on the first N images (batch 32, float16, zstd 1) into a temporary
store. The peak RSS of each process comes from `os.wait4` on that process alone (the
kernel's ru_maxrss of exactly that child; `RUSAGE_CHILDREN` would report the largest of
all children so far, which mixes the runs) and, as a cross-check, from the child's own
VmHWM (/proc/self/status) as it ends: Linux carries the parent's RSS at spawn time over
into a child's ru_maxrss, so wait4 is only right while the parent stays smaller than the
child (it does here: the parent never imports torch). Each child also reports its VmHWM
just before the extraction starts (imports + model + one warm-up batch), so the growth
during the extraction itself is shown too.

Command (from the repository root):

    .venv/bin/python benchmarks/bench_memory.py                      # 100 vs 400 images
    .venv/bin/python benchmarks/bench_memory.py --counts 40 160      # quicker check
    .venv/bin/python benchmarks/bench_memory.py --arch ViT-L-14 --device cuda
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import CpuShare, Job, print_result, run_jobs, toy_dataset, vm_hwm_mb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--counts", type=int, nargs="+", default=[100, 400], help="image counts")
    p.add_argument("--arch", default="ViT-B-32", help="open_clip architecture (random weights)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dtype", default="float16")
    p.add_argument("--compression-level", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the child")
    p.add_argument("--workdir", default=None, help="folder for images and stores (default: temp)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--seed", type=int, default=0)
    # internal: run one extraction in this process and print a JSON line
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--images-table", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def peak_rss_self_mb() -> float:
    """Peak RSS of this process's own address space, MiB; ru_maxrss without /proc."""
    own = vm_hwm_mb()
    return own if own is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    """One extraction of the first `args.child` images; prints a JSON line of figures."""
    import pandas as pd
    import torch

    from vlmbinding.extraction.recording import extract_activations, forward_batch, load_images
    from vlmbinding.models.architectures import architecture_config
    from vlmbinding.models.loading import from_config, pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    images = pd.read_parquet(args.images_table).head(args.child)
    torch.manual_seed(args.seed)
    loaded = from_config(architecture_config(args.arch), args.arch)
    model = loaded.model.to(device)
    paths = images["path"].tolist()
    forward_batch(model, load_images(paths[: args.batch_size], loaded.preprocess).to(device))
    before = peak_rss_self_mb()
    gpu_before = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0
    out = Path(args.workdir) / f"activations_{args.child}.zarr"
    t0 = time.perf_counter()
    extract_activations(
        loaded,
        paths,
        images["image_id"].tolist(),
        out,
        batch_size=args.batch_size,
        dtype=args.dtype,
        compression_level=args.compression_level,
        model_name="bench",
    )
    seconds = time.perf_counter() - t0
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0
    shutil.rmtree(out, ignore_errors=True)
    report = {
        "images": len(paths),
        "seconds": seconds,
        "rss_before_mb": before,
        "rss_peak_mb": peak_rss_self_mb(),
        "gpu_before_mb": gpu_before,
        "gpu_peak_mb": gpu_peak,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    print_result(report)


def run_child(args, n: int, table: Path, work: Path) -> dict:
    """Run one extraction in a fresh process; its own figures plus its wait4 peak RSS."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n)]
    cmd += ["--images-table", str(table), "--workdir", str(work), "--arch", args.arch]
    cmd += ["--batch-size", str(args.batch_size), "--dtype", args.dtype]
    cmd += ["--compression-level", str(args.compression_level), "--device", args.device]
    cmd += ["--seed", str(args.seed)] + (["--threads", str(args.threads)] if args.threads else [])
    job = Job(f"child_{n}", cmd)
    run_jobs([job], 1, work, threads=0)  # torch's threads: --threads, as the rule sets them
    return {**job.report, "wait4_peak_mb": job.wait4_mb, "process_wall_s": job.wall}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        child(args)
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        seconds = toy_dataset(work, max(args.counts), args.seed)
        table = work / "images.parquet"
        print(f"drew the images in {seconds:.1f} s", flush=True)
        results = []
        share = CpuShare()
        for n in args.counts:
            r = run_child(args, n, table, work)
            results.append(r)
            print(
                f"  {n} images: peak RSS {r['rss_peak_mb']:.0f} MiB (VmHWM), "
                f"{r['wait4_peak_mb']:.0f} MiB (wait4), before the extraction "
                f"{r['rss_before_mb']:.0f} MiB, extraction {r['seconds']:.1f} s",
                flush=True,
            )
        print()
        first = results[0]
        print(
            f"summary ({args.arch} random weights, batch {args.batch_size}, {args.dtype}, "
            f"{first['device']}, {first['threads']} torch threads):"
        )
        print(share.report())
        for r in results:
            gpu = f", GPU peak {r['gpu_peak_mb']:.0f} MiB" if r["device"].startswith("cuda") else ""
            print(
                f"{r['images']} images: peak RSS {r['rss_peak_mb']:.0f} MiB, growth during "
                f"extraction {r['rss_peak_mb'] - r['rss_before_mb']:.0f} MiB, "
                f"{r['images'] / r['seconds']:.1f} images/s{gpu}"
            )
        base = first["rss_peak_mb"]
        for r in results[1:]:
            ratio = r["rss_peak_mb"] / base
            verdict = "met" if abs(ratio - 1) <= 0.10 else "NOT met"
            print(
                f"peak {r['images']} / peak {first['images']} images = {ratio:.3f} "
                f"(target within 10%: {verdict})"
            )
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
