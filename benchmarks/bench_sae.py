"""Benchmark: sparse-autoencoder training (issue 22, measure 3), timed, with its fit.

Target (the issue): the whole sharing stage on the demo's toy model, SAEs included, at most
3 minutes on the 2-core machine; so one layer's SAE should train in a few seconds with a
fraction of variance unexplained (FVU) below 0.2. ViT-L/14's SAEs are GPU jobs: their
figure here is a CPU extrapolation (and a GPU one with --device cuda).

Two parts:

* Toy model (config/demo.yaml: 4 blocks of width 128, 500 images of 65 tokens = 32,500
  tokens a layer). With --store (an activation store in tokens mode, e.g. the demo's
  results/toy-clip/activations.zarr), each layer's tokens are the real MLP outputs; without
  it, synthetic tokens of the same geometry (sparse non-negative sources, 4 per unit, mixed
  by random unit directions, plus 10% Gaussian noise). Per layer and SAE seed: a seeded
  sample of --tokens tokens (`sample_tokens`), `train_topk_sae` with the library's
  defaults (or the flags), and the pooling of every image (`sae_pool_activations`).
  Printed: CPU seconds, held-out FVU and dead fraction of each, a train_sae job's start-up
  CPU (a fresh interpreter importing torch and overcomplete), each layer's job in CPU
  seconds and their wall time two at a time on an unloaded 2-core machine. The whole
  stage, as Snakemake runs it, is benchmarks/bench_sae_stage.py.
* ViT-L/14 geometry (width 1024, expansion 4 = 4,096 latents, ~100,000 tokens a layer):
  synthetic tokens; --vit-steps optimiser steps timed and extrapolated to the full run
  (tokens / batch x epochs steps), and the encoding of 500 images x 257 tokens
  extrapolated from 8,192 tokens. Per layer; x24 layers x3 seeds for the model.

Each run uses --threads torch threads (default 1, as a Snakemake job with threads: 1).

    .venv/bin/python benchmarks/bench_sae.py                                 # synthetic
    .venv/bin/python benchmarks/bench_sae.py --store results/toy-clip/activations.zarr
    .venv/bin/python benchmarks/bench_sae.py --skip-vit --seeds 1 --epochs 20 --k 8
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import CpuShare  # noqa: E402

from vlmbinding.analysis import sae, sae_tokens  # noqa: E402

DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(sae.train_topk_sae).parameters.items()
    if p.default is not inspect.Parameter.empty
}
KEYS = ("expansion", "k", "epochs", "lr", "batch_size", "aux_penalty")


def synthetic_tokens(n: int, width: int, seed: int, per_unit: int = 4, active: int = 4):
    """float32 [n, width]: `active` of per_unit*width sparse sources (amounts U(0.5, 1.5))
    along random unit directions, plus Gaussian noise of 10% of the signal's scale."""
    rng = np.random.default_rng(seed)
    n_sources = per_unit * width
    directions = rng.normal(size=(n_sources, width)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    which = rng.integers(0, n_sources, size=(n, active))
    amounts = rng.uniform(0.5, 1.5, size=(n, active)).astype(np.float32)
    x = np.einsum("na,naw->nw", amounts, directions[which])
    x += 0.1 * x.std() * rng.standard_normal(x.shape, dtype=np.float32)
    return x


def toy_layers(args):
    """[(name, mlp_out [image, token, width]), ...] of the store, or synthetic ones."""
    if args.store:
        import zarr

        root = zarr.open_group(args.store, mode="r")
        width, arr = root.attrs["width"], root["mlp_out"]
        n_layers = arr.shape[2] // width
        return [
            (f"layer {i}", np.asarray(arr[:, :, i * width : (i + 1) * width], dtype=np.float32))
            for i in range(n_layers)
        ]
    return [
        (f"layer {i} (synthetic)", synthetic_tokens(500 * 65, 128, seed=i).reshape(500, 65, 128))
        for i in range(4)
    ]


def settings(args) -> dict:
    return {k: getattr(args, k) for k in KEYS if getattr(args, k) is not None}


def job_start_cpu() -> float:
    """CPU seconds a fresh train_sae job spends before training: the interpreter, torch,
    the library and overcomplete's modules (as the rule script imports them)."""
    import subprocess

    code = (
        "import resource, sys; sys.path.insert(0, sys.argv[1]); import torch; "
        "from vlmbinding.analysis import sae; sae._overcomplete_sae(); "
        "u = resource.getrusage(resource.RUSAGE_SELF); print(u.ru_utime + u.ru_stime)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "workflow" / "scripts")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.split()[-1])


def bench_toy(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    layers = toy_layers(args)
    kw = settings(args)
    shown = {**{k: DEFAULTS[k] for k in KEYS}, **kw}
    print(f"Toy model: {len(layers)} layers, tokens sampled {args.tokens}, {shown}")
    cpu = CpuShare()
    start = job_start_cpu()
    print(f"  a train_sae job's start (python, torch, overcomplete): {start:.1f} CPU s")
    per_layer, total_pool = [], 0.0
    for name, mlp_out in layers:
        train = 0.0
        for seed in range(args.seeds):
            tokens = sae_tokens.sample_tokens(mlp_out, args.tokens, seed=1000 + seed)
            t0 = time.process_time()
            dictionary, _ = sae.train_topk_sae(
                tokens, seed=seed, name=name, device=args.device, **kw
            )
            t1 = time.process_time()
            pooled = sae_tokens.sae_pool_activations(mlp_out, dictionary, device=args.device)
            t2 = time.process_time()
            train, total_pool = train + t1 - t0, total_pool + t2 - t1
            meta = dictionary.meta
            print(
                f"  {name}, seed {seed}: train {t1 - t0:5.2f} CPU s ({meta['n_tokens']} tokens), "
                f"FVU {meta['fvu']:.3f}, dead {meta['dead_fraction']:.3f}; pool "
                f"{mlp_out.shape[0]} images {t2 - t1:4.2f} CPU s -> {pooled.shape}"
            )
        per_layer.append(start + train)
    n = len(layers) * args.seeds
    jobs = sorted(per_layer, reverse=True)
    two_cores = max(sum(jobs[0::2]), sum(jobs[1::2]))  # longest first, two at a time
    print(
        f"  train_sae jobs (start + {args.seeds} seeds): "
        + ", ".join(f"{x:.1f}" for x in per_layer)
        + f" CPU s; {sum(per_layer):.1f} in all, about {two_cores:.0f} s of wall on 2 "
        f"unloaded cores; encoding and pooling the {n} SAEs' latents (measure_sharing_sae): "
        f"{total_pool:.1f} CPU s. The whole stage: benchmarks/bench_sae_stage.py"
    )
    print(f"  {cpu.report()} (wall figures stretch with other processes' load; CPU s less)")


def bench_vit(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    width, n_tokens = 1024, args.vit_tokens
    batch = args.vit_batch
    epochs = args.epochs if args.epochs is not None else DEFAULTS["epochs"]
    expansion = args.expansion or DEFAULTS["expansion"]
    k = args.k or DEFAULTS["k"]
    steps = args.vit_steps
    tokens = synthetic_tokens(steps * batch, width, seed=0)
    print(
        f"ViT-L/14 geometry: width {width}, {expansion * width} latents, k {k}, batch {batch}, "
        f"device {args.device}, {args.threads} thread(s)"
    )
    t0 = time.perf_counter()
    kw = {**settings(args), "epochs": 1, "batch_size": batch, "holdout": 0.0}
    dictionary, _ = sae.train_topk_sae(tokens, device=args.device, name="ViT-L/14 layer", **kw)
    per_step = (time.perf_counter() - t0) / steps
    full_steps = -(-n_tokens // batch) * epochs
    t0 = time.perf_counter()
    sae.encode(dictionary, tokens[:8192], device=args.device)
    per_token = (time.perf_counter() - t0) / 8192
    train_s, pool_s = per_step * full_steps, per_token * 500 * 257
    print(
        f"  {steps} steps: {per_step * 1000:.0f} ms a step (incl. per-epoch FVU, dead count); "
        f"{n_tokens} tokens x {epochs} epochs = {full_steps} steps: ~{train_s / 60:.1f} min a "
        f"layer; pooling 500 x 257 tokens: ~{pool_s:.0f} s a layer; 24 layers x {args.seeds} "
        f"seeds: ~{24 * args.seeds * (train_s + pool_s) / 3600:.1f} h"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", help="activation store (tokens mode) of the toy model")
    p.add_argument("--tokens", type=int, default=16384, help="tokens sampled a layer")
    p.add_argument("--seeds", type=int, default=3, help="SAE seeds a layer")
    p.add_argument("--expansion", type=int)
    p.add_argument("--k", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--aux-penalty", dest="aux_penalty", type=float)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-toy", action="store_true")
    p.add_argument("--skip-vit", action="store_true")
    p.add_argument("--vit-tokens", type=int, default=100_000)
    p.add_argument("--vit-batch", type=int, default=1024)
    p.add_argument("--vit-steps", type=int, default=20, help="steps timed, then extrapolated")
    args = p.parse_args()
    if not args.skip_toy:
        bench_toy(args)
    if not args.skip_vit:
        bench_vit(args)


if __name__ == "__main__":
    main()
