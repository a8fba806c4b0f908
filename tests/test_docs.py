"""The user guide: the CLI reference is generated from the CLI, and the site builds without warnings."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _reference_module():
    spec = importlib.util.spec_from_file_location("gen_cli_reference", REPO / "docs" / "gen_cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_documents_every_command_with_its_options() -> None:
    from hiralign.cli import COMMAND_MODULES, build_parser

    text = _reference_module().render()
    commands = _reference_module()._subparsers(build_parser())
    assert len(commands) == len(COMMAND_MODULES)
    for name, parser in commands.items():
        assert f"## `hiralign {name}`" in text
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in text, f"{name}: {flag} missing from the reference"


@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None,
                    reason="mkdocs is not installed (pip install -e '.[docs]')")
def test_docs_site_builds_in_strict_mode(tmp_path: Path) -> None:
    shutil.copytree(REPO / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "docs" / "cli.md").write_text(_reference_module().render(), encoding="utf-8")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    done = subprocess.run([str(mkdocs), "build", "--strict", "-d", str(tmp_path / "site")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "site" / "cli" / "index.html").is_file()
