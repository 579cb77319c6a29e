"""The sharing page of the report: what came out for each measure and basis, in sentences.

Every sentence is built from the workflow's tables, never typed in: the correlations
(correlation.parquet for S, sharing_correlation.parquet for the measures of sharing: r,
its interval with features resampled, the Mantel p with features permuted, `mde_r`), the
sanity table (the trained model against its random-weights twins), the encoding
geometry's partial correlations beyond interference (geometry_beyond.parquet) and the
autoencoder basis's resolved pairs and training curves. A test that finds nothing is
reported as "not detected" with the smallest |r| it could have detected, never as an
absence. The direction is judged against the study's prediction: more sharing, smaller
cluster-centre distance D, higher misclassification rate M, lower binding accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from vlmbinding.controls.sanity_rows import SUBSET_WORDS
from vlmbinding.controls.sharing_sanity import BASIS_WORDS
from vlmbinding.controls.sharing_sanity import MEASURE_WORDS as SANITY_WORDS
from vlmbinding.controls.verdicts import ALPHA, power_words
from vlmbinding.report.pages import HEADLINE_TEXT, headline_correlations, html_page

# the study's prediction: more sharing goes with lower D, higher M, lower binding accuracy
STUDY_SIGN = {"D": -1, "M": 1, "accuracy": -1}
METRIC_WORDS = {"D": "D", "M": "M", "accuracy": "binding accuracy"}
DIRECTION_WORDS = {  # metric -> (words when r > 0, words when r < 0)
    "D": ("lie farther apart in the embedding", "lie closer in the embedding"),
    "M": ("are confused more often", "are confused less often"),
    "accuracy": ("bind better", "bind worse"),
}
MEASURE_NAMES = {
    "S": "S",
    "overlap": "overlap z",
    "conjunctive": "conjunctive z",
    "separate": "separate z",
    "interference": "ι z",
    "neuron_sharing": "ω z",
}
VALUE_NAMES = {"interference": "ι", "neuron_sharing": "ω"}
MEASURE_TITLES = {
    "overlap": "Co-tuned neuron overlap",
    "conjunctive": "Conjunctive coding of the shared units",
    "separate": "Separate coding of the shared units",
    "interference": "Interference ι (encoding geometry)",
    "neuron_sharing": "Neuron sharing ω (encoding geometry)",
}
BASIS_TITLES = {"neurons": "neuron basis", "sae": "autoencoder basis"}
GEOMETRY = ("interference", "neuron_sharing")
# every measure of sharing is read by its z against its null (the sanity table and the
# specification curve compare z too); the geometry's raw cosines are mostly per-feature
# mass (their additive R² is high), so their value is reported in one sentence beside it
SCORE_OF: dict[str, str] = {}
S_TEXT = (
    "S is the study's superposition score. It is additive, S(f1, f2) = P(f1) + P(f2), each "
    "feature's share of the selected neurons' affinity mass, so it says how much mass two "
    "features draw, not whether they share neurons; it is kept beside the measures of "
    "sharing for comparison."
)


def _num(x, fmt: str = ".2f") -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not np.isfinite(value) else format(value, fmt)


def _p(p) -> str:
    p = float(p)
    if not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p {p:.3g}"


def _pairs_words(row) -> str:
    n = _num(row.get("n_pairs"), ".0f")
    if row.get("metric") == "accuracy":
        return f"{n} same-kind pairs"
    return f"{n} pairs" if row.get("subset") == "all" else f"{n} pairs without a position"


def correlation_sentence(row: Mapping, name: str, alpha: float = ALPHA) -> str:
    """One correlation row (correlation.CORRELATION_COLUMNS) as a sentence.

    `name` is what is correlated ('overlap z', 'S'). Detected (Mantel p <= `alpha`, the
    features permuted): r, its interval (features resampled), p, and whether the sign is
    the study's (STUDY_SIGN) or against it. Not detected: r, interval, p and the smallest
    |r| the test detects with 80% power (`mde_r`, `verdicts.power_words`).
    """
    metric = row["metric"]
    r, p = float(row["pearson_r"]), float(row["mantel_p"])
    head = (
        f"r({name}, {METRIC_WORDS.get(metric, metric)}) over {_pairs_words(row)} = {_num(r)} "
        f"[{_num(row.get('feature_ci_low'))}, {_num(row.get('feature_ci_high'))}], "
        f"Mantel {_p(p)}"
    )
    if not np.isfinite(r) or not np.isfinite(p):
        return f"{head}: could not be computed (a constant score or too few pairs)."
    if p > alpha:
        return f"{head}: not detected ({power_words(row.get('mde_r', np.nan))})."
    sign = 1 if r > 0 else -1
    side = "as the study predicts" if sign == STUDY_SIGN.get(metric, 0) else "against the study"
    words = DIRECTION_WORDS.get(metric, ("go up", "go down"))[0 if r > 0 else 1]
    return f"{head}: detected, {side} (pairs with more {name} {words})."


def twin_sentence(row: Mapping) -> str:
    """A sanity-table row (trained model against its twins) as a sentence: the twins'
    prediction interval, the band the verdict uses, and the verdict."""
    n = int(row["n_twins"]) if np.isfinite(row.get("n_twins", np.nan)) else 1
    twins = f"{n} random-weights twins" if n > 1 else "its random-weights twin"
    interval = "prediction interval" if n > 1 else "interval"
    band = ""
    diff, low = float(row.get("difference", np.nan)), float(row.get("difference_ci_low", np.nan))
    if n > 1 and np.isfinite(diff) and np.isfinite(low):
        # the verdict's band (`twins.twin_band`): the prediction interval widened by the
        # trained model's own interval; the difference's interval carries its half-width
        half, centre = diff - low, float(row["random"])
        band = (
            f"; with the trained model's own uncertainty added, the band it must leave is "
            f"[{_num(centre - half)}, {_num(centre + half)}]"
        )
    return (
        f"Against {twins}: trained {_num(row['trained'])}, "
        f"twin{'s' if n > 1 else ''} {_num(row['random'])} ({interval} "
        f"[{_num(row['random_ci_low'])}, {_num(row['random_ci_high'])}]{band}); "
        f"{row['verdict']}."
    )


def _sanity_row(sanity: pd.DataFrame | None, statistic: str):
    if sanity is None or sanity.empty:
        return None
    hit = sanity[sanity["statistic"].eq(statistic)]
    return None if hit.empty else hit.iloc[0]


def _statistic(
    measure: str, basis: str, metric: str, subset: str, layers: str | None = None
) -> str:
    """The sanity table's name of a row (`sharing_sanity.sharing_rows_against`, S's rows):
    a measure with rows per block (`layers`, the geometry's) names its block."""
    if measure == "S":
        return f"r(S, {metric}), {SUBSET_WORDS[subset]}"
    words = SANITY_WORDS.get(measure, measure)
    where = "" if layers is None else f", block {layers}"
    return f"r({words}, {metric}), {SUBSET_WORDS[subset]}{BASIS_WORDS.get(basis, '')}{where}"


def measure_sentences(
    correlation: pd.DataFrame,
    name: str,
    *,
    measure: str = "S",
    basis: str = "neurons",
    space: str = "full",
    sanity: pd.DataFrame | None = None,
    layers: str | None = None,
) -> list[str]:
    """The sentences of one measure's correlation rows (one score, one block): D and M in
    `space`, then binding accuracy, per subset; each followed by the twin comparison when
    the sanity table has the row (of block `layers` for a measure with rows per block, the
    geometry's; None for one pool)."""
    out = []
    rows = correlation[correlation["space"].isin([space, "binding"])]
    for metric in ("D", "M", "accuracy"):
        seen = set()
        for row in rows[rows["metric"].eq(metric)].to_dict("records"):
            if row["n_pairs"] in seen:  # the same pairs as the row before (no position among
                continue  # them: binding accuracy, colour x shape measures): said once
            seen.add(row["n_pairs"])
            out.append(correlation_sentence(row, name))
            statistic = _statistic(measure, basis, metric, row["subset"], layers)
            twin = _sanity_row(sanity, statistic)
            if twin is not None and metric != "accuracy":
                out.append(twin_sentence(twin))
    return out


def value_sentence(rows: pd.DataFrame, name: str, space: str = "full") -> str:
    """One sentence on a geometry measure read by its raw value (not centred on its null),
    D and M in `space` per subset: how much of it is per-feature mass (its additive R²)
    and what it gives, so a reader sees why the sections read z."""
    rows = rows[rows["score"].eq("value") & rows["space"].eq(space)]
    if rows.empty:
        return ""
    parts = [
        f"r({name}, {row['metric']}) over {_pairs_words(row)} = {_num(row['pearson_r'])} "
        f"[{_num(row['feature_ci_low'])}, {_num(row['feature_ci_high'])}], Mantel "
        f"{_p(float(row['mantel_p']))}"
        for row in rows.to_dict("records")
    ]
    r2 = _num(rows["additive_r2"].iloc[0])
    return (
        f"Read by its raw value instead (not centred on its null; additive R² {r2}, so "
        f"largely each feature's own mass): {'; '.join(parts)}."
    )


def beyond_sentences(
    beyond: pd.DataFrame, space: str = "full", alpha: float = ALPHA, score: str = "z"
):
    """The partial correlations r(ω, metric | ι) per block (geometry_beyond.parquet, both
    read by `score`, z by default as the sections) as sentences; one not detected says the
    smallest |partial r| its test detects with 80% power (`mde_r`,
    `geometry_beyond.residual_mde_r`)."""
    rows = beyond[beyond["score"].eq(score) & beyond["space"].isin([space, "binding"])]
    # binding accuracy's pairs have no position among them: its two subsets are one row
    rows = rows.drop_duplicates(["layers", "metric", "n_pairs"])
    z = " z" if score == "z" else ""
    out = []
    for row in rows.to_dict("records"):
        metric, r, p = row["metric"], float(row["r"]), float(row["mantel_p"])
        head = (
            f"Block {row['layers']}: partial r(ω{z}, {METRIC_WORDS.get(metric, metric)} | ι{z}) "
            f"over {_pairs_words(row)} = {_num(r)} [{_num(row['feature_ci_low'])}, "
            f"{_num(row['feature_ci_high'])}], partial Mantel {_p(p)}"
        )
        if not (np.isfinite(r) and np.isfinite(p)):
            out.append(f"{head}: could not be computed.")
        elif p > alpha:
            words = power_words(row.get("mde_r", np.nan))
            out.append(f"{head}: not detected ({words}).")
        else:
            side = (
                "as the study predicts" if np.sign(r) == STUDY_SIGN[metric] else "against the study"
            )
            out.append(f"{head}: detected beyond interference, {side}.")
    return out


def resolved_sentences(resolved: pd.DataFrame) -> list[str]:
    """resolved.tsv in sentences: per measure, the seeds' mean basis and the seeds' range."""
    out = []
    for measure, rows in resolved.groupby("measure", sort=False):
        mean = rows[rows["sae_seed"].astype(str).eq("mean")]
        seeds = rows[~rows["sae_seed"].astype(str).eq("mean")]
        if mean.empty:
            continue
        m = mean.iloc[0]
        text = (
            f"{MEASURE_TITLES.get(measure, measure)}: {int(m['shared_neurons'])} of "
            f"{int(m['n_pairs'])} pairs share in the neuron basis (z > {m['threshold']:.3g}); "
            f"{int(m['resolved'])} of them do not in the seeds' mean sparse basis (resolved "
            f"share {_num(m['resolved_share'])}); {_n_pairs(m['shared_sae'])} share in the "
            f"sparse basis, {int(m['shared_both'])} in both; the pairs' z correlate between "
            f"the bases with r {_num(m['r_z'])} (ρ {_num(m['rho_z'])})"
        )
        if np.isfinite(seeds["resolved_share"].astype(float)).any():
            low, high = seeds["resolved_share"].min(), seeds["resolved_share"].max()
            text += f"; per seed the resolved share is {_num(low)} to {_num(high)}"
        out.append(text + ".")
    return out


def _n_pairs(n) -> str:
    return "1 pair" if int(n) == 1 else f"{int(n)} pairs"


def training_sentences(curves: Mapping[str, pd.DataFrame]) -> list[str]:
    """Each layer's final held-out FVU and dead fraction over the seeds (training.tsv)."""
    out = []
    for layer, curve in curves.items():
        last = curve.sort_values("step").groupby("seed").tail(1)
        fvu, dead = last["fvu"], last["dead_fraction"]
        text = (
            f"Layer {layer}: {len(last)} autoencoder(s); at the last step the held-out FVU is "
            f"{_num(fvu.min(), '.3f')} to {_num(fvu.max(), '.3f')}, latents that fired on no "
            f"token in the last epoch "
            f"{_num(100 * dead.min(), '.0f')}% to {_num(100 * dead.max(), '.0f')}%"
        )
        out.append(text + (" (more than half dead in a seed)." if dead.max() > 0.5 else "."))
    return out


def _headline(rows: pd.DataFrame, space: str) -> pd.DataFrame:
    return headline_correlations(rows[rows["space"].isin([space, "binding"])])


def sharing_sections(
    correlation: pd.DataFrame,
    sharing_correlation: pd.DataFrame,
    *,
    space: str = "full",
    sanity: pd.DataFrame | None = None,
    beyond: pd.DataFrame | None = None,
    resolved: pd.DataFrame | None = None,
    training: Mapping[str, pd.DataFrame] | None = None,
) -> list[tuple[str, str, pd.DataFrame]]:
    """The page's sections (heading, sentences, table), for `pages.html_page`: S (the
    study's additive score), then every measure and basis of sharing_correlation.parquet
    (the geometry's per block), the partial correlations beyond interference, and the
    autoencoder basis's resolved pairs and training."""
    sections = [
        (
            "S, the study's additive score",
            " ".join([S_TEXT, *measure_sentences(correlation, "S", space=space, sanity=sanity)]),
            _headline(correlation, space),
        )
    ]
    keys = ["measure", "basis", "layers"]
    for (measure, basis, layers), every in sharing_correlation.groupby(keys, sort=False):
        score = SCORE_OF.get(measure, "z")
        rows = every[every["score"].eq(score)]
        name = MEASURE_NAMES.get(measure, measure)
        block = str(layers) if measure in GEOMETRY else None  # the sanity rows per block
        sentences = measure_sentences(
            rows, name, measure=measure, basis=basis, space=space, sanity=sanity, layers=block
        )
        r2 = rows["additive_r2"].iloc[0] if len(rows) else np.nan
        title = f"{MEASURE_TITLES.get(measure, measure)}, {BASIS_TITLES.get(basis, basis)}"
        where = f"block {layers}" if measure in GEOMETRY else f"layers {layers}"
        if measure in VALUE_NAMES and (raw := value_sentence(every, VALUE_NAMES[measure], space)):
            sentences.append(raw)
        read = name if name.endswith(f" {score}") else f"{name} ({score})"
        text = f"{read} at {where}; additive R² {_num(r2)} (S gives 1). " + " ".join(sentences)
        sections.append((f"{title}, {where}", text, _headline(rows, space)))
    if beyond is not None and len(beyond):
        sections.append(
            (
                "Neuron sharing ω beyond interference ι",
                "Does ω go with D, M and binding beyond what ι explains? "
                + " ".join(beyond_sentences(beyond, space)),
                beyond[beyond["space"].isin([space, "binding"])],
            )
        )
    if resolved is not None and len(resolved):
        sections.append(
            (
                "What the autoencoder basis resolves",
                " ".join(resolved_sentences(resolved)),
                resolved,
            )
        )
    if training:
        last = pd.concat(
            [
                c.sort_values("step").groupby("seed").tail(1).assign(layer=k)
                for k, c in training.items()
            ],
            ignore_index=True,
        )
        sections.append(
            (
                "Autoencoder training",
                " ".join(training_sentences(training)),
                last[["layer", *[c for c in last.columns if c != "layer"]]],
            )
        )
    return sections


def sharing_page(title: str, sections: list) -> str:
    """The page's HTML: `sections`, the first led by how to read the tables' columns."""
    if sections:
        heading, text, body = sections[0]
        sections = [(heading, f"{text} (Tables: {HEADLINE_TEXT})", body), *sections[1:]]
    return html_page(title, sections)
