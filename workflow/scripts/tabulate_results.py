"""Rule tabulate_results: the model's key tables as one HTML page for the report."""

import logging

import pandas as pd

from vlmbinding.logs import to_file
from vlmbinding.models.applicability import NEEDS_TEXT
from vlmbinding.report.pages import (
    HEADLINE_TEXT,
    headline_correlations,
    html_page,
    not_applicable_section,
    null_sections,
)

to_file(snakemake.log[0])
i = snakemake.input
sections = [
    (
        "Superposition S against separability D and M",
        "Across feature pairs (all pairs, or only pairs without a position feature), in the "
        "full embedding and in a per-pair PCA keeping the configured variance. " + HEADLINE_TEXT,
        headline_correlations(pd.read_parquet(i.correlation)),
    ),
]
BINDING_CORRELATION = (
    "Binding accuracy against S",
    "Per-pair swapped-caption binding accuracy (colour pairs and shape pairs) against S, "
    "with the same statistics; features are permuted and resampled within kind (colours "
    "among colours, shapes among shapes), as accuracy exists only for same-kind pairs.",
)
BINDING = (
    "Swapped-caption binding test",
    "Fraction of trials in which the true caption beats the caption with two objects' "
    "colours exchanged (chance 0.5), overall and per number of objects.",
)
LOCALISATION = (
    "Grad-CAM localisation",
    "Mean share of a map's mass inside each object's box, by prompt kind and object role, "
    "against the box's share of the image (an evenly spread map).",
)
if i.get("binding"):
    sections += [
        (*BINDING_CORRELATION, headline_correlations(pd.read_parquet(i.binding_correlation))),
        (
            *BINDING,
            pd.concat(
                [
                    pd.read_csv(i.binding, sep="\t").assign(num_objects="all"),
                    pd.read_csv(i.binding_per_count, sep="\t"),
                ],
                ignore_index=True,
            )[["num_objects", "n", "accuracy"]],
        ),
        (*LOCALISATION, pd.read_csv(i.localisation, sep="\t")),
    ]
else:  # a vision tower without a text tower: say so, do not leave the sections out
    logging.getLogger("tabulate_results").info("Grad-CAM and the binding test: %s", NEEDS_TEXT)
    sections += [
        not_applicable_section(*what) for what in (BINDING_CORRELATION, BINDING, LOCALISATION)
    ]
if i.get("null"):
    sections += null_sections(pd.read_parquet(i.null), pd.read_parquet(i.null_correlation))
if i.get("zero_shot"):
    sections.append(
        (
            "Toy model: zero-shot accuracy",
            "One-object test scenes (never training scenes) matched against every one-object "
            "caption; split seen: combinations trained on inside other scenes, unseen: "
            "combinations held out of training; ci_low/ci_high: 95% Wilson interval.",
            pd.read_csv(i.zero_shot, sep="\t"),
        )
    )
with open(snakemake.output.html, "w") as f:
    f.write(html_page(f"{snakemake.wildcards.model}: result tables", sections))
