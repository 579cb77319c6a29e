"""Rule summarise_verdicts: the report's front page, every model's verdicts in sentences."""

import pandas as pd

from vlmbinding.controls.front_page import front_page_sections
from vlmbinding.logs import to_file
from vlmbinding.report.pages import html_page

to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
tables = {m: pd.read_parquet(t) for m, t in zip(p.models, i.tables)}
correlations = {m: pd.read_parquet(c) for m, c in zip(p.models, i.correlations)}
with open(snakemake.output.html, "w") as f:
    f.write(html_page("What came out", front_page_sections(tables, correlations, p.space)))
