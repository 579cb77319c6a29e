"""The sanity table: does the analysis tell a trained model from its untrained twin?

For each headline statistic the trained model, its random-weights twin (same architecture
and preprocessing, never trained) and, where one applies, the pixel baseline side by
side, with the difference trained minus random and a 95% bootstrap interval. The
resampled unit is what the statistic is an average or a correlation over:

- images for the entropy statistics: each neuron's entropy recomputed from its top images
  on half samples of the images, the same images for both models
  (`entropy_resampling`; without those tables, each model's neurons resampled on their
  own);
- features for the correlations of S (all pairs among features drawn with replacement,
  the same draw for both models, since the pairs share features);
- images for binding accuracy and the Grad-CAM share (the same images drawn for both
  models: both ran on the same images, so the difference is paired).

A verdict in words, computed from the numbers, says which results survive the controls.
Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vlmbinding.analysis.correlation import SUBSETS, attach_scores, pairs_to_matrix
from vlmbinding.controls.entropy_resampling import half_sample_row
from vlmbinding.controls.sanity_resampling import (  # noqa: F401 - moved there, kept importable here
    _TAILS,
    LEVEL,
    _interval,
    _per_image,
    _row,
    feature_bootstrap_difference,
    image_bootstrap,
    neuron_bootstrap,
    resampled_correlation,
    resampled_residual_correlation,
)
from vlmbinding.controls.sanity_rows import (  # noqa: F401 - the table's columns live there
    SANITY_COLUMNS,
    SUBSET_WORDS,
    correlation_row,
    fill_defaults,
    subset_features,
    twin_table,
)
from vlmbinding.controls.sharing_sanity import sanity_keys, sharing_rows_against
from vlmbinding.controls.verdicts import verdict

# --- neurons ----------------------------------------------------------------------------


def entropy_rows(trained: dict, random: dict, threshold: float, n_boot: int, seed: int):
    """The median neuron entropy and the share of neurons under `threshold` bits.

    With both models' half-sample tables (`entropy_halves`, rule resample_entropy) the
    unit resampled is the image: entropies recomputed on half samples of the images, the
    same images for both models (`entropy_resampling.half_sample_row`). Without them
    (tables made by hand), each model's neurons are resampled on their own
    (`neuron_bootstrap`), which holds the images fixed.
    """
    stats = (
        ("median neuron entropy (bits)", "median", lambda e: np.median(e, axis=1)),
        (f"share of neurons under {threshold:g} bits", "share",
         lambda e: (e < threshold).mean(axis=1)),
    )  # fmt: skip
    halves = trained.get("entropy_halves"), random.get("entropy_halves")
    rows = []
    for name, value, statistic in stats:
        if halves[0] is not None and halves[1] is not None:
            numbers, unit = half_sample_row(*halves, value), "images"
        else:
            t, r = trained["neurons"]["entropy"], random["neurons"]["entropy"]
            numbers, unit = neuron_bootstrap(t, r, statistic, n_boot, seed), "neurons"
        rows.append({"statistic": name, "unit": unit, "kind": "neurons", **numbers})
    return rows


# --- images -----------------------------------------------------------------------------


def binding_row(trials_t: pd.DataFrame, trials_r: pd.DataFrame, n_boot: int, seed: int):
    """Swapped-caption binding accuracy (the trials' `correct`), images resampled."""
    per = _per_image(
        trials_t.assign(correct=trials_t["correct"].astype(float)),
        trials_r.assign(correct=trials_r["correct"].astype(float)),
        "correct",
    )
    return image_bootstrap(per, n_boot, seed)


def _named_object(shares: pd.DataFrame) -> pd.DataFrame:
    """One row per map of a true prompt: its share on the object it names (NaN for an
    all-zero map, which has no share)."""
    return shares[(shares["kind"] == "true") & (shares["role"] == "target")]


def map_counts(shares: pd.DataFrame) -> tuple[int, int]:
    """(maps with a share, maps) among the true prompts' maps of one model."""
    named = _named_object(shares)
    return int(named["share"].notna().sum()), len(named)


def gradcam_row(shares_t: pd.DataFrame, shares_r: pd.DataFrame, n_boot: int, seed: int):
    """Mean Grad-CAM share on the object a true prompt names, images resampled; `pixels`
    is that object's share of the image area (what an evenly spread map gives).

    Like with like: an all-zero map has no share (NaN), so both models are measured on the
    maps (image, prompt) that have a share in both; the others are counted in `note` (how
    many of how many maps have a share in each model) and left out of every mean.
    """
    t, r = _named_object(shares_t), _named_object(shares_r)
    key = ["image_id", "prompt"]
    both = t.dropna(subset=["share"])[key].merge(r.dropna(subset=["share"])[key], on=key)
    tt, rr = t.merge(both, on=key), r.merge(both, on=key)
    (kt, nt), (kr, nr) = map_counts(shares_t), map_counts(shares_r)
    if len(both):
        row = image_bootstrap(_per_image(tt, rr, "share"), n_boot, seed)
    else:
        nan, nan2 = float("nan"), (float("nan"), float("nan"))
        row = _row(nan, nan2, nan, nan2, nan, nan2)
    row["pixels"] = float(tt["area_share"].mean()) if len(tt) else float("nan")
    row["note"] = (
        f"maps with a share (not all zero): trained {kt} of {nt}, twin {kr} of {nr}; "
        f"compared on the {len(both)} both have"
    )
    return row


# --- correlations over feature pairs ------------------------------------------------------


def _pair_matrices(superposition, separability, space, metric, features):
    joined = attach_scores(superposition, separability)
    joined = joined[joined["space"] == space]
    return pairs_to_matrix(joined, "S", features), pairs_to_matrix(joined, metric, features)


def _pick(table: pd.DataFrame, metric: str, space: str, subset: str) -> pd.Series:
    rows = table[
        (table["metric"] == metric) & (table["space"] == space) & (table["subset"] == subset)
    ]
    if len(rows) != 1:
        raise ValueError(f"expected one row for {metric}/{space}/{subset}, found {len(rows)}")
    return rows.iloc[0]


def correlation_rows(trained: dict, random: dict, feature_kinds, space, n_boot, seed) -> list[dict]:
    """r(S, D) and r(S, M) per subset: each model's dependence-aware r, interval and Mantel p
    (from its correlation table), the pixel baseline r(S, pixel metric) and the difference
    with a feature-bootstrap interval."""
    rows = []
    for metric in ("D", "M"):
        for subset in SUBSETS:
            features = subset_features(feature_kinds, subset)
            ct = _pick(trained["correlation"], metric, space, subset)
            cr = _pick(random["correlation"], metric, space, subset)
            mt = _pair_matrices(
                trained["superposition"], trained["separability"], space, metric, features
            )
            mr = _pair_matrices(
                random["superposition"], random["separability"], space, metric, features
            )
            pixels = (float("nan"),) * 3
            if trained.get("beyond") is not None:
                b = _pick(trained["beyond"], metric, space, subset)
                pixels = (b["pixels_r"], b["pixels_ci_low"], b["pixels_ci_high"])
            statistic = f"r(S, {metric}), {SUBSET_WORDS[subset]}"
            rows.append(correlation_row(statistic, ct, cr, mt, mr, n_boot, seed, pixels))
    return rows


def beyond_pixel_rows(
    trained: dict, random: dict, feature_kinds, space, n_boot, seed
) -> list[dict]:
    """The partial r(S, M (D) | the pixels' M (D)) for both models, with the difference."""
    rows = []
    pix = trained["pixel_separability"]
    for metric in ("D", "M"):
        for subset in SUBSETS:
            features = subset_features(feature_kinds, subset)
            bt = _pick(trained["beyond"], metric, space, subset)
            br = _pick(random["beyond"], metric, space, subset)
            p = _pair_matrices(trained["superposition"], pix, space, metric, features)[1]
            mt = (
                *_pair_matrices(
                    trained["superposition"], trained["separability"], space, metric, features
                ),
                p,
            )
            mr = (
                *_pair_matrices(
                    random["superposition"], random["separability"], space, metric, features
                ),
                p,
            )
            d_ci = feature_bootstrap_difference(
                resampled_residual_correlation, mt, mr, n_boot, seed
            )
            rows.append(
                {
                    "statistic": f"r(S, {metric} beyond pixels), {SUBSET_WORDS[subset]}",
                    "unit": "features",
                    "kind": "beyond_pixels",
                    **_row(
                        float(bt["r"]),
                        (bt["feature_ci_low"], bt["feature_ci_high"]),
                        float(br["r"]),
                        (br["feature_ci_low"], br["feature_ci_high"]),
                        float(bt["r"] - br["r"]),
                        d_ci,
                    ),
                    "pixels": float("nan"),
                    "trained_mantel_p": float(bt["mantel_p"]),
                    "random_mantel_p": float(br["mantel_p"]),
                }
            )
    return rows


# --- the table and its verdicts -------------------------------------------------------------


def sanity_table(
    trained: dict,
    random: dict | Sequence[dict],
    feature_kinds: dict[str, str],
    space: str = "full",
    entropy_threshold: float = 3.5,
    n_boot: int = 10000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per headline statistic: trained, random twins, pixels, difference, verdict.

    `trained` and each twin in `random` (one dict, or a list of them: the model's
    random-weights twins, one per seed) hold the model's tables: neurons, superposition,
    separability, correlation (the workflow's parquet files), trials (binding/trials),
    shares (gradcam/shares) and, when the pixel baseline ran, beyond (the beyond-pixels
    table) and, for `trained`, pixel_separability; entropy_halves (the half-sample table
    of rule resample_entropy) makes the entropy rows resample images (`entropy_rows`).
    Correlations are taken in `space`.
    When `trained` holds sharing and sharing_correlation (the sharing stage's tables),
    every twin must too, and the overlap's rows (`sharing_sanity.sharing_rows_against`)
    follow the study's, built and combined over twins in the same way: one set per basis
    with overlap rows (neurons; the autoencoder basis's, marked so, when it ran), then the
    encoding geometry's omega and iota per block when it ran (`sharing_sanity.sanity_keys`).
    With one twin the difference's interval resamples each row's unit against that twin;
    with several, rows are combined by `twins.combine_twin_rows` (a prediction interval
    over twins, the unit the twin's seed, widened by the trained model's own interval).
    """
    twins = [random] if isinstance(random, dict) else list(random)
    per_twin = [
        _rows_against(trained, twin, feature_kinds, space, entropy_threshold, n_boot, seed)
        for twin in twins
    ]
    if trained.get("sharing") is not None:  # the sharing stage ran: the overlap's rows
        for j, (twin, rows) in enumerate(zip(twins, per_twin, strict=True)):
            if twin.get("sharing") is None or twin.get("sharing_correlation") is None:
                raise ValueError(f"twin {j} has no sharing tables, the trained model has")
            # the overlap per basis (neurons; sae when it ran), the geometry's per block
            for measure, basis, layers in sanity_keys(trained["sharing"]):
                rows += sharing_rows_against(
                    trained, twin, feature_kinds, space, n_boot, seed,
                    measure=measure, basis=basis, layers=layers,
                )  # fmt: skip
    table = twin_table(per_twin)
    if trained.get("trials") is None:  # a tower without a text tower: rows that say so
        extra = pd.DataFrame([_not_applicable(s, k) for s, k in TEXT_ROWS], columns=SANITY_COLUMNS)
        table = pd.concat([table, extra], ignore_index=True)
    return table


def _rows_against(trained, random, feature_kinds, space, entropy_threshold, n_boot, seed):
    """The rows of the trained model against one twin (before any verdict)."""
    rows = [
        *entropy_rows(trained, random, entropy_threshold, n_boot, seed),
        *correlation_rows(trained, random, feature_kinds, space, n_boot, seed),
    ]
    if trained.get("beyond") is not None and random.get("beyond") is not None:
        rows += beyond_pixel_rows(trained, random, feature_kinds, space, n_boot, seed)
    if trained.get("trials") is None:
        return [fill_defaults(row) for row in rows]
    rows.append(
        {
            "statistic": "binding accuracy (swapped captions)",
            "unit": "images",
            "kind": "accuracy",
            **binding_row(trained["trials"], random["trials"], n_boot, seed),
        }
    )
    rows.append(
        {
            "statistic": "Grad-CAM share on the named object",
            "unit": "images",
            "kind": "gradcam",
            **gradcam_row(trained["shares"], random["shares"], n_boot, seed),
        }
    )
    return [fill_defaults(row) for row in rows]


# the rows of the stages that need a text tower: (statistic, kind)
TEXT_ROWS = (
    ("binding accuracy (swapped captions)", "accuracy"),
    ("Grad-CAM share on the named object", "gradcam"),
)


def _not_applicable(statistic: str, kind: str) -> dict:
    """A row of a statistic the tower cannot have (no text tower): no values, a note."""
    from vlmbinding.models.applicability import NEEDS_TEXT

    nan, nan2 = float("nan"), (float("nan"), float("nan"))
    row = {"statistic": statistic, "unit": "images", "kind": kind}
    row |= _row(nan, nan2, nan, nan2, nan, nan2) | {"n_twins": 0, "random_sd": nan}
    row = fill_defaults(row | {"note": NEEDS_TEXT})
    row["survives"], row["verdict"] = verdict(row)
    return row
