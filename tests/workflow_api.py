"""The parsed workflow (rules, params, resources) for a config, without running a job."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def parse_workflow(workdir: Path, config: dict):
    """Snakemake's Workflow object for `config`, parsed in `workdir` (start-up checks run)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cwd = os.getcwd()
    try:
        with SnakemakeApi(OutputSettings()) as api:
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=ConfigSettings(configfiles=[cfg]),
                snakefile=REPO / "Snakefile",
                workdir=workdir,
            )
            return workflow_api._workflow  # parses the Snakefile
    finally:
        os.chdir(cwd)  # Snakemake changes into the working directory
