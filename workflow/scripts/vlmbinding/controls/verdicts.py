"""The sanity table in words: which statistics survive the controls, and why.

Computed from the table's numbers, whichever way they come out: a correlation survives
when it is significant in the trained model (Mantel p < ALPHA) and its difference from the
untrained twin has an interval that excludes 0; a beyond-pixels correlation when its
partial Mantel p is under ALPHA; any other statistic when the difference excludes 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.05


def _excludes_zero(row) -> bool:
    return bool(row["difference_ci_low"] > 0 or row["difference_ci_high"] < 0)


def verdict(row: dict) -> tuple[bool, str]:
    """Whether a statistic survives the controls, and why, from the row's numbers."""
    differs = _excludes_zero(row)
    if row["kind"] == "correlation":
        if not row["trained_mantel_p"] < ALPHA:
            return False, (
                f"not significant in the trained model (Mantel p = {row['trained_mantel_p']:.3g}),"
                " so there is no effect for the controls to confirm"
            )
        if differs:
            return True, "survives: significant in the trained model and different from its twin"
        twin = (
            f"; the twin's own correlation is significant too (p = {row['random_mantel_p']:.3g})"
            if row["random_mantel_p"] < ALPHA
            else ""
        )
        return (
            False,
            "does not survive: the untrained twin's value is within the difference's interval"
            + twin,
        )
    if row["kind"] == "beyond_pixels":
        if row["trained_mantel_p"] < ALPHA:
            return True, (
                "survives the pixel baseline: S goes with what the pixels do not explain "
                f"(partial Mantel p = {row['trained_mantel_p']:.3g})"
            )
        return False, (
            "does not survive the pixel baseline: beyond what the pixels explain, S does not go "
            f"with the model's separability (partial Mantel p = {row['trained_mantel_p']:.3g})"
        )
    if differs:
        return True, "survives: the trained model differs from its untrained twin"
    return False, "does not survive: the untrained twin gives the same within the interval"


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
        p = ""
        if np.isfinite(row.trained_mantel_p):
            p = (
                f" (Mantel p: trained {_fmt(row.trained_mantel_p)}, "
                f"twin {_fmt(row.random_mantel_p)})"
            )
        out.append(
            f"{row.statistic}: trained {_fmt(row.trained)} [{_fmt(row.trained_ci_low)}, "
            f"{_fmt(row.trained_ci_high)}], untrained twin {_fmt(row.random)} "
            f"[{_fmt(row.random_ci_low)}, {_fmt(row.random_ci_high)}]{p}{pix}; difference "
            f"{_fmt(row.difference)} [{_fmt(row.difference_ci_low)}, "
            f"{_fmt(row.difference_ci_high)}] ({row.unit} resampled): {row.verdict}."
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


def sanity_page_sections(table: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame | str]]:
    """The report page: the verdict in words, then the table (for `tables.html_page`)."""
    shown = table.drop(columns=["verdict"])
    return [
        ("What survives the controls", sanity_summary(table), "\n".join(sanity_sentences(table))),
        (
            "The table",
            "trained: the model; random: its random-weights twin (same architecture and "
            "preprocessing, never trained); pixels: the same statistic on the model's input "
            "tensors (r(S, D/M): S against the pixels' D/M; Grad-CAM: the named object's share "
            "of the image area). Intervals are 95% bootstrap intervals; unit says what is "
            "resampled. A correlation survives when its Mantel p in the trained model is under "
            "0.05 and the difference's interval excludes 0; the beyond-pixels rows when the "
            "partial Mantel p is under 0.05; the others when the difference's interval "
            "excludes 0.",
            shown,
        ),
    ]
