"""Rule record_config: the run's validated configuration, for the report and for the record."""

import yaml

from vlmbinding.logs import to_file
from vlmbinding.report.pages import html_page

to_file(snakemake.log[0])
text = yaml.safe_dump(snakemake.params.config, sort_keys=False)
with open(snakemake.output.yaml, "w") as f:
    f.write(text)
with open(snakemake.output.html, "w") as f:
    f.write(
        html_page(
            "Configuration of this run",
            [("config", "Every key, defaults filled in (see config/schema.yaml).", text)],
        )
    )
