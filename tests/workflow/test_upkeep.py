"""House upkeep: skips that say why, locked directories, atomic outputs, no stale paths."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import REPO, SNAKEMAKE, run_workflow

from vlmbinding.atomic import write_parquet


def test_report_tests_say_how_to_install_chromium_when_it_is_missing(tmp_path):
    env = {**os.environ, "REPORT_CHROMIUM": str(tmp_path / "no-chromium")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/report/test_report.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    if "playwright" in out and "needs Playwright" in out:
        assert "pip install playwright" in out
    else:
        assert "SKIPPED" in out and "apt-get install chromium" in out, out[-2000:]


KILLED_WRITER = """
import os, signal, sys
import pandas as pd
sys.path.insert(0, {scripts!r})
from vlmbinding.atomic import write_parquet

def dies_mid_write(self, path, **kw):
    with open(path, "wb") as f:
        f.write(b"PAR1" + b"half a table")
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

pd.DataFrame.to_parquet = dies_mid_write
write_parquet(pd.DataFrame({{"a": [1, 2]}}), {target!r})
"""


def test_a_writer_killed_mid_write_leaves_no_table_under_the_output_name(tmp_path):
    target = tmp_path / "layer_3.parquet"
    code = KILLED_WRITER.format(scripts=str(REPO / "workflow" / "scripts"), target=str(target))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()  # only a hidden temporary file is left
    write_parquet(pd.DataFrame({"a": [1, 2]}), target)  # the rerun writes it whole
    assert pd.read_parquet(target)["a"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".parquet")] == [target.name]


def test_a_second_run_in_the_same_directory_gets_snakemakes_lock_message(tmp_path, tiny_config):
    """Two runs at once: the second stops with Snakemake's own lock message."""
    work = tmp_path / "work"
    run_workflow(work, tiny_config, "-n")  # writes config.yaml, checks it parses
    first = subprocess.Popen(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml", "--cores", "1"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        locks = work / ".snakemake" / "locks"
        deadline = time.time() + 120
        while not (locks.exists() and any(locks.iterdir())):
            assert first.poll() is None, "the first run ended before locking"
            assert time.time() < deadline, "the first run never locked the directory"
            time.sleep(0.2)
        second = run_workflow(work, tiny_config, check=False)
        out = second.stdout + second.stderr
        assert second.returncode != 0
        assert "Directory cannot be locked" in out, out[-2000:]
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=60)


@pytest.mark.parametrize("needle", ["../shared", "/work/"])
def test_no_references_to_files_outside_the_project(needle):
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    hits = [
        name
        for name in tracked
        if name != "tests/workflow/test_upkeep.py"
        and (REPO / name).is_file()
        and needle in (REPO / name).read_text(errors="ignore")
    ]
    assert not hits, f"{needle!r} points outside the project in {hits}"


def test_license_is_mit():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY" in text


def test_rule_scripts_write_parquet_atomically():
    """A rule script's parquet outputs go through vlmbinding.atomic.write_parquet (or
    dataset.write_table), so a killed job never leaves a table that reads as complete."""
    direct = [
        p.name
        for p in sorted((REPO / "workflow" / "scripts").glob("*.py"))
        if ".to_parquet(" in p.read_text()
    ]
    assert not direct, f"use vlmbinding.atomic.write_parquet instead of to_parquet in {direct}"
