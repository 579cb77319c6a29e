"""The specification grid as the workflow reads it at parse time: layer pools by name and the
main analysis added to the grid. Pure Python (no numpy, pandas or scipy), so that building the
DAG loads none of them; `vlmbinding.analysis.specification` and `.specification_joint`
re-export these names."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

log = logging.getLogger("vlmbinding.analysis.specification")

_LAST = re.compile(r"^last-([1-9][0-9]*)$")


def _thirds(depth: int) -> list[list[int]]:
    """range(depth) split into three consecutive runs as evenly as possible, the longer runs
    first (as numpy.array_split splits)."""
    size, extra = divmod(depth, 3)
    parts, start = [], 0
    for i in range(3):
        stop = start + size + (1 if i < extra else 0)
        parts.append(list(range(start, stop)))
        start = stop
    return parts


def layer_pools(names: Sequence[str], depth: int) -> dict[str, list[int]]:
    """Layer pools by name -> sorted 0-based blocks of a model with `depth` blocks.

    Names: `all`; `last-N` (the last N blocks, all of them when the model has fewer);
    `thirds` (three pools `third-1`, `third-2`, `third-3`: the blocks split into three
    consecutive runs as evenly as possible; an empty third, in a model of fewer than three
    blocks, is left out). A pool with the same blocks as an earlier one is left out with a
    log line (in a 4-block model `last-10` and `all` are the same pool).
    """
    if depth < 1:
        raise ValueError(f"a model has at least one block, got depth={depth}")
    pools: dict[str, list[int]] = {}
    for name in names:
        if name == "all":
            candidates = {"all": list(range(depth))}
        elif name == "thirds":
            candidates = {f"third-{i + 1}": p for i, p in enumerate(_thirds(depth)) if p}
        elif m := _LAST.match(name):
            n = int(m.group(1))
            candidates = {name: list(range(max(depth - n, 0), depth))}
        else:
            raise ValueError(
                f"robustness.layers: {name!r} is not a layer pool; use all, thirds or last-N"
            )
        for label, blocks in candidates.items():
            same = [k for k, v in pools.items() if v == blocks]
            if same:
                log.info("layer pool %s equals %s (blocks %s); kept once", label, same[0], blocks)
                continue
            pools[label] = blocks
    return pools


def grid_with_main(robustness: Mapping, analysis: Mapping) -> dict:
    """The robustness block with the main analysis's top_k, n_neurons, reduce and tokens
    added to the grid's lists (a no-op when they are there already), so the main analysis
    is always one of the specifications."""
    out = dict(robustness)
    for key in ("top_k", "n_neurons", "reduce", "tokens"):
        values = list(out[key])
        if analysis[key] not in values:
            values.append(analysis[key])
        out[key] = values
    return out


def pools_with_main(pools: Mapping[str, Sequence[int]], blocks: Sequence[int]) -> dict:
    """The layer pools with the main analysis's blocks added as pool `main` unless a pool
    has exactly those blocks already."""
    out = {k: list(v) for k, v in pools.items()}
    blocks = sorted(int(b) for b in blocks)
    if not any(sorted(v) == blocks for v in out.values()):
        out["main"] = blocks
    return out
