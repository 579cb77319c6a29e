"""Benchmark: coverage of the feature-level intervals of r where S is additive.

S(f1, f2) = P(f1) + P(f2) is the study's real structure (docs/statistics.md). Each data
set draws F feature effects P and metric effects that correlate c with them, with
pair-level noise of sd sigma in the metric (sigma 0: the metric additive too); the pairs'
population r is c * sqrt(2 / (2 + sigma^2)). Printed: how often each 95% interval covers
that r, and its mean width, for the percentile feature bootstrap (`feature_bootstrap_ci`),
BCa over features (bias and the jackknife's acceleration) and the jackknife interval on
Fisher z (`feature_jackknife_ci`, the default).

Measured (300 data sets each, 500 resamples; 2-core machine, 36 s of CPU): percentile
0.88-0.89 wherever both are additive (sigma 0) and 0.94-0.96 with sigma 1; BCa 0.90-0.92
and 0.93-0.96; jackknife 0.95-0.97 and 0.94-0.98, 20-40% wider than the percentile
interval.

Command (from the repository root):

    .venv/bin/python benchmarks/bench_coverage.py [--sims 300] [--boot 500]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from vlmbinding.analysis.resampling import (  # noqa: E402
    feature_jackknife_ci,
    feature_resamples,
    resampled_pairs,
    rowwise_correlation,
)


def draw(rng, f, c, sigma):
    s = rng.normal(size=f)
    m = c * s + np.sqrt(1 - c * c) * rng.normal(size=f)
    e = np.triu(rng.normal(size=(f, f)) * sigma, 1)
    a, b = s[:, None] + s[None, :], m[:, None] + m[None, :] + e + e.T
    np.fill_diagonal(a, np.nan)
    np.fill_diagonal(b, np.nan)
    return a, b


def pair_r(a, b):
    iu = np.triu_indices(a.shape[0], 1)
    return rowwise_correlation(a[iu][None], b[iu][None])[0]


def intervals(a, b, n_boot, seed):
    f = a.shape[0]
    r = pair_r(a, b)
    draws = feature_resamples(f, n_boot, np.random.default_rng(seed))
    rb = rowwise_correlation(*resampled_pairs(a, b, draws))
    rb = rb[np.isfinite(rb)]
    keep = [np.arange(f) != i for i in range(f)]
    rj = np.array([pair_r(a[np.ix_(k, k)], b[np.ix_(k, k)]) for k in keep])
    z0 = stats.norm.ppf(np.clip(np.mean(rb < r), 1e-6, 1 - 1e-6))
    d = rj.mean() - rj
    acc = (d**3).sum() / (6 * ((d**2).sum()) ** 1.5)
    zq = stats.norm.ppf([0.025, 0.975])
    bca = np.percentile(rb, 100 * stats.norm.cdf(z0 + (z0 + zq) / (1 - acc * (z0 + zq))))
    return {
        "percentile": np.percentile(rb, [2.5, 97.5]),
        "bca": bca,
        "jackknife": feature_jackknife_ci(a, b),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=300)
    ap.add_argument("--boot", type=int, default=500)
    args = ap.parse_args()
    print("features  c    sigma  true r  | coverage (mean width): percentile, bca, jackknife")
    for f in (16, 11):
        for c in (0.0, 0.5, 0.8):
            for sigma in (0.0, 1.0):
                true = c * np.sqrt(2 / (2 + sigma**2))
                rng = np.random.default_rng(0)
                hits, widths = {}, {}
                for i in range(args.sims):
                    for k, (lo, hi) in intervals(*draw(rng, f, c, sigma), args.boot, i).items():
                        hits.setdefault(k, []).append(lo <= true <= hi)
                        widths.setdefault(k, []).append(hi - lo)
                cells = ", ".join(
                    f"{np.mean(hits[k]):.3f} ({np.mean(widths[k]):.2f})" for k in hits
                )
                print(f"{f:8d}  {c:.1f}  {sigma:.1f}    {true:.3f}   | {cells}")


if __name__ == "__main__":
    main()
