"""What a feature-level test could have detected: the minimum detectable correlation.

A Mantel p above 0.05 says "not detected", not "no relation": with 11-16 features a test
whose unit is the feature has limited power, and how limited depends on how much of the
pair values the features explain (values that move with their features carry fewer
independent units than values that vary pair by pair). `minimum_detectable_r` simulates
data with the row's own structure and finds the smallest |r| that the Mantel test (features
permuted, the unit of `correlation.mantel_test`) detects with the asked power.

The simulated structure: F features, the row's pairs among them. Each of S and the metric
is standardised feature effects plus a pair-level component,

    S_ij = sqrt(s_S) (u_i + u_j) / sqrt(2) + sqrt(1 - s_S) e_ij,
    M_ij = sqrt(s_M) (v_i + v_j) / sqrt(2) + sqrt(1 - s_M) g_ij,

with s_S and s_M the shares of the row's S and metric that additive feature effects
explain (`additive_share`; S is additive, s_S = 1, METHOD.md section 4). A planted
correlation c couples both parts, v = c u + sqrt(1 - c^2) u', g = c e + sqrt(1 - c^2) e',
so the pairs' population r is c (sqrt(s_S s_M) + sqrt((1 - s_S)(1 - s_M))). The smallest c
with power >= `power` is found by bisection on common random numbers and returned as r.
Monte Carlo error: power is estimated from `n_sim` data sets (sd sqrt(0.8 * 0.2 / n_sim),
0.028 at 200), which moves the returned r by about 0.02 (sd over seeds, measured at 16
features; tests/analysis/test_power.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from vlmbinding.analysis.resampling import feature_permutations

_BISECTIONS = 8


def additive_share(m: np.ndarray) -> float:
    """Share of the variance of a pair matrix's finite values that feature effects explain.

    `m` is a symmetric [F, F] pair matrix (NaN = missing pair, diagonal ignored). The
    least-squares fit m_ij = mu + e_i + e_j over the finite upper-triangle pairs; R^2 of
    that fit (1 for an exactly additive S, near 0 for pair-level noise). NaN with fewer
    pairs than parameters or a constant matrix.
    """
    m = np.asarray(m, float)
    f = m.shape[0]
    iu, ju = np.triu_indices(f, k=1)
    y = m[iu, ju]
    ok = np.isfinite(y)
    if ok.sum() <= f + 1 or np.ptp(y[ok]) == 0:
        return float("nan")
    x = np.zeros((ok.sum(), f + 1))
    x[:, 0] = 1
    rows = np.arange(ok.sum())
    x[rows, 1 + iu[ok]] = 1
    x[rows, 1 + ju[ok]] = 1
    fit = x @ np.linalg.lstsq(x, y[ok], rcond=None)[0]
    resid = y[ok] - fit
    return float(np.clip(1 - resid @ resid / np.sum((y[ok] - y[ok].mean()) ** 2), 0, 1))


def minimum_detectable_r(
    n_features: int,
    pairs: np.ndarray | None = None,
    strata: Sequence | None = None,
    shares: tuple[float, float] = (1.0, 1.0),
    n_sim: int = 200,
    n_perm: int = 199,
    alpha: float = 0.05,
    power: float = 0.8,
    seed: int = 0,
) -> float:
    """The smallest |r| the feature-permutation (Mantel) test detects with `power` at `alpha`.

    `pairs`: boolean [F, F] mask of the row's pairs (upper triangle read; all pairs when
    None); `strata`: a group per feature when the test permutes within groups; `shares`:
    the additive shares of S and of the metric (`additive_share`). Simulated as the module
    says: `n_sim` data sets (numpy default_rng(seed)), each tested against the same `n_perm`
    feature permutations. Results are cached by their arguments (shares rounded to 0.02).
    NaN when even c = 1 falls short of `power`, or when a permutation maps the row's pairs
    outside the row (the test would have missing pairs; not simulated).
    """
    f = int(n_features)
    mask = np.ones((f, f), bool) if pairs is None else np.asarray(pairs, bool)
    if mask.shape != (f, f):
        raise ValueError(f"pairs must be a [{f}, {f}] mask, got shape {mask.shape}")
    mask = np.triu(mask | mask.T, k=1)
    key_strata = None if strata is None else tuple(map(str, strata))
    sa, sb = (round(float(np.clip(s, 0, 1)) * 50) / 50 for s in shares)
    return _mde(f, mask.tobytes(), key_strata, sa, sb, n_sim, n_perm, alpha, power, seed)


@functools.lru_cache(maxsize=256)
def _mde(f, mask_bytes, strata, sa, sb, n_sim, n_perm, alpha, power, seed) -> float:
    mask = np.frombuffer(mask_bytes, dtype=bool).reshape(f, f)
    iu, ju = np.nonzero(mask)
    if len(iu) < 3:
        return float("nan")
    rng = np.random.default_rng(seed)
    perms = feature_permutations(f, n_perm, rng, strata)
    index = np.full((f, f), -1)
    index[iu, ju] = index[ju, iu] = np.arange(len(iu))
    pidx = index[perms[:, iu], perms[:, ju]]  # [perm, pair]: where each pair goes
    if (pidx < 0).any():
        return float("nan")
    u, u2 = rng.normal(size=(2, n_sim, f))
    e, e2 = rng.normal(size=(2, n_sim, len(iu)))

    def detected(c: float) -> float:
        v = c * u + np.sqrt(1 - c * c) * u2
        g = c * e + np.sqrt(1 - c * c) * e2
        s = np.sqrt(sa / 2) * (u[:, iu] + u[:, ju]) + np.sqrt(1 - sa) * e
        m = np.sqrt(sb / 2) * (v[:, iu] + v[:, ju]) + np.sqrt(1 - sb) * g
        zs, zm = (_standardise(x) for x in (s, m))
        r_obs = (zs * zm).mean(axis=1)
        r_perm = np.einsum("sp,sqp->sq", zs, zm[:, pidx]) / len(iu)
        p = (1 + (np.abs(r_perm) >= np.abs(r_obs)[:, None] * (1 - 1e-12)).sum(1)) / (1 + n_perm)
        return float(np.mean(p < alpha))

    if detected(1.0) < power:
        return float("nan")
    lo, hi = 0.0, 1.0
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if detected(mid) >= power else (mid, hi)
    return float(hi * (np.sqrt(sa * sb) + np.sqrt((1 - sa) * (1 - sb))))


def _standardise(x: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit sd (population), so a mean product is Pearson r."""
    x = x - x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    return np.divide(x, sd, out=np.zeros_like(x), where=sd > 0)
