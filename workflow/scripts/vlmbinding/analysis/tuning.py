"""Neuron tuning: every neuron's t value for every feature, from one joint regression.

Issue 22, measure 1. For each neuron of a pool, its activation over the images (one
reduced value per image, as the affinities use) is regressed on all features' presence
jointly, plus an intercept and the image's object count, so that co-occurring features and
clutter are not read as tuning. X is the same for every neuron, so one decomposition of X
serves the whole pool.

Identification. On the toy-shapes dataset the design is rank-deficient by construction:
the shapes present in an image number exactly its objects, and so do its colours and its
positions, so each kind's presence columns sum to the object count. Only differences
within a kind are estimable once the count is in the model. The coefficients returned are
the minimum-norm solution over the feature coefficients (intercept and count are not
penalised), which for such a kind sum makes the kind's coefficients sum to zero: "tuned to
red" means "more active with red than with the average colour, at the same object count
and with the same other features". Every linear dependency is logged with the features it
involves; a feature present in every image cannot be told from the intercept (its t is
NaN, with a warning); a feature absent from every image is an error.

Decorrelation. Two coefficients estimated from the same images have correlated errors:
(X'X)^-1 is not diagonal (features of a kind sum to the count, so their errors are
negatively correlated; features that happen to co-occur in the sample are correlated
either way; on the paper's 500 images the correlations run from -0.36 to +0.16). Then
even pure-noise neurons tuned to f1 are more (or less) often tuned to f2, and an overlap of
tuned sets would show "sharing" made by the design alone, which no null that only keeps
margins can know about. With `decorrelate=True` (the default), each feature's estimate
gets a fixed combination of the residuals added (directions orthogonal to X, so the
estimate stays unbiased), chosen so that the estimation errors of all features become
uncorrelated with equal relative variance: error covariance lambda * diag(c) instead of
C = (X'X)^-1, where lambda is the largest eigenvalue of C's correlation matrix. This is the
construction fixed-X knockoffs use (Barber and Candes 2015, Ann. Statist. 43:2055): the
residual space of X has room for engineered noise. The price is that every t shrinks by
sqrt(lambda) (about 1.2-1.3 on the paper's dataset). The residual directions are a seeded
random orthonormal set, and they are left out of the residual variance, so under Gaussian
noise the numerators are independent of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

_RANK_TOL = 1e-9


def _orthonormal(a: np.ndarray) -> np.ndarray:
    """An orthonormal basis [n, rank] of the columns of `a` (SVD, relative tolerance)."""
    if a.shape[1] == 0:
        return np.zeros((a.shape[0], 0))
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    keep = s > _RANK_TOL * max(a.shape) * (s[0] if s.size else 0.0)
    return u[:, keep]


def _rref(rows: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """Reduced row echelon form of a small matrix: a sparse basis of its row space."""
    a = rows.astype(np.float64).copy()
    lead = 0
    n_rows, n_cols = a.shape
    for r in range(n_rows):
        while lead < n_cols and np.all(np.abs(a[r:, lead]) < tol):
            lead += 1
        if lead == n_cols:
            return a[:r]
        pivot = r + int(np.argmax(np.abs(a[r:, lead])))
        a[[r, pivot]] = a[[pivot, r]]
        a[r] /= a[r, lead]
        for i in range(n_rows):
            if i != r:
                a[i] -= a[i, lead] * a[r]
        lead += 1
    a[np.abs(a) < tol] = 0.0
    return a


def _log_dependencies(null: np.ndarray, cols: np.ndarray, names: list[str]) -> None:
    """Log every linear dependency among the regressors (a sparse basis of X's null space).

    `null` is [regressor, d] spanning the feature coefficients that leave the fit unchanged;
    `cols` the raw regressor columns [image, regressor].
    """
    for v in _rref(null.T):
        involved = [names[j] for j in np.flatnonzero(v)]
        total = cols @ v  # zero when the columns themselves are collinear
        if np.allclose(total, 0.0, atol=1e-8 * max(1.0, np.abs(cols).max())):
            log.warning(
                "regressors %s are collinear (a linear combination of them is the same in "
                "every image): their separate tuning cannot be estimated, they share it",
                involved,
            )
        else:
            log.info(
                "regressors %s sum to the object count (or a constant) in every image: their "
                "coefficients are identified relative to each other (minimum norm, summing to "
                "zero over the group)",
                involved,
            )


def neuron_tuning(
    activations: np.ndarray,
    presence: np.ndarray,
    n_objects: np.ndarray,
    conjunctions: np.ndarray | None = None,
    *,
    features: Sequence[str] | None = None,
    conjunction_names: Sequence[str] | None = None,
    decorrelate: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """t values float64 [neuron, regressor] of every neuron's tuning to every feature.

    `activations` is [image, neuron] (one reduced value per image), `presence` the boolean
    [image, feature] matrix, `n_objects` the images' object counts; `conjunctions`, when
    given, an [image, k] 0/1 matrix of extra regressors fitted jointly (same-object colour x
    shape indicators, `conjunction_presence`): the regressors are the features, then the
    conjunctions. Intercept and object count are in every fit and not returned. Names are
    only used in messages. See the module docstring for identification and `decorrelate`;
    `seed` fixes the residual directions decorrelation uses (no other randomness). A neuron
    constant over the images gets t = 0; a regressor present in every image gets NaN.
    """
    y = np.asarray(activations, dtype=np.float64)
    pres = np.asarray(presence, dtype=np.float64)
    if y.ndim != 2 or pres.ndim != 2:
        raise ValueError("activations must be [image, neuron] and presence [image, feature]")
    n = y.shape[0]
    bad = np.flatnonzero(~np.isfinite(y).all(axis=0))
    if bad.size:
        raise ValueError(f"{bad.size} neurons have non-finite activations, e.g. {bad[:5].tolist()}")
    names = (
        list(features) if features is not None else [f"feature {j}" for j in range(pres.shape[1])]
    )
    if len(names) != pres.shape[1]:
        raise ValueError(f"{len(names)} feature names for {pres.shape[1]} presence columns")
    cols = pres
    if conjunctions is not None:
        conj = np.asarray(conjunctions, dtype=np.float64).reshape(n, -1)
        extra = (
            list(conjunction_names)
            if conjunction_names is not None
            else [f"conjunction {j}" for j in range(conj.shape[1])]
        )
        cols, names = np.column_stack([pres, conj]), names + extra
    count = np.asarray(n_objects, dtype=np.float64).reshape(-1)
    if pres.shape[0] != n or count.shape[0] != n:
        raise ValueError(
            f"activations has {n} images, presence {pres.shape[0]}, n_objects {count.shape[0]}"
        )
    empty = [names[j] for j in np.flatnonzero(cols.sum(axis=0) == 0)]
    if empty:
        raise ValueError(f"no image has feature(s) {empty}: their tuning cannot be estimated")

    qz = _orthonormal(np.column_stack([np.ones(n), count]))
    resid = cols - qz @ (qz.T @ cols)  # features with intercept and count partialled out
    u, s, vt = np.linalg.svd(resid, full_matrices=False)
    tol = _RANK_TOL * max(resid.shape) * (s[0] if s.size and s[0] > 0 else 1.0)
    r = int(np.count_nonzero(s > tol))
    u, s, v, null = u[:, :r], s[:r], vt[:r].T, vt[r:].T
    if null.shape[1]:
        _log_dependencies(null, cols, names)
    w = (u / s) @ v.T  # [image, regressor]: the minimum-norm estimate is w' y
    c = np.einsum("ij,ij->i", v / s, v / s)  # error variance / sigma^2 of each estimate
    known = c > _RANK_TOL
    unknown = [names[j] for j in np.flatnonzero(~known)]
    if unknown:
        log.warning(
            "regressors %s are present in every image: no tuning to them (t = NaN)", unknown
        )

    basis = np.column_stack([qz, u])
    k = int(known.sum())
    inject = np.zeros((n, 0))
    lam = 1.0
    if decorrelate and k > 1:
        ck = c[known]
        corr = (v[known] / s) @ (v[known] / s).T / np.sqrt(np.outer(ck, ck))
        lam = float(np.linalg.eigvalsh(corr)[-1])
        gap = np.sqrt(np.outer(ck, ck)) * (lam * np.eye(k) - corr)  # PSD by choice of lambda
        evals, evecs = np.linalg.eigh((gap + gap.T) / 2)
        root = np.sqrt(np.clip(evals, 0.0, None))[:, None] * evecs.T  # root' root = gap
        rng = np.random.default_rng(seed)
        draw = rng.standard_normal((n, k))
        draw -= basis @ (basis.T @ draw)
        directions = _orthonormal(draw)
        if directions.shape[1] < k:
            raise ValueError(f"{n} images leave too few residual directions to decorrelate")
        inject = directions @ root  # [image, k], orthogonal to X
        basis = np.column_stack([basis, directions])
        log.info("decorrelated tuning: t values shrink by sqrt(lambda) = %.3f", np.sqrt(lam))
    df = n - basis.shape[1]
    if df < 1:
        raise ValueError(f"{n} images are too few for {basis.shape[1]} regression directions")

    res = y - basis @ (basis.T @ y)
    sigma = np.sqrt(np.einsum("ij,ij->j", res, res) / df)  # [neuron]
    del res
    beta = w[:, known].T @ y  # [k, neuron]
    if inject.shape[1]:
        beta += inject.T @ y
    scale = np.sqrt(lam * c[known])[:, None] * sigma[None, :]
    constant = np.ptp(y, axis=0) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        tk = np.where(constant[None, :], 0.0, beta / np.where(constant[None, :], 1.0, scale))
    if constant.any():
        log.info(
            "%d neurons are constant over the images: t = 0 for every regressor", constant.sum()
        )
    t = np.full((y.shape[1], cols.shape[1]), np.nan)
    t[:, known] = tk.T
    return t
