"""Benchmark: the whole intervention stage for one model, timed.

Target: on the demo's toy model (config/demo.yaml: 4 blocks of width 128, 100 feature
neurons), all 120 pairs with 5 control draws take at most 3 minutes on 2 cores.

Two ways to get a model and its inputs:

* --from-run DIR --model NAME: a finished workflow run in DIR (the demo:
  `snakemake --configfile config/demo.yaml results/toy-clip/superposition.parquet`);
  reads its activation store, feature neurons, superposition scores and checkpoint.
* --synthetic --arch ARCH: random weights of an open_clip (or resources/models/) arch,
  a fresh toy-shapes dataset (--images), its activation store written by the workflow's own
  `extract_activations`, and feature neurons with random affinities (timing only: the
  effects mean nothing). For the ViT-L/14 figure on a GPU:
  `python benchmarks/bench_interventions.py --synthetic --arch ViT-L-14 --pairs 20 --device cuda`

Timed: `vlmbinding.interventions.stage.run_stage`, as the rule calls it (model load, token means
from the store, the unablated residual cache, every pair's ablated passes, statistics).
Printed: wall time, seconds per pair and the CPU share other processes took meanwhile.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _common import CpuShare  # noqa: E402

from vlmbinding.analysis.neurons import superposition_scores  # noqa: E402
from vlmbinding.data import toyshapes as ds  # noqa: E402
from vlmbinding.data.vocab import Vocabulary, all_pairs  # noqa: E402
from vlmbinding.extraction.recording import extract_activations  # noqa: E402
from vlmbinding.interventions.stage import run_stage  # noqa: E402
from vlmbinding.models.architectures import architecture_config  # noqa: E402
from vlmbinding.models.loading import from_config, pick_device, save_checkpoint  # noqa: E402

DEMO_SETTINGS = {
    "select": "shared",
    "m": None,
    "ablation": "mean",
    "batch_size": 256,
    "cache_gib": 8,
    "control_draws": 5,
    "control_match": "layers",
    "scale_bins": 4,
    "neurons_per_pair": 10,
    "pairs": "all",
    "ratio_threshold": None,
    "seed": 0,
}
STATISTICS = {"bootstrap": 2000, "permutations": 999, "seed": 0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-run", help="working directory of a finished workflow run")
    src.add_argument("--synthetic", action="store_true", help="random weights, fresh data")
    p.add_argument(
        "--model",
        default="toy-clip",
        help="models entry name (with --from-run; toy-clip/controls/random: its twin)",
    )
    p.add_argument("--arch", default="toy-vit", help="architecture (with --synthetic)")
    p.add_argument("--images", type=int, default=500, help="dataset size (with --synthetic)")
    p.add_argument("--n-neurons", type=int, default=1000, help="feature neurons (synthetic)")
    p.add_argument("--pairs", default="all", help="all | n (top/bottom by S + a sample)")
    p.add_argument("--control-draws", type=int, default=5)
    p.add_argument("--control-match", default="layers", choices=["layers", "layers_and_scale"])
    p.add_argument("--select", default="shared", choices=["shared", "pair_ratio"])
    p.add_argument("--pool-layers", default="all", help="analysed blocks: all | last N (int)")
    p.add_argument("--quiet", action="store_true", help="no per-pair log lines")
    p.add_argument("--out", default=None, help="folder for effects.parquet and summary.tsv")
    p.add_argument("--neurons-per-pair", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    p.add_argument("--workdir", default=None, help="folder for the synthetic inputs")
    return p.parse_args(argv)


def from_run(args):
    work = Path(args.from_run)
    base = work / "results" / args.model
    paths = {
        "store": base / "activations.zarr",
        "images": work / "results/dataset/images.parquet",
        "objects": work / "results/dataset/objects.parquet",
        "superposition": base / "superposition.parquet",
        "feature_neurons": base / "feature_neurons.parquet",
    }
    images = pd.read_parquet(paths["images"])
    # image paths in the tables are relative to the run's working directory
    images["path"] = [str(work / p) for p in images["path"]]
    fixed = Path(tempfile.mkdtemp(prefix="bench_interventions_")) / "images.parquet"
    images.to_parquet(fixed, index=False)
    paths["images"] = fixed
    if args.model.endswith("/controls/random"):  # the toy model's random-weights twin
        entry = {"name": args.model, "arch": "toy-vit", "weights": "random", "twin_of": "toy"}
        entry.update(base=args.model.split("/")[0], role="random", seed=0)
        return entry, None, {k: str(v) for k, v in paths.items()}
    entry = {"name": args.model, "arch": "toy-vit", "weights": "toy"}
    return entry, str(base / "toy_model/checkpoint.pt"), {k: str(v) for k, v in paths.items()}


def synthetic(args, work: Path):
    vocab = Vocabulary()
    per_count = -(-args.images // 5)
    images, objects = ds.generate_dataset(work / "images", vocab, [1, 2, 3, 4, 5], per_count, 0)
    images.to_parquet(work / "images.parquet", index=False)
    objects.to_parquet(work / "objects.parquet", index=False)
    torch.manual_seed(0)
    cfg = architecture_config(args.arch, REPO / "resources" / "models")
    loaded = from_config(cfg, args.arch)
    loaded.model.to(pick_device(args.device))
    t0 = time.perf_counter()
    extract_activations(
        loaded, images["path"].tolist(), images["image_id"].tolist(), work / "store.zarr"
    )
    print(f"set-up: activation store of {len(images)} images in {time.perf_counter() - t0:.1f} s")
    save_checkpoint(loaded.model.cpu(), cfg, work / "random.pt")
    geometry = loaded.geometry
    rng = np.random.default_rng(0)
    n = args.n_neurons
    flat = rng.choice(geometry["layers"] * geometry["width"], size=n, replace=False)
    aff = rng.uniform(size=(n, len(vocab.features))) ** 4
    neurons = pd.DataFrame(
        {
            "layer": flat // geometry["width"],
            "unit": flat % geometry["width"],
            **{f: aff[:, j] for j, f in enumerate(vocab.features)},
        }
    )
    neurons.to_parquet(work / "feature_neurons.parquet", index=False)
    scores = superposition_scores(neurons, vocab.features, all_pairs(vocab.features))
    scores.to_parquet(work / "superposition.parquet", index=False)
    entry = {"name": "bench", "arch": args.arch, "weights": str(work / "random.pt")}
    paths = {
        "store": work / "store.zarr",
        "images": work / "images.parquet",
        "objects": work / "objects.parquet",
        "superposition": work / "superposition.parquet",
        "feature_neurons": work / "feature_neurons.parquet",
    }
    return entry, None, {k: str(v) for k, v in paths.items()}


def main(argv=None) -> None:
    args = parse_args(argv)
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_interventions_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        entry, weights, paths = from_run(args) if args.from_run else synthetic(args, work)
        import zarr

        n_layers = int(zarr.open_group(paths["store"], mode="r").attrs["layers"])
        keep = n_layers if args.pool_layers == "all" else int(args.pool_layers)
        pool = {"layers": list(range(n_layers - keep, n_layers)), "reduce": "mean"}
        pool["tokens"] = "all"
        settings = {
            **DEMO_SETTINGS,
            "select": args.select,
            "pairs": args.pairs if args.pairs == "all" else int(args.pairs),
            "control_draws": args.control_draws,
            "control_match": args.control_match,
            "neurons_per_pair": args.neurons_per_pair,
            "batch_size": args.batch_size,
        }
        vocabulary = {"shapes": None, "colors": None, "positions": None}
        vocabulary = {k: list(getattr(Vocabulary(), k)) for k in vocabulary}
        share = CpuShare()
        t0, cpu0 = time.perf_counter(), time.process_time()
        effects, summary, _ = run_stage(
            entry,
            weights,
            paths,
            settings,
            vocabulary,
            "a {color} {shape}",
            STATISTICS,
            0.9,
            args.device,
            pool,
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(f"process CPU time: {cpu:.1f} s")
        device = pick_device(args.device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(
            f"intervention stage: {len(effects)} pairs x (own + {args.control_draws} control "
            f"draws, {args.control_match}, select {args.select}), "
            f"{int((effects['n_neurons'] == 0).sum())} pairs with nothing to ablate, median "
            f"{effects['n_neurons'].median():.0f} neurons per pair: "
            f"{wall:.1f} s wall ({wall / max(1, len(effects)):.2f} s per pair) on {name}, "
            f"{torch.get_num_threads()} torch threads"
        )
        print(share.report())
        cols = ["measure", "contrast", "n_pairs", "excess_mean", "excess_ci_low"]
        cols += ["excess_ci_high", "excess_p", "covariate", "spearman", "mantel_p"]
        print(summary[cols].to_string(index=False))
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            effects.to_parquet(Path(args.out) / "effects.parquet", index=False)
            summary.to_csv(Path(args.out) / "summary.tsv", sep="\t", index=False)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
