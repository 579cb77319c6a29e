"""Conjunctive versus separate coding of a colour and a shape by the neurons they share.

Issue 22, measure 1, second half. A neuron in both red's and square's tuned sets (the
shared neurons of `sharing.neuron_overlap`) may code "red square" as one thing (conjunctive
coding, which helps binding) or red and square separately (superposition, which the study
blames). The two are told apart by whether the neuron cares that red sits *on* the square:

* Pair model: the base regression (intercept, object count, all features' presence), plus
  "red and square are both in the image" at each object count (one indicator per count),
  plus "some object is red and square" (`conjunction_presence`). Its t value, t_cs, is the
  neuron's response to red *on* the square beyond red and square both being there, at the
  same object count: binding, not co-presence (a neuron that fires whenever both are in
  the image is not a conjunction neuron). B_cs = the neurons whose t_cs is significant at
  `alpha` family-wise over the pool (Bonferroni: t above the t quantile of alpha /
  n_neurons, about 4.6 for 24,576 neurons). A strict cut on purpose: neurons that code the
  same conjunction move together under the binding permutation, and with a loose cut a
  shuffled binding that happens to correlate a little with the real one lifts them all
  over it at once.
* conjunctive(c, s) = |A_c & A_s & B_cs|: shared neurons that are conjunction-tuned.
  Null: the binding permutation. Among the images that hold both c and s, which ones have
  them on the same object is shuffled, within images of the same object count (keeping how
  many are bound in each); presence, counts and activations stay. Under "the neuron sees
  red and square but not whether they are bound" this shuffle is exact: the dataset pairs an
  image's colours with its shapes uniformly at random. The unit permuted is the image's
  binding of c to s.
* separate(c, s) = |A_c & A_s| - conjunctive: shared neurons that are not conjunction
  neurons. Null: the curveball draws of measure 1 (each neuron's number of features and
  each feature's m kept), counting the shared neurons outside the observed B_cs.

Both rows come with null mean, sd, z and one-sided upper p with the +1 correction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .curveball import curveball_draws
from .sharing import default_m, tuned_sets
from .tuning import _orthonormal, neuron_tuning

log = logging.getLogger(__name__)

CODING_COLUMNS = ["f1", "f2", "coding", "value", "null_mean", "null_sd", "z", "p"]
_BATCH = 500  # binding-permutation draws per matrix product


def conjunction_names(colors: Sequence[str], shapes: Sequence[str]) -> list[str]:
    """Names of the colour x shape conjunctions, colour-major: 'red circle', 'red square'..."""
    return [f"{c} {s}" for c in colors for s in shapes]


def conjunction_presence(
    objects: pd.DataFrame, image_ids: Sequence[str], colors: Sequence[str], shapes: Sequence[str]
) -> np.ndarray:
    """Boolean [image, colour x shape]: does some object of the image have that colour and
    that shape. Rows follow `image_ids`, columns `conjunction_names(colors, shapes)`;
    `objects` has image_id, shape, color (results/dataset/objects.parquet)."""
    row = {i: j for j, i in enumerate(image_ids)}
    col = {name: j for j, name in enumerate(conjunction_names(colors, shapes))}
    out = np.zeros((len(row), len(col)), dtype=bool)
    r = objects["image_id"].map(row)
    c = (objects["color"].astype(str) + " " + objects["shape"].astype(str)).map(col)
    keep = r.notna() & c.notna()
    out[r[keep].astype(int).to_numpy(), c[keep].astype(int).to_numpy()] = True
    return out


def _summary(value: float, draws: np.ndarray) -> dict:
    """null_mean, null_sd (ddof 1), z and one-sided upper p (+1 correction) of one value."""
    mean, sd = float(draws.mean()), float(draws.std(ddof=1)) if len(draws) > 1 else 0.0
    if sd > 0:
        z = (value - mean) / sd
    else:
        z = 0.0 if value == mean else float(np.sign(value - mean) * np.inf)
    p = (1 + int((draws >= value).sum())) / (1 + len(draws))
    return {"value": value, "null_mean": mean, "null_sd": sd, "z": z, "p": p}


def _conj_t(num: np.ndarray, rr: np.ndarray, rss: np.ndarray, df: int) -> np.ndarray:
    """t of one added indicator per row of num [draw, neuron] (Frisch-Waugh-Lovell): num is
    indicator' residuals, rr the indicator's own residual sum of squares [draw], rss the
    neurons' residual sums of squares without it."""
    left = np.clip(rss[None, :] - num**2 / rr[:, None], 1e-300, None)
    return num / np.sqrt(rr[:, None] * left / df)


def _binding_null(
    resid_both: np.ndarray,
    q_both: np.ndarray,
    strata: np.ndarray,
    bound: np.ndarray,
    rss: np.ndarray,
    df: int,
    threshold: float,
    n_null: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """conjunctive counts [draw] with binding shuffled within object-count strata.

    Rows of resid_both (the shared neurons' residuals under the pair model without the
    conjunction), q_both (that model's orthonormal basis), strata (object counts) and bound
    are the images holding both features; rss are the shared neurons' residual sums of
    squares.
    """
    out = np.empty(n_null, dtype=np.int64)
    levels = [
        (np.flatnonzero(strata == k), int(bound[strata == k].sum())) for k in np.unique(strata)
    ]
    for start in range(0, n_null, _BATCH):
        size = min(_BATCH, n_null - start)
        pick = np.zeros((size, len(strata)), dtype=np.float64)
        for rows, n_bound in levels:
            if n_bound:
                keys = rng.random((size, rows.size)).argsort(axis=1)[:, :n_bound]
                pick[np.arange(size)[:, None], rows[keys]] = 1.0
        num = pick @ resid_both  # [draw, shared neuron]
        rr = pick.sum(axis=1) - ((pick @ q_both) ** 2).sum(axis=1)
        out[start : start + size] = (_conj_t(num, rr, rss, df) > threshold).sum(axis=1)
    return out


def conjunction_coding(
    activations: np.ndarray,
    presence: np.ndarray,
    features: Sequence[str],
    n_objects: np.ndarray,
    conjunctions: np.ndarray,
    colors: Sequence[str],
    shapes: Sequence[str],
    *,
    m: int | None = None,
    n_null: int = 1000,
    seed: int = 0,
    decorrelate: bool = True,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Conjunctive and separate coding among the neurons each colour and shape share.

    Inputs as `sharing.neuron_overlap`, plus `conjunctions` [image, colour x shape] from
    `conjunction_presence(objects, image_ids, colors, shapes)`. Returns two rows per
    (colour, shape), f1 = colour, f2 = shape, coding = 'conjunctive' | 'separate', with
    value, null_mean, null_sd, z, p (see the module docstring; the two values add up to the
    pair's |A_c & A_s| of `neuron_overlap` with the same m, seed and decorrelate). A pair
    no image shows bound, or bound in every image that holds both, is left out with a
    warning naming it.
    """
    features = list(features)
    y = np.asarray(activations, dtype=np.float64)
    n, n_neurons = y.shape
    conj = np.asarray(conjunctions, dtype=np.float64)
    names = conjunction_names(colors, shapes)
    if conj.shape != (n, len(names)):
        raise ValueError(
            f"conjunctions has shape {conj.shape}, expected ({n}, {len(names)}) = (images, "
            "colours x shapes)"
        )
    missing = [f for f in [*colors, *shapes] if f not in features]
    if missing:
        raise ValueError(f"colours/shapes {missing} are not among the features")
    m = default_m(n_neurons) if m is None else int(m)
    t = neuron_tuning(y, presence, n_objects, features=features, decorrelate=decorrelate, seed=seed)
    member = tuned_sets(t, m, features)
    count = np.asarray(n_objects).reshape(-1)
    pres = np.asarray(presence, dtype=bool)
    qb = _orthonormal(np.column_stack([np.ones(n), count, pres.astype(np.float64)]))
    resid_base = y - qb @ (qb.T @ y)
    col = {f: j for j, f in enumerate(features)}
    rng = np.random.default_rng(seed)

    pairs, conj_rows, outside_b = [], [], []
    for k, (c, s) in enumerate((c, s) for c in colors for s in shapes):
        x = conj[:, k]
        both = pres[:, col[c]] & pres[:, col[s]]
        bound = x[both] > 0
        if not bound.any():
            log.warning("no image has a %s %s (one object with both): pair left out", c, s)
            continue
        # co-presence of c and s at each object count, partialled out of the base model
        extra = np.column_stack([both & (count == j) for j in np.unique(count[both])])
        extra = extra.astype(np.float64)
        extra = _orthonormal(extra - qb @ (qb.T @ extra))
        q = np.column_stack([qb, extra])
        rr = float(x @ x - ((q.T @ x) ** 2).sum())
        if rr <= 1e-9:
            log.warning(
                "%s and %s are on one object in all or none of the images with both at each "
                "object count: binding cannot be told from presence, pair left out",
                c,
                s,
            )
            continue
        resid = resid_base - extra @ (extra.T @ resid_base)
        rss = np.einsum("ij,ij->j", resid, resid)
        df = n - q.shape[1] - 1
        threshold = float(stats.t.isf(alpha / n_neurons, df))
        in_b = _conj_t((x @ resid)[None, :], np.array([rr]), rss, df)[0] > threshold
        shared = np.flatnonzero(member[:, col[c]] & member[:, col[s]])
        value = int(in_b[shared].sum())
        draws = _binding_null(
            resid[np.ix_(both, shared)],
            q[both],
            count[both],
            bound,
            rss[shared],
            df,
            threshold,
            n_null,
            rng,
        )
        pairs.append((c, s))
        conj_rows.append(_summary(value, draws) | {"shared": shared.size})
        outside_b.append(~in_b)

    rows = []
    if pairs:
        ci = np.array([col[c] for c, _ in pairs])
        si = np.array([col[s] for _, s in pairs])
        outside = np.column_stack(outside_b)  # [neuron, pair]
        sep_null = np.empty((n_null, len(pairs)), dtype=np.int64)
        for d, mt in enumerate(curveball_draws(member, n_null, seed)):
            sep_null[d] = (mt[ci].T & mt[si].T & outside).sum(axis=0)
        for j, ((c, s), conj_row) in enumerate(zip(pairs, conj_rows)):
            separate = conj_row.pop("shared") - conj_row["value"]
            rows.append({"f1": c, "f2": s, "coding": "conjunctive", **conj_row})
            rows.append(
                {"f1": c, "f2": s, "coding": "separate", **_summary(separate, sep_null[:, j])}
            )
    flat = [(r["f1"], r["f2"], r["coding"]) for r in rows if np.isinf(r["z"])]
    if flat:
        log.warning("the null has no spread but the value differs from it (z = +-inf): %s", flat)
    log.info(
        "conjunction coding: %d colour x shape pairs, m=%d, %d null draws", len(pairs), m, n_null
    )
    return pd.DataFrame(rows, columns=CODING_COLUMNS)
