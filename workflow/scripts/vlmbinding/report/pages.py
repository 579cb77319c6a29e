"""Small self-contained HTML pages of result tables, for the Snakemake report."""

from __future__ import annotations

import html

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.6em; }
p { max-width: 60em; line-height: 1.4; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 1em; font-size: 0.85em; }
"""


def format_frame(df: pd.DataFrame, digits: int = 3) -> str:
    """A table with floats at `digits` significant places, p-values in scientific form."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            fmt = "{:.2e}" if col.endswith("_p") else f"{{:.{digits}g}}"
            out[col] = out[col].map(lambda v, f=fmt: "" if pd.isna(v) else f.format(v))
    return out.to_html(index=False, border=0, escape=True)


def html_page(title: str, sections: list[tuple[str, str, pd.DataFrame | str]]) -> str:
    """One page: a title, then per section a heading, a sentence and a table (or text)."""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    for heading, text, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><p>{html.escape(text)}</p>")
        if isinstance(body, pd.DataFrame):
            parts.append(format_frame(body))
        else:
            parts.append(f"<pre>{html.escape(body)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


# Dependence-aware numbers first (features left out / permuted), then the pair-level
# ones, renamed conditional_* because they treat the pairs as independent.
HEADLINE_COLUMNS = {
    "metric": "metric",
    "primary": "primary",
    "space": "space",
    "subset": "subset",
    "n_pairs": "n_pairs",
    "pearson_r": "pearson_r",
    "feature_ci_low": "feature_ci_low",
    "feature_ci_high": "feature_ci_high",
    "mantel_p": "mantel_p",
    "mde_r": "mde_r",
    "spearman_rho": "spearman_rho",
    "pearson_p": "conditional_pearson_p",
    "pearson_ci_low": "conditional_pearson_ci_low",
    "pearson_ci_high": "conditional_pearson_ci_high",
    "spearman_p": "conditional_spearman_p",
    "spearman_ci_low": "conditional_spearman_ci_low",
    "spearman_ci_high": "conditional_spearman_ci_high",
    "n_boot": "n_boot",
    "n_perm": "n_perm",
    "n_comparisons": "n_comparisons",
}
HEADLINE_TEXT = (
    "Lead with pearson_r, its 95% interval from a jackknife over features "
    "(feature_ci_low/high: each feature left out in turn with all its pairs) and the Mantel p "
    "(features permuted): pairs that share a feature are not independent. mde_r: the "
    "smallest |r| the Mantel test detects with 80% power; a larger p says not detected, not "
    "absent. The conditional_* columns "
    "are conditional (pairs treated as independent: pair-level p-values and a bootstrap "
    "that resamples pairs) and are too confident when pairs share features. primary: the "
    "one test declared in advance (analysis.primary), listed first; every other row is "
    "exploratory, one of n_comparisons tests in the table."
)


def headline_correlations(table: pd.DataFrame) -> pd.DataFrame:
    """A correlation table (stats.CORRELATION_COLUMNS) ordered for reading.

    The primary test's row (column `primary`, when the table has it) comes first. The
    dependence-aware columns come first (pearson_r, feature_ci_low/high, mantel_p);
    the pair-level p-values and intervals follow, renamed conditional_*; mantel_r (equal
    to pearson_r) and columns outside HEADLINE_COLUMNS are left out, and columns an
    older table lacks are skipped.
    """
    keep = [c for c in HEADLINE_COLUMNS if c in table.columns]
    if "primary" in table.columns:  # the primary test first, the exploratory rows after
        table = table.sort_values("primary", ascending=False, kind="stable")
    return table[keep].rename(columns=HEADLINE_COLUMNS)


def null_sections(null: pd.DataFrame, correlation: pd.DataFrame, top: int = 12):
    """Two table-page sections for the null model of S (superposition_null*.parquet)."""
    n_perm = int(null["n_perm"].iloc[0]) if len(null) else 0
    far = int((null["p"] <= 0.05).sum())
    ranked = null.reindex(null["z"].abs().sort_values(ascending=False).index).head(top)
    return [
        (
            "Superposition S against its null (image labels permuted)",
            f"S of each pair against {n_perm} permutations of the images' labels (the rows "
            "of the presence matrix: features keep their frequencies; every neuron keeps its "
            "top-k images; the feature neurons are reselected each time). null_mean/null_sd: "
            "what the features' frequencies alone give; z = (S - null_mean) / null_sd; p: "
            f"two-sided permutation p. {far} of {len(null)} pairs have p <= 0.05; the {top} "
            "pairs farthest from their null are listed (all in superposition_null.parquet).",
            ranked.drop(columns="n_perm"),
        ),
        (
            "Correlation of S with D and M against the null S",
            "pearson_r: the observed S with D or M; null_mean/null_sd: r of the null S "
            "(image labels permuted) with the same D or M, which is not centred on 0; "
            "z = (pearson_r - null_mean) / null_sd; p: how often the null r lies as far from "
            "its own centre, on either side. A small p means the S-D (or S-M) relation "
            "differs from what the features' frequencies give; z < 0: less than they give.",
            correlation,
        ),
    ]


def not_applicable_section(title: str, text: str) -> tuple[str, str, pd.DataFrame]:
    """A section of a stage that does not apply to the model (Grad-CAM and the binding test
    on a vision tower without a text tower): one row that says so and why."""
    from vlmbinding.models.applicability import not_applicable_row

    return title, text, pd.DataFrame([not_applicable_row()])
