"""Benchmark: co-tuned neuron overlap (issue 22, measure 1) at ViT-L/14 geometry.

Target: `neuron_overlap` on one layer pool of 24 layers x 1,024 = 24,576 MLP output
neurons, 500 images, 16 features, 1,000 curveball null draws, in at most 2 minutes of wall
time and 4 GB of peak memory on the 2-core machine.

Set-up (not timed): the paper's 500-image presence matrix from the workflow's own scene
sampler (dataset seed 0) and synthetic reduced activations [500, 24,576] float32: standard
normal, with 1/8 of the neurons given a planted response to one or two features (so the
tuned sets are not pure noise). Timed: `neuron_overlap` (tuning, tuned sets, null, table)
and, with --conjunctions, `conjunction_coding` of the 30 colour x shape pairs.
Peak memory is this process's VmHWM (its own address space; /proc/self/status), which
includes the interpreter, numpy and the activations (printed separately as the baseline
before the call).

--mixing prints the lag autocorrelation of null overlaps one round apart on the same pool
(what `curveball.ROUNDS_PER_DRAW` was chosen from). --threads sets the BLAS threads before
numpy loads (as Snakemake does from a rule's `threads`; 0 leaves them unset).

Command (from the repository root):

    .venv/bin/python benchmarks/bench_sharing.py
    .venv/bin/python benchmarks/bench_sharing.py --conjunctions --mixing
    .venv/bin/python benchmarks/bench_sharing.py --neurons 2048 --n-null 200   # quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--neurons", type=int, default=24 * 1024, help="pool size (24 x 1,024)")
    p.add_argument("--n-null", type=int, default=1000, help="curveball null draws")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (0: leave unset)")
    p.add_argument("--conjunctions", action="store_true", help="also time conjunction_coding")
    p.add_argument("--mixing", action="store_true", help="print the chain's autocorrelation")
    return p.parse_args(argv)


def scenes():
    """Objects table, image ids, presence, object counts of the paper's 500 images."""
    from vlmbinding.data.toyshapes import sample_scenes
    from vlmbinding.data.vocab import Vocabulary, presence_matrix

    vocab = Vocabulary()
    objects = sample_scenes(vocab, [1, 2, 3, 4, 5], 100, seed=0)
    ids = list(dict.fromkeys(objects["image_id"]))
    counts = objects.groupby("image_id").size().loc[ids].to_numpy()
    return vocab, objects, ids, presence_matrix(objects, ids, vocab), counts


def activations(presence, n_neurons: int, seed: int = 0):
    """Standard-normal [image, neuron] float32; every 8th neuron responds to one or two
    features (amplitude 1.5 each)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    acts = rng.standard_normal((presence.shape[0], n_neurons), dtype=np.float32)
    tuned = np.arange(0, n_neurons, 8)
    first = rng.integers(0, presence.shape[1], tuned.size)
    second = rng.integers(0, presence.shape[1], tuned.size)
    acts[:, tuned] += 1.5 * presence[:, first]
    half = tuned[::2]
    acts[:, half] += 1.5 * presence[:, second[::2]]
    return acts


def mixing(member, seed: int = 0) -> None:
    import numpy as np

    from vlmbinding.analysis.curveball import null_overlaps

    draws = null_overlaps(member, 600, seed, rounds_per_draw=1, burn_in=20)
    i1, i2 = np.triu_indices(member.shape[1], k=1)
    series = draws[:, i1, i2].astype(float)  # [round, pair]
    series -= series.mean(axis=0)
    var = (series**2).mean(axis=0)
    for lag in (1, 2, 3, 4, 6):
        ac = (series[:-lag] * series[lag:]).mean(axis=0) / var
        print(
            f"  lag {lag} round(s): autocorrelation of pair overlaps, median {np.median(ac):.3f}, "
            f"max {ac.max():.3f}"
        )


def main(argv=None) -> None:
    args = parse(argv)
    if args.threads:
        for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[key] = str(args.threads)
    from _common import CpuShare, vm_hwm_mb

    from vlmbinding.analysis.conjunctions import conjunction_coding, conjunction_presence
    from vlmbinding.analysis.sharing import default_m, neuron_overlap, tuned_sets
    from vlmbinding.analysis.tuning import neuron_tuning

    vocab, objects, ids, presence, counts = scenes()
    acts = activations(presence, args.neurons)
    print(
        f"pool {args.neurons} neurons, {len(ids)} images, {len(vocab.features)} features, "
        f"m={default_m(args.neurons)}, {args.n_null} null draws, BLAS threads "
        f"{args.threads or 'unset'}"
    )
    base = vm_hwm_mb()
    print(f"baseline peak memory (interpreter, numpy, activations): {base:.0f} MiB")
    cpu = CpuShare()
    t0 = time.perf_counter()
    table = neuron_overlap(acts, presence, vocab.features, counts, n_null=args.n_null, seed=0)
    wall = time.perf_counter() - t0
    print(f"neuron_overlap: {wall:.1f} s wall, peak memory {vm_hwm_mb():.0f} MiB")
    print(f"  {cpu.report()}")
    print(
        f"  z > 3 in {(table['z'] > 3).sum()} of {len(table)} pairs (planted two-feature "
        "neurons are spread evenly over the pairs)"
    )
    if args.conjunctions:
        conj = conjunction_presence(objects, ids, vocab.colors, vocab.shapes)
        cpu.start()
        t0 = time.perf_counter()
        coding = conjunction_coding(
            acts,
            presence,
            vocab.features,
            counts,
            conj,
            vocab.colors,
            vocab.shapes,
            n_null=args.n_null,
            seed=0,
        )
        wall = time.perf_counter() - t0
        print(
            f"conjunction_coding: {wall:.1f} s wall, {len(coding)} rows, peak memory "
            f"{vm_hwm_mb():.0f} MiB"
        )
        print(f"  {cpu.report()}")
    if args.mixing:
        t = neuron_tuning(acts, presence, counts, seed=0)
        mixing(tuned_sets(t, default_m(args.neurons)))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
