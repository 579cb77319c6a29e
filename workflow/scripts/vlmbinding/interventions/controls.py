"""Random control neurons matched to an ablated set, per layer and optionally on scale.

A control draw for an ablated set takes, in every stratum where the set has c neurons, c
units of that stratum drawn uniformly without replacement, never one of the set's own.
A stratum is a layer (`control_match: layers`: the count per layer is kept, so the depth
of the intervention is the same) or a layer and a bin of the neurons' activation sd within
that layer (`layers_and_scale`: a large-scale neuron is replaced by a large-scale one, so
"shared neurons matter more" cannot come from their being louder). Torch-free.

Draws are pooled: pairs whose sets have the same stratum profile take their draws from one
pool (`pick_controls`), which keeps the number of ablated forward passes bounded by the
profiles, not by the pairs.
"""

from __future__ import annotations

import numpy as np

CONTROL_MATCHES = ("layers", "layers_and_scale")


def neuron_strata(
    n_layers: int,
    width: int,
    match: str = "layers",
    sd: np.ndarray | None = None,
    n_bins: int = 4,
) -> np.ndarray:
    """int64 [layer, width]: the stratum of every MLP output neuron.

    `layers`: the layer index. `layers_and_scale`: layer * n_bins + the neuron's quantile
    bin of `sd` ([layer, width] activation sd over the images; NaN for a layer not
    measured) within its layer. A layer with no sd keeps one stratum of its own
    (layer * n_bins), so sets there are still matched on the layer; drawing from it is then
    matched on the layer only.
    """
    if match not in CONTROL_MATCHES:
        raise ValueError(
            f"interventions.control_match must be one of {CONTROL_MATCHES}, not {match!r}"
        )
    layers = np.repeat(np.arange(n_layers, dtype=np.int64)[:, None], width, axis=1)
    if match == "layers":
        return layers
    if sd is None or np.shape(sd) != (n_layers, width):
        raise ValueError(
            f"control_match: layers_and_scale needs the neurons' activation sd as [{n_layers}, "
            f"{width}], got {None if sd is None else np.shape(sd)}"
        )
    if n_bins < 1:
        raise ValueError(f"interventions.scale_bins must be at least 1, not {n_bins}")
    strata = layers * n_bins
    for layer in range(n_layers):
        row = np.asarray(sd[layer], dtype=np.float64)
        if not np.isfinite(row).all():
            continue
        # rank-based quantile bins: equal-sized bins even with ties
        rank = np.argsort(np.argsort(row, kind="stable"), kind="stable")
        strata[layer] += rank * n_bins // width
    return strata


def set_profile(neurons: dict[int, np.ndarray], strata: np.ndarray) -> tuple:
    """((stratum, count), ...) of a neuron set {layer: units}: what a control must match."""
    counts: dict[int, int] = {}
    for layer, units in neurons.items():
        for s in strata[int(layer), np.asarray(units, dtype=np.int64)]:
            counts[int(s)] = counts.get(int(s), 0) + 1
    return tuple(sorted(counts.items()))


class StratumIndex:
    """The neurons of every stratum, as (layer, unit) arrays, for fast draws."""

    def __init__(self, strata: np.ndarray):
        self.strata = strata
        self.width = strata.shape[1]
        flat = strata.ravel()
        order = np.argsort(flat, kind="stable")
        labels, starts = np.unique(flat[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        self.members = {int(s): order[a:b] for s, a, b in zip(labels, starts, ends)}

    def draw(self, profile: tuple, rng: np.random.Generator) -> dict[int, np.ndarray]:
        """One draw uniform among the sets of `profile` (without replacement)."""
        picked = []
        for stratum, count in profile:
            members = self.members[stratum]
            if len(members) < count:
                raise ValueError(
                    f"stratum {stratum} holds {len(members)} neurons, too few to draw {count}"
                )
            picked.append(rng.choice(members, size=count, replace=False))
        flat = np.sort(np.concatenate(picked)) if picked else np.empty(0, np.int64)
        out: dict[int, np.ndarray] = {}
        for layer in np.unique(flat // self.width):
            out[int(layer)] = np.sort(flat[flat // self.width == layer] % self.width)
        return out


def pick_controls(
    pool: list[dict[int, np.ndarray]],
    own: dict[int, np.ndarray],
    k: int,
    index: StratumIndex,
    rng: np.random.Generator,
) -> list[dict[int, np.ndarray]]:
    """`k` control draws for the set `own`, shared with other sets of its profile via `pool`.

    `pool` holds earlier draws of the same profile (`set_profile`), each uniform among all
    sets of that profile. The set takes, in pool order, the first k that share no neuron
    with `own`, and new draws are appended until it has k. Rejecting the draws that meet
    `own` leaves each chosen one uniform among the matched sets that avoid its neurons:
    the same null as fresh draws per set. The unit drawn is the neuron set; pairs of one
    profile share draws, so their control effects are dependent across pairs (which the
    feature-level statistics of `inference` allow for: they resample features, not pairs).
    """
    mine = {(int(layer), int(u)) for layer, units in own.items() for u in units}
    profile = set_profile(own, index.strata)

    def avoids(draw):
        return not any((layer, int(u)) in mine for layer, units in draw.items() for u in units)

    chosen = [d for d in pool if avoids(d)][:k]
    tries = 0
    while len(chosen) < k:
        draw = index.draw(profile, rng)
        pool.append(draw)
        if avoids(draw):
            chosen.append(draw)
        tries += 1
        if tries > 1000 * k:
            raise ValueError(
                f"no control draw of profile {profile} avoids the set's own neurons in "
                f"{tries} tries (too few neurons per stratum: lower interventions.scale_bins "
                "or interventions.neurons_per_pair)"
            )
    return chosen
