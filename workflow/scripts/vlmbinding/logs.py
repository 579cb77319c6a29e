"""Logging set-up for rule scripts: everything goes to the rule's log file."""

from __future__ import annotations

import logging
import sys


def to_file(path: str | None) -> None:
    """Send logging and stderr to `path` (the rule's `log:`), with timestamps."""
    if path is None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        return
    stream = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        stream=stream,
        force=True,
    )
