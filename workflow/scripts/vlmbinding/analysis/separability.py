"""Embedding separability of feature pairs: centroid distance and nearest-centroid errors.

METHOD.md section 5. For a pair (f1, f2), class 1 holds the images with f1 and not f2,
class 2 those with f2 and not f1. D is the distance between the class centroids of the
image embeddings, M the misclassification rate of the nearest-centroid rule; both in the
full embedding space and in a per-pair PCA keeping 90% of the variance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.linalg

log = logging.getLogger(__name__)

SEPARABILITY_COLUMNS = ["f1", "f2", "space", "D", "M", "n1", "n2"]
SPACES = ("full", "pca")


def pair_classes(presence: np.ndarray, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean image masks of the two classes of feature columns i and j (METHOD.md 5).

    Class 1: feature i present and j absent; class 2: j present and i absent. Images
    with both or neither belong to neither class.
    """
    a, b = presence[:, i].astype(bool), presence[:, j].astype(bool)
    return a & ~b, b & ~a


def centroid_separability(x1: np.ndarray, x2: np.ndarray) -> tuple[float, float]:
    """(D, M) of two classes of points [n, dim] (METHOD.md section 5).

    D: Euclidean distance between the class centroids. M: fraction of all points of both
    classes that lie nearer the other class's centroid; a point exactly as near both is
    assigned to class 1. An empty class gives (nan, nan).
    """
    if len(x1) == 0 or len(x2) == 0:
        return float("nan"), float("nan")
    x1 = np.asarray(x1, dtype=np.float64)
    x2 = np.asarray(x2, dtype=np.float64)
    c1, c2 = x1.mean(axis=0), x2.mean(axis=0)
    x = np.concatenate([x1, x2])
    # Squared distances order points exactly as distances do, without sqrt rounding ties.
    d1 = ((x - c1) ** 2).sum(axis=1)
    d2 = ((x - c2) ** 2).sum(axis=1)
    says_class1 = d1 <= d2
    wrong = np.count_nonzero(~says_class1[: len(x1)]) + np.count_nonzero(says_class1[len(x1) :])
    return float(np.linalg.norm(c1 - c2)), wrong / len(x)


def n_pca_components(explained_variance_ratio: np.ndarray, variance: float) -> int:
    """Fewest leading components whose cumulative variance ratio reaches `variance`.

    scikit-learn's rule for a float n_components (PCA), capped at the number available.
    """
    cumulative = np.cumsum(explained_variance_ratio)
    n = int(np.searchsorted(cumulative, variance, side="right")) + 1
    return min(n, len(explained_variance_ratio))


def _svd_gesdd(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U and S by numpy's divide-and-conquer SVD (LAPACK gesdd): fast, but it can fail."""
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return u, s


def _svd_gesvd(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U and S by the QR-based SVD (LAPACK gesvd): slower, converges where gesdd does not."""
    u, s, _ = scipy.linalg.svd(centred, full_matrices=False, lapack_driver="gesvd")
    return u, s


def _svd_gram(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U and S from the eigen-decomposition of the smaller Gram matrix.

    With n points in d dimensions, X Xᵀ (n x n) or XᵀX (d x d) has eigenvalues S² and
    eigenvectors U (resp. V, then U = X V / S); a symmetric eigen-solver does not share
    the SVD's convergence failures. Components with zero variance are dropped.
    """
    n, d = centred.shape
    if n <= d:
        w, u = np.linalg.eigh(centred @ centred.T)
    else:
        w, v = np.linalg.eigh(centred.T @ centred)
    order = np.argsort(w)[::-1]
    s = np.sqrt(np.clip(w[order], 0, None))
    keep = s > s[0] * max(n, d) * np.finfo(np.float64).eps
    keep[0] = True  # always one component, as the SVD gives
    s = s[keep]
    if n <= d:
        u = u[:, order][:, keep]
    else:
        v = v[:, order][:, keep]
        u = np.divide(centred @ v, s, out=np.zeros((n, len(s))), where=s > 0)
    return u, s


# Tried in order: a failure to converge moves on to the next, a warning names which one.
SVD_METHODS = (("gesdd", _svd_gesdd), ("gesvd", _svd_gesvd), ("gram", _svd_gram))


def robust_svd(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U and S of a centred matrix, falling back when an SVD does not converge.

    numpy's gesdd fails ("SVD did not converge") on some real CLIP embeddings that the
    QR-based gesvd and the Gram eigen-decomposition handle; all three give the same
    subspace, so D and M do not depend on which one ran.
    """
    errors = []
    for name, method in SVD_METHODS:
        try:
            u, s = method(centred)
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError, ValueError) as e:
            errors.append(f"{name}: {e}")
            continue
        if errors:
            log.warning("SVD fell back to %s after: %s", name, "; ".join(errors))
        return u, s
    raise np.linalg.LinAlgError(
        f"PCA failed: no SVD method converged on a {centred.shape} matrix "
        f"({'; '.join(errors)}); check the embeddings for NaN or infinite values"
    )


def pca_project(x: np.ndarray, variance: float = 0.9) -> np.ndarray:
    """Rows of x in the leading principal components that keep `variance` of the variance.

    METHOD.md section 5. Centres on the row mean, SVD (`robust_svd`: gesdd, else gesvd,
    else the Gram eigen-decomposition), keeps `n_pca_components` components. Points with
    no variance at all keep a single (zero) coordinate.
    """
    if not 0 < variance <= 1:
        raise ValueError(f"variance={variance} must be in (0, 1]")
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("PCA: the embeddings hold NaN or infinite values")
    centred = x - x.mean(axis=0)
    u, s = robust_svd(centred)
    var = s**2
    total = var.sum()
    n = n_pca_components(var / total, variance) if total > 0 else 1
    # U S are the coordinates in the component basis (= centred @ V).
    return u[:, :n] * s[:n]


def _pair_rows(f1, f2, e1, e2, pca_variance):
    """The full-space and PCA-space rows of one pair with non-empty classes."""
    d_full, m_full = centroid_separability(e1, e2)
    z = pca_project(np.concatenate([e1, e2]), pca_variance)
    d_pca, m_pca = centroid_separability(z[: len(e1)], z[len(e1) :])
    return [
        (f1, f2, "full", d_full, m_full, len(e1), len(e2)),
        (f1, f2, "pca", d_pca, m_pca, len(e1), len(e2)),
    ]


def separability_table(
    embeddings: np.ndarray,
    presence: np.ndarray,
    features: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    pca_variance: float = 0.9,
) -> pd.DataFrame:
    """D and M of every pair, in the full space and a per-pair PCA (METHOD.md section 5).

    `embeddings` [image, dim] and `presence` [image, feature] describe the same images in
    the same order; `features` names the columns of `presence`; `pairs` lists (f1, f2)
    names. The PCA of a pair is fit on the union of its two classes. Two rows per pair
    (full, then pca); a pair with an empty class gets NaN D and M and a warning.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    features = list(features)
    if presence.shape != (len(embeddings), len(features)):
        raise ValueError(
            f"presence has shape {presence.shape}, expected ({len(embeddings)}, "
            f"{len(features)}) = (images of embeddings, features)"
        )
    col = {f: j for j, f in enumerate(features)}
    unknown = sorted({f for pair in pairs for f in pair} - set(col))
    if unknown:
        raise ValueError(f"pairs name features that are not in `features`: {unknown}")
    rows = []
    for f1, f2 in pairs:
        m1, m2 = pair_classes(presence, col[f1], col[f2])
        n1, n2 = int(m1.sum()), int(m2.sum())
        if n1 == 0 or n2 == 0:
            log.warning(
                "pair (%s, %s) has an empty class (%d images with %s only, %d with %s only); "
                "D and M are NaN",
                f1,
                f2,
                n1,
                f1,
                n2,
                f2,
            )
            rows += [(f1, f2, space, np.nan, np.nan, n1, n2) for space in SPACES]
            continue
        rows += _pair_rows(f1, f2, embeddings[m1], embeddings[m2], pca_variance)
    table = pd.DataFrame(rows, columns=SEPARABILITY_COLUMNS)
    table[["D", "M"]] = table[["D", "M"]].astype(np.float64)
    table[["n1", "n2"]] = table[["n1", "n2"]].astype(np.int64)
    return table
