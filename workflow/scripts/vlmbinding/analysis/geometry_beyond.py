"""Does neuron sharing (omega) predict D, M and binding beyond interference (iota)?

At late layers iota, the cross-fitted cosine of two features' encoding vectors, is close
to what the embedding separability D measures, so "omega goes with D" says little by
itself. The hypothesis with content is that omega predicts D, M and binding accuracy
*beyond* iota: the partial correlation r(omega, metric | iota) across pairs, per block.

The statistic and its inference are those of "S beyond the pixels"
(`controls.beyond_pixels`), with iota in the pixels' place: omega and the metric are each
regressed on iota across pairs (least squares, intercept), and r is the Pearson r of the
two residuals. Features are the unit:

- mantel_p: the partial Mantel test (`correlation.mantel_test` on the two residual
  matrices): features permuted, within their kind for binding accuracy (defined only on
  pairs of one kind);
- feature_ci_low/high: the feature bootstrap that refits both regressions in every
  resample (`beyond_pixels.resampled_partial_correlation`), within kind for binding.

- mde_r: the smallest partial r this test detects with 80% power at alpha 0.05. The
  partial Mantel test is a Mantel test of the two residual matrices, so this is
  `power.minimum_detectable_r` for them: the same features (the unit permuted, within
  their kind for binding), the same pairs, and the additive shares (`power.additive_share`)
  of omega's and the metric's residuals. It leaves out the two parameters each residual
  lost to its fit on iota (an intercept and a slope against 20-120 pairs).

`semipartial_r` (omega against the metric's residual) is kept for reference, as there.
Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis.correlation import SUBSETS, attach_scores, mantel_test, pairs_to_matrix
from vlmbinding.analysis.power import additive_share, minimum_detectable_r
from vlmbinding.analysis.resampling import feature_resamples
from vlmbinding.analysis.sharing_stage import score_targets
from vlmbinding.controls.beyond_pixels import least_squares_residual, resampled_partial_correlation

GEOMETRY_BEYOND_COLUMNS = [
    "layers",
    "score",
    "metric",
    "space",
    "subset",
    "n_pairs",
    "r_metric_iota",
    "r_omega_iota",
    "r_omega",
    "r",
    "semipartial_r",
    "feature_ci_low",
    "feature_ci_high",
    "mantel_p",
    "mde_r",
    "n_boot",
    "n_perm",
]
SCORES = ("value", "z")


def _r(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def partial_beyond(
    omega: np.ndarray,
    metric: np.ndarray,
    iota: np.ndarray,
    features: Sequence[str],
    f1: Sequence[str],
    f2: Sequence[str],
    *,
    strata: Sequence[str] | None = None,
    n_boot: int = 10000,
    n_perm: int = 9999,
    seed: int = 0,
    power_sims: int = 200,
) -> dict[str, float]:
    """r(omega, metric | iota) over pairs (f1, f2), with features as the unit.

    Keys: n_pairs (finite in all three), r_metric_iota, r_omega_iota, r_omega (plain
    Pearson r), r (the partial correlation: residuals of omega and of the metric on iota),
    semipartial_r (omega against the metric's residual), mantel_p (the residual matrices,
    features permuted, within `strata` when given), feature_ci_low/high (95%,
    features resampled within `strata`, both regressions refitted per resample) and mde_r
    (the module's: `power_sims` simulated data sets, 0 skips it). Seeded by `seed`.
    Without strata this is `beyond_pixels.residual_test` with iota as the pixels.
    NaN statistics with fewer than 3 pairs or a constant residual.
    """
    omega, metric, iota = (np.asarray(v, float) for v in (omega, metric, iota))
    ok = np.isfinite(omega) & np.isfinite(metric) & np.isfinite(iota)
    omega, metric, iota = (np.where(ok, v, np.nan) for v in (omega, metric, iota))
    resid_m, *_ = least_squares_residual(metric, iota)
    resid_o, *_ = least_squares_residual(omega, iota)
    nan = float("nan")
    out = {
        "n_pairs": int(ok.sum()),
        "r_metric_iota": _r(metric, iota),
        "r_omega_iota": _r(omega, iota),
        "r_omega": _r(omega, metric),
        "r": _r(resid_o, resid_m),
        "semipartial_r": _r(omega, resid_m),
        "feature_ci_low": nan,
        "feature_ci_high": nan,
        "mantel_p": nan,
        "mde_r": nan,
    }
    if not np.isfinite(out["r"]):
        return out
    table = pd.DataFrame(
        {"f1": list(f1), "f2": list(f2), "O": omega, "M": metric, "I": iota}
        | {"resid_m": resid_m, "resid_o": resid_o}
    )
    mat = {k: pairs_to_matrix(table, k, features) for k in ("O", "M", "I", "resid_m", "resid_o")}
    _, out["mantel_p"] = mantel_test(mat["resid_o"], mat["resid_m"], n_perm, seed, strata=strata)
    if power_sims:
        out["mde_r"] = residual_mde_r(mat["resid_o"], mat["resid_m"], strata, power_sims, seed)
    draws = feature_resamples(len(features), n_boot, np.random.default_rng(seed), strata)
    r = resampled_partial_correlation(draws, mat["O"], mat["M"], mat["I"])
    r = r[np.isfinite(r)]
    if len(r):
        out["feature_ci_low"], out["feature_ci_high"] = map(float, np.percentile(r, [2.5, 97.5]))
    return out


def residual_mde_r(
    resid_omega: np.ndarray,
    resid_metric: np.ndarray,
    strata: Sequence[str] | None = None,
    power_sims: int = 200,
    seed: int = 0,
) -> float:
    """The smallest |partial r| the partial Mantel test detects with 80% power at 0.05:
    `power.minimum_detectable_r` for the two [F, F] residual matrices (the unit the
    feature, permuted within `strata` when given; the pairs finite in both; the residuals'
    additive shares), `power_sims` data sets seeded by `seed`."""
    a, b = np.asarray(resid_omega, float), np.asarray(resid_metric, float)
    return minimum_detectable_r(
        a.shape[0],
        np.isfinite(a) & np.isfinite(b),
        strata,
        (additive_share(a), additive_share(b)),
        n_sim=power_sims,
        seed=seed,
    )


def _layer_scores(rows: pd.DataFrame, score: str) -> pd.DataFrame:
    """f1, f2, O (omega's score) and I (iota's value) of one block's pairs."""
    omega = rows[rows["measure"].eq("neuron_sharing")].set_index(["f1", "f2"])[score]
    iota = rows[rows["measure"].eq("interference")].set_index(["f1", "f2"])["value"]
    both = pd.DataFrame({"O": omega, "I": iota}).dropna(how="all").reset_index()
    both["O"] = both["O"].astype(float).where(np.isfinite(both["O"].astype(float)))
    return both


def geometry_beyond_table(
    sharing: pd.DataFrame,
    separability: pd.DataFrame,
    feature_kinds: dict[str, str],
    *,
    per_pair: pd.DataFrame | None = None,
    n_boot: int = 10000,
    n_perm: int = 9999,
    seed: int = 0,
    power_sims: int = 200,
) -> pd.DataFrame:
    """Per block (layers) x score x metric x space x subset: omega against the metric
    beyond iota (`partial_beyond`). `sharing` holds the geometry rows (measures
    interference and neuron_sharing; other rows are ignored); score 'value' or 'z' is
    omega's, iota always enters as its value (the cosine). `separability`: f1, f2, space,
    D, M; with `per_pair` (f1, f2, accuracy) also binding accuracy, space 'binding', with
    features permuted and resampled within their kind. Subsets 'all' and 'no_position'.
    mde_r per row with `power_sims` simulated data sets (0: NaN). An error if the table has
    no geometry rows.
    """
    geo = sharing[sharing["measure"].isin(["interference", "neuron_sharing"])]
    if geo.empty:
        raise ValueError("the sharing table has no geometry rows (sharing.geometry.enabled)")
    rows = []
    for (layers,), block, score, table, binding in score_targets(
        geo, ["layers"], separability, per_pair
    ):
        metrics = ("accuracy",) if binding else ("D", "M")
        joined = attach_scores(_layer_scores(block, score), table, columns=("O", "I"))
        found = _metric_rows(
            joined, metrics, feature_kinds, binding, n_boot, n_perm, seed, power_sims
        )
        rows += [row | {"layers": str(layers), "score": score} for row in found]
    return pd.DataFrame(rows, columns=GEOMETRY_BEYOND_COLUMNS)


def _metric_rows(
    joined, metrics, feature_kinds, within, n_boot, n_perm, seed, power_sims
) -> list[dict]:
    """One row per metric x space x subset of one block's joined pairs."""
    kind1, kind2 = joined["f1"].map(feature_kinds), joined["f2"].map(feature_kinds)
    no_pos = ~(kind1.eq("position") | kind2.eq("position"))
    rows = []
    for metric in metrics:
        for space in pd.unique(joined["space"]):
            for subset in SUBSETS:
                keep = joined["space"].eq(space)
                if subset == "no_position":
                    keep &= no_pos
                pairs = joined[keep & np.isfinite(joined[["O", "I", metric]]).all(axis=1)]
                used = set(pairs["f1"]) | set(pairs["f2"])
                features = [f for f in feature_kinds if f in used]
                strata = [feature_kinds[f] for f in features] if within else None
                res = partial_beyond(
                    pairs["O"].to_numpy(float),
                    pairs[metric].to_numpy(float),
                    pairs["I"].to_numpy(float),
                    features,
                    pairs["f1"],
                    pairs["f2"],
                    strata=strata,
                    n_boot=n_boot,
                    n_perm=n_perm,
                    seed=seed,
                    power_sims=power_sims,
                )
                rows.append(
                    {"metric": metric, "space": space, "subset": subset}
                    | res
                    | {"n_boot": n_boot, "n_perm": n_perm}
                )
    return rows
