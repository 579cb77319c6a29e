"""One row per model for the cross-model view: correlations, binding, entropies."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _row(correlation: pd.DataFrame, metric: str, space: str, subset: str) -> pd.Series | None:
    hit = correlation[
        (correlation["metric"] == metric)
        & (correlation["space"] == space)
        & (correlation["subset"] == subset)
    ]
    return hit.iloc[0] if len(hit) else None


def model_summary(
    model: str,
    correlation: pd.DataFrame,
    neurons: pd.DataFrame,
    binding_overall: pd.DataFrame | None = None,
    binding_correlation: pd.DataFrame | None = None,
    zero_shot: pd.DataFrame | None = None,
    space: str = "full",
    subset: str = "no_position",
) -> dict:
    """The figures of one model that the comparison table and figure show.

    Correlations are S against D and M in `space`, over `subset` of the pairs (by default
    the pairs without positions, as the study plotted them).
    """
    out: dict = {"model": model, "space": space, "subset": subset}
    for metric in ("D", "M"):
        row = _row(correlation, metric, space, subset)
        for key, col in (
            ("", "pearson_r"),
            ("_low", "feature_ci_low"),  # the interval resamples features, not pairs
            ("_high", "feature_ci_high"),
            ("_rho", "spearman_rho"),
            ("_mantel_p", "mantel_p"),
        ):
            out[f"r_{metric}{key}"] = float(row.get(col, np.nan)) if row is not None else np.nan
    entropy = neurons["entropy"].to_numpy(float)
    out["neurons"] = int(len(entropy))
    out["median_entropy"] = float(np.nanmedian(entropy)) if len(entropy) else np.nan
    out["min_entropy"] = float(np.nanmin(entropy)) if len(entropy) else np.nan
    out["binding_accuracy"] = (
        float(binding_overall["accuracy"].iloc[0]) if binding_overall is not None else np.nan
    )
    row = None
    if binding_correlation is not None:
        row = _row(binding_correlation, "accuracy", "binding", "all")
    out["r_binding"] = float(row["pearson_r"]) if row is not None else np.nan
    for attribute in ("color", "shape", "position", "triple"):
        value = np.nan
        if zero_shot is not None:
            # On combinations held out of training, where the table splits seen / unseen.
            unseen = zero_shot["split"].eq("unseen") if "split" in zero_shot else True
            hit = zero_shot.loc[(zero_shot["attribute"] == attribute) & unseen, "accuracy"]
            value = float(hit.iloc[0]) if len(hit) else np.nan
        out[f"zero_shot_{attribute}"] = value
    return out
