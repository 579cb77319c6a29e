"""Benchmark: the activation rule's extraction time against a bare forward pass.

Target: `extract_activations` (hooks on every block's MLP, dtype conversion, device-to-host
copies, Zarr writes) takes at most 1.15 x the time of a bare `model.encode_image` over the
same images, in the same batches, with the same model, image loading included in both
(Snakemake's start-up is not part of either).

A random-weights open_clip model (`open_clip.create_model(arch, pretrained=None)`, wrapped
in `vlmbinding.models.loading.LoadedModel`) runs over N toy-shapes images drawn with
`vlmbinding.data.toyshapes.generate_dataset` into a temporary folder. Timed, after one warm-up
batch:

  extraction          extract_activations(...) to a temporary store (loading and
                      preprocessing included: the rule reads the images itself), with
                      the workflow's defaults (--store, --codec, --layout, --loader-threads)
  bare forward+load   the same image loader (threads decoding ahead), then
                      model.encode_image under no_grad (no hooks, no writes)
  bare+serial load    load + preprocess each batch, then encode_image, sequentially
  bare forward        model.encode_image only, on images loaded beforehand
  hooked forward      forward_batch (hooks + concatenation) + dtype conversion + copy to
                      the host, images loaded beforehand, no writes (where the overhead is)
  load only           load + preprocess every batch, no model
  write only          the Zarr writes of the same amount of mlp_out (one real batch written
                      at every batch position of a fresh store), no model

CUDA is synchronised before every clock reading. With --repeat R each measurement runs R
times (interleaved, the order rotated each round) and the fastest is reported, with the
median of the R rounds' ratios (extraction over bare forward with loading, each round's
two runs paired) and the median of each measurement next to it; wall and
CPU time are both shown, and how much CPU other processes took meanwhile. On a shared
CPU the figures are noisy: use --repeat 3 or more (and --threads 1 if the other processes
keep a core busy: a 2-thread forward then waits on its slower thread).

Command (from the repository root):

    .venv/bin/python benchmarks/bench_extraction.py                 # ViT-B-32, 64 images
    .venv/bin/python benchmarks/bench_extraction.py --images 32     # quick check
    .venv/bin/python benchmarks/bench_extraction.py --arch ViT-L-14 --images 500 --device cuda
    .venv/bin/python benchmarks/bench_extraction.py --arch ViT-L-14 --images 5000 \
        --device cuda --store reduced --loader-threads 8
    # a SigLIP tower (open_clip + timm trunk, no CLS token, attention pool), median of 5
    .venv/bin/python benchmarks/bench_extraction.py --arch ViT-B-16-SigLIP --images 192 \
        --repeat 5 --only extraction,bare_load
Towers with a timm trunk are built the same way (random weights, timm's own init); their
hub tokenizer is dropped (extraction never tokenizes, and offline the hub is not there).
On CUDA it also prints GPU utilisation (sampled by nvidia-smi), and peak host and device
memory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from _common import CpuShare, vm_hwm_mb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vlmbinding.data import toyshapes as ds  # noqa: E402
from vlmbinding.data.vocab import Vocabulary  # noqa: E402
from vlmbinding.extraction import store as st  # noqa: E402
from vlmbinding.extraction.recording import (  # noqa: E402
    blocks,
    extract_activations,
    forward_batch,
    image_batches,
    load_images,
    open_store,
    store_arrays,
)
from vlmbinding.models.architectures import architecture_config  # noqa: E402
from vlmbinding.models.loading import LoadedModel, from_config, pick_device  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="ViT-B-32", help="open_clip architecture (random weights)")
    p.add_argument("--images", type=int, default=64, help="number of toy-shapes images")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dtype", default="float16", help="dtype of the stored mlp_out")
    p.add_argument("--codec", default="none", help="activations.codec")
    p.add_argument("--compression-level", type=int, default=1, help="level of the codec")
    p.add_argument("--layout", default="layer-chunks", help="activations.layout")
    p.add_argument("--store", default="tokens", choices=["tokens", "reduced"])
    p.add_argument("--autocast", default="none", choices=["none", "bf16", "fp16"])
    p.add_argument("--loader-threads", type=int, default=2, help="activations.loader_threads")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: as is)"
    )
    p.add_argument("--repeat", type=int, default=1, help="runs of each measurement; best is kept")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated measurements to run (default all): extraction,bare_load,...",
    )
    p.add_argument("--workdir", default=None, help="folder for images and store (default: temp)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, device):
    """(wall seconds, CPU seconds, result) of fn(), CUDA synchronised on both sides."""
    sync(device)
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, cpu_seconds() - c0, out


class GpuUtilisation:
    """GPU utilisation (%) sampled by `nvidia-smi` every 100 ms while extracting (CUDA only)."""

    def __init__(self, device: torch.device):
        self.samples: list[int] = []
        self.on = device.type == "cuda" and shutil.which("nvidia-smi") is not None

    @contextmanager
    def sampling(self, active: bool):
        if not (active and self.on):
            yield
            return
        cmd = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        proc = subprocess.Popen([*cmd, "-lms", "100"], stdout=subprocess.PIPE, text=True)
        try:
            yield
        finally:
            proc.terminate()
            out, _ = proc.communicate()
            self.samples += [int(x) for x in out.split() if x.strip().isdigit()]

    def summary(self) -> str:
        if not self.samples:
            return "not measured (no nvidia-smi)"
        x = np.array(self.samples)
        return f"mean {x.mean():.0f}%, median {np.median(x):.0f}% ({len(x)} samples)"


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def make_dataset(image_dir: Path, n_images: int, seed: int) -> list[str]:
    """n toy-shapes images (1..5 objects, spread evenly over the counts); their paths."""
    counts = [1, 2, 3, 4, 5]
    per_count = -(-n_images // len(counts))
    images, _ = ds.generate_dataset(image_dir, Vocabulary(), counts, per_count, seed)
    return images["path"].tolist()[:n_images]


def build_model(arch: str, device: torch.device, seed: int) -> LoadedModel:
    torch.manual_seed(seed)
    cfg = architecture_config(arch)
    # extraction never tokenizes: a hub tokenizer (SigLIP's) would need the network
    cfg.get("text_cfg", {}).pop("hf_tokenizer_name", None)
    loaded = from_config(cfg, arch)
    loaded.model.to(device)
    return loaded


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_extraction_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(args, device, work)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


def run(args, device: torch.device, work: Path) -> None:
    t, _, paths = timed(lambda: make_dataset(work / "images", args.images, args.seed), device)
    print(f"drew {len(paths)} images in {t:.1f} s", flush=True)
    loaded = build_model(args.arch, device, args.seed)
    model, preprocess = loaded.model, loaded.preprocess
    geo = loaded.geometry
    n_layers, width, tokens = len(blocks(model)), geo["width"], geo["tokens"]
    bs, n = args.batch_size, len(paths)
    starts = list(range(0, n, bs))
    ids = [Path(p).stem for p in paths]
    torch_dtype = getattr(torch, args.dtype)
    np_dtype = np.dtype(args.dtype)
    mlp_bytes = n * tokens * n_layers * width * np_dtype.itemsize

    print(
        f"{args.arch} random weights on {device} ({torch.get_num_threads()} torch threads); "
        f"{n} images, batch {bs}, {args.dtype}, store {args.store}, codec {args.codec}, "
        f"layout {args.layout}, {args.loader_threads} loader threads; "
        f"mlp_out [{n}, {tokens}, {n_layers * width}] = {mlp_bytes / 1e6:.1f} MB uncompressed",
        flush=True,
    )

    preloaded = [load_images(paths[s : s + bs], preprocess) for s in starts]
    with torch.no_grad():  # warm-up: allocator, kernels, oneDNN primitives
        forward_batch(model, preloaded[0].to(device))
        model.encode_image(preloaded[0].to(device))
    sync(device)

    def extraction():
        out = work / f"activations_{time.monotonic_ns()}.zarr"
        extract_activations(
            loaded,
            paths,
            ids,
            out,
            batch_size=bs,
            dtype=args.dtype,
            codec=args.codec,
            compression_level=args.compression_level,
            layout=args.layout,
            store=args.store,
            autocast=args.autocast,
            workers=args.loader_threads,
            model_name="bench",
        )
        return out

    @torch.no_grad()
    def bare_with_loading():
        loader = image_batches(paths, preprocess, bs, args.loader_threads, device.type == "cuda")
        for _, images in loader:
            model.encode_image(images.to(device, non_blocking=True))

    @torch.no_grad()
    def bare_serial_loading():
        for s in starts:
            model.encode_image(load_images(paths[s : s + bs], preprocess).to(device))

    @torch.no_grad()
    def bare():
        for images in preloaded:
            model.encode_image(images.to(device))

    def hooked():
        for images in preloaded:
            mlp, emb = forward_batch(model, images.to(device))
            mlp.to(torch_dtype).cpu().numpy().astype(np_dtype, copy=False)
            emb.float().cpu().numpy()

    def load_only():
        for s in starts:
            load_images(paths[s : s + bs], preprocess)

    with torch.no_grad():
        sample = forward_batch(model, preloaded[0].to(device))[0]
    sample = sample.to(torch_dtype).cpu().numpy().astype(np_dtype, copy=False)

    def write_only():
        out = work / f"write_only_{time.monotonic_ns()}.zarr"
        arrays = store_arrays("tokens", n_layers, width, tokens, geo["embed_dim"], args.dtype)
        root = st.create_store(
            out, ids, arrays, bs, width, args.codec, args.compression_level, args.layout
        )
        for s in starts:
            root["mlp_out"][s : s + min(bs, n - s)] = sample[: min(bs, n - s)]
        shutil.rmtree(st.partial_path(out))

    best, best_cpu, walls = {}, {}, defaultdict(list)
    store = None
    gpu_util = GpuUtilisation(device)
    share = CpuShare()
    measurements = [
        ("extraction", extraction),
        ("bare_load", bare_with_loading),
        ("bare_serial", bare_serial_loading),
        ("bare", bare),
        ("hooked", hooked),
        ("load", load_only),
        ("write", write_only),
    ]
    if args.only:
        keep = set(args.only.split(",")) | {"extraction", "bare_load"}
        measurements = [m for m in measurements if m[0] in keep]
    for i in range(args.repeat):
        # a different order each round, so no measurement always follows the same one
        k = i % len(measurements)
        for name, fn in measurements[k:] + measurements[:k]:
            with gpu_util.sampling(name == "extraction"):
                t, c, out = timed(fn, device)
            print(f"  {name:<10} {t:8.2f} s wall {c:8.2f} s CPU", flush=True)
            best[name] = min(best.get(name, float("inf")), t)
            walls[name].append(t)
            best_cpu[name] = min(best_cpu.get(name, float("inf")), c)
            if name == "extraction":
                if store is not None:
                    shutil.rmtree(store)
                store = out

    best = defaultdict(lambda: float("nan"), best)  # measurements left out by --only
    root = open_store(store)
    assert root["embeddings"].shape == (n, geo["embed_dim"])
    size = dir_size(store)
    ext, bl, b = best["extraction"], best["bare_load"], best["bare"]
    print()
    print(f"summary ({args.arch}, {n} images, {device}, best of {args.repeat}):")
    print(share.report())
    print(f"extraction {ext:.1f} s, bare forward with loading {bl:.1f} s, ratio {ext / bl:.2f}")
    rounds = np.array(walls["extraction"]) / np.array(walls["bare_load"])
    print(
        f"median of {args.repeat} rounds: extraction {np.median(walls['extraction']):.1f} s, "
        f"bare forward with loading {np.median(walls['bare_load']):.1f} s; ratio per round "
        f"{', '.join(f'{r:.2f}' for r in rounds)}, median {np.median(rounds):.2f}"
    )
    bs_ = best["bare_serial"]
    print(
        f"extraction {ext:.1f} s, bare forward, serial loading {bs_:.1f} s, ratio {ext / bs_:.2f}"
    )
    print(f"extraction {ext:.1f} s, bare forward without loading {b:.1f} s, ratio {ext / b:.2f}")
    print(
        f"hooked forward + conversion (no writes) {best['hooked']:.1f} s, "
        f"ratio to bare {best['hooked'] / b:.2f}"
    )
    ce, cb = best_cpu["extraction"], best_cpu["bare_load"]
    print(
        f"CPU time: extraction {ce:.1f} s, bare forward with loading {cb:.1f} s, ratio "
        f"{ce / cb:.2f} (less sensitive to other processes than wall time on a shared CPU)"
    )
    print(f"loading + preprocessing alone {best['load']:.1f} s")
    print(
        f"writing alone {best['write']:.1f} s ({mlp_bytes / 1e6 / best['write']:.0f} MB/s "
        f"uncompressed mlp_out)"
    )
    print(
        f"images/s: extraction {n / ext:.1f}, bare forward with loading {n / bl:.1f}, "
        f"bare forward {n / b:.1f}"
    )
    print(
        f"store {size / 1e6:.1f} MB on disk ({size / mlp_bytes:.2f} of uncompressed), "
        f"write rate {mlp_bytes / 1e6 / ext:.1f} MB/s of uncompressed mlp_out over the extraction"
    )
    target = "met" if ext / bl <= 1.15 else "NOT met"
    print(f"target ratio <= 1.15 (against bare forward with the same loading): {target}")
    if device.type == "cuda":
        print(
            f"peak device memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB; "
            f"GPU utilisation while extracting: {gpu_util.summary()}"
        )
    print(f"peak host memory (VmHWM) {vm_hwm_mb():.0f} MiB")


if __name__ == "__main__":
    main()
