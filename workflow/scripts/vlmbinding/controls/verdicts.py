"""The sanity table in words: which statistics survive the controls, and why.

Computed from the table's numbers, whichever way they come out. The twin condition: with
k >= 2 random-weights twins (`n_twins`), the trained value falls outside the band the
twins predict for one more random draw (`controls.twins.twin_band`: a t prediction
interval over twins with the trained model's own interval added in quadrature; the
difference's interval in the row is that band around the difference); with one twin,
the difference trained minus twin has an interval (its unit resampled) that excludes 0,
which is not calibrated against seeds and says so. A correlation (r(S, D), r(S, M)) and
a beyond-pixels correlation survive when significant in the trained model (Mantel, or
partial Mantel, p < ALPHA) and the twin condition holds; any other statistic when the
twin condition holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.05


def _excludes_zero(row) -> bool:
    return bool(row["difference_ci_low"] > 0 or row["difference_ci_high"] < 0)


def _n_twins(row) -> int:
    n = row.get("n_twins", 1)
    return int(n) if n is not None and np.isfinite(n) else 1


def _twin_words(row, differs: bool) -> str:
    k = _n_twins(row)
    if k >= 2:
        if differs:
            return f"outside what {k} random-weights twins predict for one more random draw"
        return f"within what {k} random-weights twins predict for one more random draw"
    caveat = " (one twin: a single seed, not calibrated against seeds)"
    if differs:
        return "different from its one untrained twin" + caveat
    return "the untrained twin's value is within the difference's interval" + caveat


def verdict(row: dict) -> tuple[bool, str]:
    """Whether a statistic survives the controls, and why, from the row's numbers."""
    if not np.isfinite(row.get("difference", 0.0)):
        return False, "cannot be compared: " + (row.get("note") or "no value for one model")
    differs = _excludes_zero(row)
    kind = row["kind"]
    if kind in ("correlation", "beyond_pixels"):
        test = "Mantel" if kind == "correlation" else "partial Mantel"
        p = row["trained_mantel_p"]
        if not p < ALPHA:
            return False, (
                f"not detected in the trained model ({test} p = {p:.3g}; "
                f"{power_words(row.get('trained_mde_r', np.nan))}), so there is nothing for the "
                "controls to confirm"
            )
        what = "significant in the trained model"
        if kind == "beyond_pixels":
            what = "S goes with what the pixels do not explain"
        if differs:
            return True, f"survives: {what} ({test} p = {p:.3g}) and {_twin_words(row, True)}"
        whose = "the twins' (median)" if _n_twins(row) >= 2 else "the twin's"
        twin = (
            f"; {whose} own correlation is significant too (p = {row['random_mantel_p']:.3g})"
            if row["random_mantel_p"] < ALPHA
            else ""
        )
        return False, f"does not survive: {_twin_words(row, False)}{twin}"
    if differs:
        return True, f"survives: the trained model is {_twin_words(row, True)}"
    return False, f"does not survive: {_twin_words(row, False)}"


def power_words(mde_r: float) -> str:
    """What the feature-level test could have detected, from the row's mde_r."""
    if mde_r is None or not np.isfinite(mde_r):
        return "power not computed, or no r this structure allows reaches 80% power"
    return f"80% power only for |r| >= {mde_r:.2f}"


def _fmt(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:.3g}"


def sanity_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per statistic, with the numbers it rests on."""
    out = []
    for row in table.itertuples(index=False):
        pix = ""
        if np.isfinite(row.pixels):
            what = (
                "an evenly spread map (the object's area share)"
                if row.statistic.startswith("Grad-CAM")
                else f"{row.statistic[2:].split(',')[0]} against the pixels' separability"
            )
            pix = f"; {what} {_fmt(row.pixels)}"
        k = int(getattr(row, "n_twins", 1) or 1)
        p = ""
        if np.isfinite(row.trained_mantel_p):
            twin_p = "twins' median" if k >= 2 else "twin"
            p = (
                f" (Mantel p: trained {_fmt(row.trained_mantel_p)}, "
                f"{twin_p} {_fmt(row.random_mantel_p)})"
            )
        if k >= 2:
            twins = (
                f"{k} untrained twins {_fmt(row.random)} (sd {_fmt(row.random_sd)}; 95% "
                f"prediction interval for one more [{_fmt(row.random_ci_low)}, "
                f"{_fmt(row.random_ci_high)}])"
            )
            unit = "twins' spread and the trained model's own interval"
        else:
            twins = (
                f"untrained twin {_fmt(row.random)} [{_fmt(row.random_ci_low)}, "
                f"{_fmt(row.random_ci_high)}]"
            )
            unit = f"{row.unit} resampled"
        note = f" ({row.note})" if getattr(row, "note", "") else ""
        out.append(
            f"{row.statistic}: trained {_fmt(row.trained)} [{_fmt(row.trained_ci_low)}, "
            f"{_fmt(row.trained_ci_high)}], {twins}{p}{pix}; difference "
            f"{_fmt(row.difference)} [{_fmt(row.difference_ci_low)}, "
            f"{_fmt(row.difference_ci_high)}] ({unit}){note}: {row.verdict}."
        )
    return out


def sanity_summary(table: pd.DataFrame) -> str:
    """Which statistics survive the controls and which do not, in one paragraph."""
    survive = table.loc[table["survives"], "statistic"].tolist()
    fail = table.loc[~table["survives"], "statistic"].tolist()
    parts = []
    parts.append("Survive the controls: " + ("; ".join(survive) if survive else "none") + ".")
    parts.append("Do not survive: " + ("; ".join(fail) if fail else "none") + ".")
    return " ".join(parts)


def primary_statistic(primary: dict) -> str:
    """The sanity table's name of the primary test (`analysis.primary`: measure, metric,
    subset, space), e.g. 'r(S, M), pairs without a position'."""
    from vlmbinding.controls.sanity import SUBSET_WORDS

    return f"r({primary['measure']}, {primary['metric']}), {SUBSET_WORDS[primary['subset']]}"


def primary_section(table: pd.DataFrame, primary: dict, space: str) -> tuple[str, str, str]:
    """The page's first section: the one test declared in advance, then how many others are
    exploratory. The sanity table holds one embedding space (`space`); a primary test in
    another space is read from correlation.parquet instead, and the section says so."""
    name = primary_statistic(primary)
    others = len(table) - 1
    head = (
        f"Declared in advance (analysis.primary): {name}, {primary['space']} embedding. "
        f"The other {others} statistics below are exploratory: {others} further comparisons, "
        "no correction for multiplicity, so about one in twenty passes at p < 0.05 by chance."
    )
    hit = table[table["statistic"].eq(name)]
    if primary["space"] != space or hit.empty:
        return (
            "The primary test",
            head,
            (
                f"This table holds the {space} embedding; the primary test's row is in "
                "correlation.parquet."
            ),
        )
    return "The primary test", head, sanity_sentences(hit)[0]


def sanity_page_sections(
    table: pd.DataFrame, primary: dict | None = None, space: str = "full"
) -> list[tuple[str, str, pd.DataFrame | str]]:
    """The report page: the primary test (when `primary` is given), the verdicts in words,
    then the table (for `tables.html_page`)."""
    shown = table.drop(columns=["verdict"])
    first = [primary_section(table, primary, space)] if primary else []
    return first + [
        ("What survives the controls", sanity_summary(table), "\n".join(sanity_sentences(table))),
        (
            "The table",
            "trained: the model; random: its random-weights twin (same architecture and "
            "preprocessing, never trained); pixels: the same statistic on the model's input "
            "tensors (r(S, D/M): S against the pixels' D/M; Grad-CAM: the named object's share "
            "of the image area). The trained model's intervals are 95% bootstrap intervals (unit "
            "says what is resampled). With several twins (n_twins), random is their mean, "
            "random_ci the 95% prediction interval for one more twin (t over twins) and the "
            "difference's interval that interval's half-width, widened in quadrature by the "
            "trained model's own, around the difference; with one twin, a bootstrap interval "
            "against that twin. A correlation (and a beyond-pixels correlation) survives when "
            "its (partial) Mantel p in the trained model is under 0.05 and the difference's "
            "interval excludes 0; the others when the difference's interval excludes 0.",
            shown,
        ),
    ]
