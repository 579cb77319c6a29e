"""Which neurons to ablate for a feature pair, the control draws, and the effect statistics.

For a pair (f1, f2), a selected feature neuron's pair ratio is
(a_f1 + a_f2) / sum_f a_f (METHOD.md section 4); the pair's neurons are those with the
highest ratio. Controls are random neurons of the same layers, as many per layer as the
pair has there, never one of the pair's own. Torch-free: the forward passes live in
`ablation`, the loop over pairs in `intervene`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# The measures recomputed under an ablation; a column `d<measure>` holds after - before.
MEASURES = ("D", "M", "D_pca", "M_pca", "binding")


def pair_ratios(feature_neurons: pd.DataFrame, features: Sequence[str], f1: str, f2: str):
    """float64 [neuron]: (a_f1 + a_f2) / sum_f a_f of each selected neuron (NaN if no affinity)."""
    aff = feature_neurons[list(features)].to_numpy(dtype=np.float64)
    col = {f: j for j, f in enumerate(features)}
    with np.errstate(divide="ignore", invalid="ignore"):
        return (aff[:, col[f1]] + aff[:, col[f2]]) / aff.sum(axis=1)


def pair_neurons(
    feature_neurons: pd.DataFrame,
    features: Sequence[str],
    f1: str,
    f2: str,
    n: int,
    threshold: float | None = None,
) -> pd.DataFrame:
    """The pair's neurons: layer, unit, ratio, highest ratio first.

    The top `n` selected feature neurons by pair ratio, or, when `threshold` is given, all
    of them whose ratio exceeds it. A neuron with ratio 0 (or none) never carries the pair.
    Ties go to the lower layer, then the lower unit.
    """
    ratio = pair_ratios(feature_neurons, features, f1, f2)
    table = pd.DataFrame(
        {
            "layer": feature_neurons["layer"].to_numpy(np.int64),
            "unit": feature_neurons["unit"].to_numpy(np.int64),
            "ratio": ratio,
        }
    )
    table = table[np.isfinite(table["ratio"]) & (table["ratio"] > 0)]
    table = table.sort_values(["ratio", "layer", "unit"], ascending=[False, True, True])
    table = table[table["ratio"] > threshold] if threshold is not None else table.head(n)
    return table.reset_index(drop=True)


def by_layer(neurons: pd.DataFrame) -> dict[int, np.ndarray]:
    """layer -> sorted unit indices (the form `ablation` takes)."""
    return {
        int(layer): np.sort(group["unit"].to_numpy(np.int64))
        for layer, group in neurons.groupby("layer", sort=True)
    }


def control_draws(
    own: pd.DataFrame, width: int, n_draws: int, rng: np.random.Generator
) -> list[dict[int, np.ndarray]]:
    """`n_draws` random neuron sets matched to `own` layer by layer.

    Each draw takes, in every layer where the pair has c neurons, c units of that layer
    drawn uniformly without replacement from the layer's units that are not the pair's
    own. Matching layers keeps the depth of the intervention, which sets how much of the
    network downstream it can move. Draws are independent of each other.
    """
    own_layers = by_layer(own)
    draws = []
    for _ in range(n_draws):
        draw = {}
        for layer, units in own_layers.items():
            pool = np.setdiff1d(np.arange(width), units)
            if len(pool) < len(units):
                raise ValueError(
                    f"layer {layer} has {width} units: too few to draw {len(units)} controls "
                    "outside the pair's own neurons (lower interventions.neurons_per_pair)"
                )
            draw[layer] = np.sort(rng.choice(pool, size=len(units), replace=False))
        draws.append(draw)
    return draws


CONTROL_MATCHES = ("layer_counts", "layers")


def layer_profile(neurons: dict[int, np.ndarray]) -> tuple[tuple[int, int], ...]:
    """((layer, count), ...): how many neurons a set has in each layer."""
    return tuple((int(layer), len(units)) for layer, units in sorted(neurons.items()) if len(units))


def control_profile(neurons: dict[int, np.ndarray], match: str = "layer_counts") -> tuple:
    """What a control draw must match: the count in each layer (`layer_counts`), or only
    the layers and the total count (`layers`: fewer profiles, so more sharing)."""
    if match not in CONTROL_MATCHES:
        raise ValueError(f"interventions.control_match must be one of {CONTROL_MATCHES}")
    profile = layer_profile(neurons)
    if match == "layer_counts":
        return ("layer_counts", profile)
    return ("layers", tuple(layer for layer, _ in profile), sum(c for _, c in profile))


def draw_control(profile: tuple, width: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """One draw, uniform among the neuron sets of `profile` (without replacement)."""
    if profile[0] == "layer_counts":
        return {layer: np.sort(rng.choice(width, size=c, replace=False)) for layer, c in profile[1]}
    layers, total = profile[1], profile[2]
    flat = rng.choice(len(layers) * width, size=total, replace=False)
    draw = {}
    for i, layer in enumerate(layers):
        units = np.sort(flat[flat // width == i] % width)
        if len(units):
            draw[layer] = units
    return draw


def pick_controls(
    pool: list[dict[int, np.ndarray]],
    own: dict[int, np.ndarray],
    k: int,
    width: int,
    rng: np.random.Generator,
    match: str = "layer_counts",
) -> list[dict[int, np.ndarray]]:
    """`k` control draws for a pair whose neurons are `own`, shared through `pool`.

    `pool` holds earlier draws of the same profile (`control_profile`), each drawn
    uniformly among all sets of that profile (`draw_control`). The pair takes, in pool
    order, the first k that share no neuron with `own`, and new draws are appended until
    it has k. Rejecting the draws that meet `own` leaves each chosen one uniform among the
    sets that avoid the pair's neurons: the same null as fresh per-pair draws
    (`control_draws`), but pairs with one profile share draws and so the forward passes
    behind them (their control effects are then dependent across pairs, which the pair
    bootstrap of the summary does not see).
    """
    mine = {(layer, int(u)) for layer, units in own.items() for u in units}
    profile = control_profile(own, match)

    def avoids(draw):
        return not any((layer, int(u)) in mine for layer, units in draw.items() for u in units)

    chosen = [d for d in pool if avoids(d)][:k]
    tries = 0
    while len(chosen) < k:
        draw = draw_control(profile, width, rng)
        pool.append(draw)
        if avoids(draw):
            chosen.append(draw)
        tries += 1
        if tries > 1000 * k:
            raise ValueError(
                f"no control draw of profile {profile} avoids the pair's own neurons in "
                f"{tries} tries (lower interventions.neurons_per_pair)"
            )
    return chosen


def choose_pairs(superposition: pd.DataFrame, how, seed: int) -> pd.DataFrame:
    """The analysed pairs: all of them, or `how` = n: the top and bottom quarter by S and a
    seeded sample of the rest (f1, f2, S, in S order, highest first)."""
    table = superposition[["f1", "f2", "S"]].sort_values("S", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    if how == "all" or int(how) >= len(table):
        return table
    n = int(how)
    edge = max(1, n // 4)
    chosen = set(range(edge)) | set(range(len(table) - edge, len(table)))
    rest = np.setdiff1d(np.arange(len(table)), sorted(chosen))
    k = max(0, n - len(chosen))
    chosen |= set(np.random.default_rng(seed).choice(rest, size=min(k, len(rest)), replace=False))
    return table.iloc[sorted(chosen)].reset_index(drop=True)


def empirical_p(own: float, controls: np.ndarray) -> float:
    """P-value of the own effect against the control draws: (1 + #{|c| >= |own|}) / (K + 1).

    Two-sided in size ("moves the measure more than random neurons do"). The unit
    resampled is the control draw: under the null the pair's neurons are one more draw of
    the same layers, so the own effect's rank among K + 1 is uniform and p is valid (its
    smallest value is 1 / (K + 1)). NaN without controls or a finite own effect.
    """
    controls = np.asarray(controls, dtype=np.float64)
    controls = controls[np.isfinite(controls)]
    if not np.isfinite(own) or len(controls) == 0:
        return float("nan")
    return float((1 + np.count_nonzero(np.abs(controls) >= abs(own))) / (len(controls) + 1))


def z_score(own: float, controls: np.ndarray) -> float:
    """(own - mean(controls)) / sd(controls) (ddof 1); NaN with < 2 controls or sd 0."""
    controls = np.asarray(controls, dtype=np.float64)
    controls = controls[np.isfinite(controls)]
    if len(controls) < 2 or not np.isfinite(own):
        return float("nan")
    sd = controls.std(ddof=1)
    return float((own - controls.mean()) / sd) if sd > 0 else float("nan")


def effect_columns(measure: str, own: float, controls: Sequence[float]) -> dict[str, float]:
    """d<m>, d<m>_control_mean, _control_sd, _control_abs (mean |effect| of the draws), _z, _p
    of one measure of one pair."""
    c = np.asarray(controls, dtype=np.float64)
    finite = c[np.isfinite(c)]
    return {
        f"d{measure}": float(own),
        f"d{measure}_control_mean": float(finite.mean()) if len(finite) else np.nan,
        f"d{measure}_control_sd": float(finite.std(ddof=1)) if len(finite) > 1 else np.nan,
        f"d{measure}_control_abs": float(np.abs(finite).mean()) if len(finite) else np.nan,
        f"d{measure}_z": z_score(own, c),
        f"d{measure}_p": empirical_p(own, c),
    }


SUMMARY_NOTE = (
    "excess = |own effect| - mean |control effect| per pair; intervals: percentile bootstrap "
    "over pairs, conditional on the analysed pairs (pairs share features, so they are not "
    "independent); mantel_p permutes features (dependence-aware)"
)


def summarise_effects(
    effects: pd.DataFrame,
    features: Sequence[str],
    n_boot: int,
    n_perm: int,
    seed: int,
    measures: Sequence[str] = MEASURES,
) -> pd.DataFrame:
    """One row per measure: do the pairs' own neurons move it more than random ones, and
    does that excess grow with S?

    Per pair, excess = |d<m>| - d<m>_control_abs. Reported: its mean over pairs with a 95%
    percentile bootstrap interval (the unit resampled is the pair; conditional on the
    pairs, since pairs that share a feature are not independent), the fraction of pairs
    whose own effect is beyond every control draw (chance: 1 / (K + 1)), and Spearman's
    rho of the excess with S, with the same pair bootstrap and a Mantel p-value that
    permutes features (rows and columns of the pair matrix together), which respects the
    dependence between pairs that share a feature.
    """
    from vlmbinding.analysis.correlation import _rowwise_spearman, mantel_test, pairs_to_matrix

    rng = np.random.default_rng(seed)
    rows = []
    for m in measures:
        own = effects[f"d{m}"].to_numpy(np.float64)
        ctrl = effects[f"d{m}_control_abs"].to_numpy(np.float64)
        s = effects["S"].to_numpy(np.float64)
        ok = np.isfinite(own) & np.isfinite(ctrl) & np.isfinite(s) & (effects["n_ablated"] > 0)
        excess, s_ok = np.abs(own[ok]) - ctrl[ok], s[ok]
        row = {"measure": f"d{m}", "n_pairs": int(ok.sum())}
        row["own_abs_mean"] = float(np.abs(own[ok]).mean()) if ok.any() else np.nan
        row["control_abs_mean"] = float(ctrl[ok].mean()) if ok.any() else np.nan
        row["excess_mean"] = float(excess.mean()) if ok.any() else np.nan
        p = effects[f"d{m}_p"].to_numpy(np.float64)[ok]
        k = effects["control_draws"].to_numpy(np.float64)[ok]
        row["frac_beyond_all_controls"] = (
            float(np.mean(p <= 1 / (k + 1) + 1e-12)) if ok.any() else np.nan
        )
        row["chance_beyond_all_controls"] = float(np.mean(1 / (k + 1))) if ok.any() else np.nan
        lo = hi = rlo = rhi = rho = mp = np.nan
        if ok.sum() >= 3:
            idx = rng.integers(0, len(excess), size=(n_boot, len(excess)))
            boot = excess[idx].mean(axis=1)
            lo, hi = np.percentile(boot, [2.5, 97.5])
            rho = float(_rowwise_spearman(s_ok[None], excess[None])[0])
            rb = _rowwise_spearman(s_ok[idx], excess[idx])
            rb = rb[np.isfinite(rb)]
            if len(rb):
                rlo, rhi = np.percentile(rb, [2.5, 97.5])
            table = effects.loc[ok, ["f1", "f2"]].assign(excess=excess, S=s_ok)
            _, mp = mantel_test(
                pairs_to_matrix(table, "S", features),
                pairs_to_matrix(table, "excess", features),
                n_perm,
                seed,
                method="spearman",
            )
        row.update(
            excess_ci_low=float(lo),
            excess_ci_high=float(hi),
            spearman_S=float(rho),
            spearman_S_ci_low=float(rlo),
            spearman_S_ci_high=float(rhi),
            mantel_p=float(mp),
            note=SUMMARY_NOTE,
        )
        rows.append(row)
    return pd.DataFrame(rows)
