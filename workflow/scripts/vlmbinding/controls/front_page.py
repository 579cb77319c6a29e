"""The report's front page: every model's verdicts in sentences, with their numbers.

From each model's sanity table (controls.sanity): what survived the random-weights twins
and, for the correlations, the pixels; what did not; and what was not detected in the
trained model at all, with the smallest |r| the test could have detected (`mde_r`, when
the correlation table carries it) or a plain statement that its power was not computed.
Nothing here says "no effect" or "absent": a test that finds nothing did not detect it.
Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from vlmbinding.controls.verdicts import ALPHA


def _fmt(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.3g}"


def _twins(row) -> str:
    k = int(row.get("n_twins", 1) or 1)
    if k >= 2:
        return (
            f"{k} twins {_fmt(row['random'])}, prediction interval "
            f"[{_fmt(row['random_ci_low'])}, {_fmt(row['random_ci_high'])}]"
        )
    return f"its one twin {_fmt(row['random'])}"


def _undetected(row, mde: float | None) -> str:
    power = (
        f"80% power only for |r| >= {_fmt(mde)}"
        if mde is not None and np.isfinite(mde)
        else "its power was not computed"
    )
    return (
        f"{row['statistic']}: not detected in the trained model (r = {_fmt(row['trained'])}, "
        f"p = {_fmt(row['trained_mantel_p'])}; {power})"
    )


def _mde_of(statistic: str, correlation: pd.DataFrame | None, space: str) -> float | None:
    """`mde_r` of the correlation row a sanity statistic names, if the table has one."""
    if correlation is None or "mde_r" not in correlation:
        return None
    metric = "D" if "(S, D" in statistic else "M"
    subset = "no_position" if "without a position" in statistic else "all"
    hit = correlation[
        (correlation["metric"] == metric)
        & (correlation["space"] == space)
        & (correlation["subset"] == subset)
    ]
    return float(hit["mde_r"].iloc[0]) if len(hit) else None


def model_verdict_sentences(
    table: pd.DataFrame, correlation: pd.DataFrame | None = None, space: str = "full"
) -> list[str]:
    """Three sentences about one model's sanity table: survived, did not, not detected."""
    survived, failed, undetected = [], [], []
    for row in table.to_dict("records"):
        numbers = f"trained {_fmt(row['trained'])} against {_twins(row)}"
        correlational = row["kind"] in ("correlation", "beyond_pixels")
        if correlational and not row["trained_mantel_p"] < ALPHA:
            mde = (
                None
                if row["kind"] == "beyond_pixels"
                else _mde_of(row["statistic"], correlation, space)
            )
            undetected.append(_undetected(row, mde))
        elif row["survives"]:
            survived.append(f"{row['statistic']} ({numbers})")
        else:
            failed.append(f"{row['statistic']} ({numbers})")
    k = int(table["n_twins"].max()) if "n_twins" in table and len(table) else 1
    against = f"{k} random-weights twins" if k >= 2 else "one random-weights twin (uncalibrated)"
    return [
        f"Survived {against} (and, for the correlations, the pixel baseline where it ran): "
        + ("; ".join(survived) if survived else "nothing")
        + ".",
        "Did not survive: " + ("; ".join(failed) if failed else "nothing") + ".",
        "Not detected: " + ("; ".join(undetected) if undetected else "nothing") + ".",
    ]


def front_page_sections(
    tables: Mapping[str, pd.DataFrame],
    correlations: Mapping[str, pd.DataFrame] | None = None,
    space: str = "full",
) -> list[tuple[str, str, str]]:
    """Sections of the front page (for `report.pages.html_page`), one per model."""
    correlations = correlations or {}
    sections = []
    for model, table in tables.items():
        sentences = model_verdict_sentences(table, correlations.get(model), space)
        sections.append((model, sentences[0], "\n".join(sentences[1:])))
    return sections
