"""Parsing the Snakefile stays cheap: nothing it imports pulls in torch."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO, SNAKEMAKE


def test_the_modules_the_rules_import_at_parse_time_do_not_import_torch():
    sources = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    imports = sorted(
        {
            line.strip().split("  #")[0]
            for path in sources
            for line in path.read_text().splitlines()
            if re.match(r"\s*(from vlmbinding\S* import|import vlmbinding)", line)
        }
    )
    # multi-line imports in parentheses: keep only their module part
    imports = [re.sub(r"import \($", "import *", i) for i in imports]
    assert imports, "the rules import nothing from vlmbinding?"
    code = "\n".join(
        [f"import sys; sys.path.insert(0, {str(REPO / 'workflow' / 'scripts')!r})", *imports]
        + ["print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'open_clip')))"]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_dry_run_does_not_import_torch(tmp_path, tiny_config):
    import yaml

    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config))
    cmd = [
        sys.executable,
        "-X",
        "importtime",
        SNAKEMAKE,
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(cfg),
        "-n",
        "--cores",
        "1",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = re.findall(r"^import time:.*\|\s+(\S+)$", proc.stderr, re.M)
    assert "snakemake" in imported
    assert not [m for m in imported if m.split(".")[0] in ("torch", "open_clip")]
