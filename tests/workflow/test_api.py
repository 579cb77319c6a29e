"""The public API: every documented name resolves, lazily, without importing torch."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

import vlmbinding


def test_every_public_name_resolves_to_a_callable_of_its_module():
    for name in vlmbinding.__all__:
        obj = getattr(vlmbinding, name)
        assert callable(obj), name
        assert obj.__module__ == f"vlmbinding.{vlmbinding._PUBLIC[name]}", name


def test_unknown_names_raise_attribute_error():
    try:
        vlmbinding.no_such_function  # noqa: B018
    except AttributeError as err:
        assert "no_such_function" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_and_a_pure_function_imports_no_torch():
    code = (
        "import sys\n"
        "from vlmbinding import separability_table, correlation_table, dependence_aware\n"
        "from vlmbinding import dataset_presence\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd="/",  # the installed package, not the working tree on sys.path
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "workflow" / "scripts")},
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_docs_api_lists_every_public_name():
    page = (REPO / "docs" / "api.md").read_text()
    missing = [name for name in vlmbinding.__all__ if f"`{name}`" not in page]
    assert not missing, f"docs/api.md lacks {missing}"
