"""Rule tabulate_sanity: the trained model against its random twin and the pixel baseline."""

import pandas as pd

from vlmbinding.atomic import write_parquet
from vlmbinding.controls.sanity import sanity_table
from vlmbinding.controls.verdicts import sanity_page_sections
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file
from vlmbinding.report.pages import html_page

to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params


def tables(prefix):
    def read(name):
        path = i.get(f"{prefix}_{name}")
        if not path:
            return None
        return pd.read_csv(path, sep="\t") if path.endswith(".tsv") else pd.read_parquet(path)

    names = ("neurons", "superposition", "separability", "correlation", "trials", "shares")
    names += ("entropy_halves",)
    out = {name: read(name) for name in names}
    out["beyond"] = read("beyond")
    out["pixel_separability"] = read("pixel_separability")
    out["sharing"] = read("sharing")
    out["sharing_correlation"] = read("sharing_correlation")
    return out


n_twins = sum(1 for key in i.keys() if key.startswith("random") and key.endswith("_neurons"))  # noqa: SIM118 (a Namedlist iterates values)
kinds = Vocabulary.from_config(p.vocabulary).feature_kinds
stats = {"n_boot": p.statistics["bootstrap"], "seed": p.statistics["seed"]}
trained = tables("trained")
twins = [tables(f"random{j}") for j in range(n_twins)]
table = sanity_table(
    trained,
    twins,
    kinds,
    space=p.space,
    entropy_threshold=p.entropy_threshold,
    **stats,
)  # with sharing.enabled every model's sharing tables are inputs: the overlap's rows too
write_parquet(table, snakemake.output.table)
with open(snakemake.output.html, "w") as f:
    sections = sanity_page_sections(table, p.primary, p.space)
    f.write(html_page(f"{snakemake.wildcards.model}: sanity controls", sections))
