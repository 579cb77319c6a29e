"""Rule tabulate_sharing: the sharing page, what came out for each measure and basis."""

import re

import pandas as pd

from vlmbinding.logs import to_file
from vlmbinding.report.sharing_page import sharing_page, sharing_sections

to_file(snakemake.log[0])
i = snakemake.input
sections = sharing_sections(
    pd.read_parquet(i.correlation),
    pd.read_parquet(i.sharing_correlation),
    space=snakemake.params.space,
    sanity=pd.read_parquet(i.sanity) if i.get("sanity") else None,
    beyond=pd.read_parquet(i.beyond) if i.get("beyond") else None,
    resolved=pd.read_csv(i.resolved, sep="\t") if i.get("resolved") else None,
    training={
        re.search(r"layer_(-?\d+)", p).group(1): pd.read_csv(p, sep="\t")
        for p in i.get("training", [])
    },
)
with open(snakemake.output.html, "w") as f:
    f.write(sharing_page(f"{snakemake.wildcards.model}: shared neurons", sections))
