"""Degree-preserving null for a neuron x feature membership matrix: curveball trades.

A membership matrix says which neurons belong to which feature's tuned set. Its null keeps
every neuron's number of features (row sums) and every feature's set size (column sums)
and is otherwise uniform: the curveball algorithm (Strona et al. 2014, Nature
Communications 5:4114; uniform stationary distribution proved by Carstens 2015, Phys. Rev.
E 91:042812). A trade between two features takes the neurons in exactly one of the two
sets, shuffles them, and hands each feature back as many as it had; a neuron in both sets
or in neither stays put. Trades run between the features (the short side of the matrix:
16 features against tens of thousands of neurons), which is the same chain on the
transposed matrix, so every trade re-draws a whole symmetric difference at once. One round
trades every feature once, with a random partner (a random perfect matching, as in the
global curveball of Carstens et al. 2018). The unit permuted is the neuron's membership
between two features.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# Rounds between two kept draws and before the first. Measured on 24,576 neurons x 16
# features (benchmarks/bench_sharing.py --mixing): the lag autocorrelation of the pairs'
# null overlaps is 0.28 (median over pairs) one round apart, 0.08 two apart, 0.02 three
# apart (max 0.14); a planted overlap of 500 neurons decays to its null level within about
# six rounds, well inside the burn-in.
ROUNDS_PER_DRAW = 3
BURN_IN = 20


def _trade(mt: np.ndarray, f: int, g: int, rng: np.random.Generator) -> None:
    """One curveball trade between features f and g of the [feature, neuron] matrix."""
    a, b = mt[f], mt[g]
    idx = np.flatnonzero(a ^ b)
    if idx.size == 0:
        return
    n_a = int(np.count_nonzero(a[idx]))
    new_a = np.zeros(idx.size, dtype=bool)
    new_a[rng.permutation(idx.size)[:n_a]] = True
    a[idx] = new_a
    b[idx] = ~new_a


def _round(mt: np.ndarray, rng: np.random.Generator) -> None:
    """Trade every feature once with a random partner (one left out when the count is odd).

    A loop over the trades: with 16 features a vectorised round (one sort of all trades'
    symmetric differences) measured two to four times slower.
    """
    order = rng.permutation(mt.shape[0])
    for f, g in zip(order[0::2], order[1::2]):
        _trade(mt, int(f), int(g), rng)


def curveball_draws(
    membership: np.ndarray,
    n: int,
    seed: int,
    *,
    rounds_per_draw: int = ROUNDS_PER_DRAW,
    burn_in: int = BURN_IN,
) -> Iterator[np.ndarray]:
    """Yield n null membership matrices [feature, neuron] (bool) from one seeded chain.

    `membership` is the observed boolean [neuron, feature] matrix; every yielded matrix
    has its row and column sums exactly. The chain starts at the observation, runs
    `burn_in` rounds, then yields after every `rounds_per_draw` rounds (see
    ROUNDS_PER_DRAW for how they were chosen). The yielded array
    is the chain's own state, transposed to [feature, neuron]: read it before asking for
    the next draw, copy it to keep it.
    """
    if membership.ndim != 2:
        raise ValueError(f"membership must be [neuron, feature], got shape {membership.shape}")
    if n < 1:
        raise ValueError(f"n_null={n}: need at least one null draw")
    rng = np.random.default_rng(seed)
    mt = np.ascontiguousarray(np.asarray(membership, dtype=bool).T)
    for _ in range(burn_in):
        _round(mt, rng)
    for _ in range(n):
        for _ in range(rounds_per_draw):
            _round(mt, rng)
        yield mt


def null_overlaps(membership: np.ndarray, n: int, seed: int, **chain) -> np.ndarray:
    """Overlaps int64 [draw, feature, feature] of n curveball null matrices.

    Entry [d, f, g] is the number of neurons in both f's and g's set in draw d (the
    diagonal is each feature's set size, the same in every draw). `chain` passes
    rounds_per_draw and burn_in to `curveball_draws`.
    """
    n_feat = membership.shape[1]
    out = np.empty((n, n_feat, n_feat), dtype=np.int64)
    for d, mt in enumerate(curveball_draws(membership, n, seed, **chain)):
        m = mt.astype(np.float32)
        out[d] = np.rint(m @ m.T).astype(np.int64)
    return out
