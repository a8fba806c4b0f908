"""The lean install: core dependencies without Qt/diffusers/pyinstaller, extras, Makefile, GUI hint."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
#: Blocks these top-level packages in a child interpreter, as if they were not installed.
_BLOCK = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
sys.meta_path.insert(0, Block())
"""


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()


def test_core_dependencies_pull_no_qt_diffusers_transformers_or_pyinstaller() -> None:
    core = {_name(r) for r in PYPROJECT["dependencies"]}
    assert not core & {"pyside6", "pyside6-essentials", "pyqtgraph", "diffusers", "transformers", "pyinstaller",
                       "accelerate", "pytest", "mkdocs", "bm4d"}
    assert "imagecodecs" in core  # every PNG goes through libpng


def test_extras_hold_what_each_use_needs() -> None:
    extras = {k: {_name(r) for r in v} for k, v in PYPROJECT["optional-dependencies"].items()}
    assert {"pyside6-essentials", "pyqtgraph"} <= extras["gui"]
    assert {"diffusers", "transformers"} <= extras["unclip"]
    assert {"pytest", "pytest-qt", "pytest-timeout", "ruff"} <= extras["test"]
    assert "mkdocs" in extras["docs"] and "pyinstaller" in extras["bundle"]
    assert {"bm4d", "pywavelets"} <= extras["bench"]
    floors = {_name(r): r for r in PYPROJECT["optional-dependencies"]["unclip"]}
    # from_pretrained(dtype=...) is used: transformers 4.56.0 and diffusers 0.40.0 introduced it
    assert floors["transformers"].replace(" ", "") == "transformers>=4.56"
    assert floors["diffusers"].replace(" ", "") == "diffusers>=0.40"


def test_core_cli_runs_without_any_extra(tmp_path: Path) -> None:
    blocked = ["PySide6", "pyqtgraph", "shiboken6", "diffusers", "transformers", "accelerate", "xarray", "app"]
    code = _BLOCK.format(blocked=blocked) + (
        "import numpy as np\n"
        "from hiralign.cube import Cube\n"
        "from hiralign.io import save\n"
        f"save(Cube(np.zeros((4, 5, 3), np.float32), wavelengths=[450, 550, 650]), {str(tmp_path / 'c.hdr')!r})\n"
        "from hiralign.cli import main\n"
        f"sys.exit(main(['info', {str(tmp_path / 'c.hdr')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"shape": [\n    4,\n    5,\n    3\n  ]' in result.stdout or '"shape": [4, 5, 3]' in result.stdout


def test_gui_entry_point_says_what_to_install_without_pyside6() -> None:
    code = _BLOCK.format(blocked=["PySide6", "pyqtgraph", "shiboken6"]) + (
        "from app.__main__ import main\nsys.exit(main(['--no-demo']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 2
    assert 'pip install "hiralign[gui]"' in result.stderr and "Traceback" not in result.stderr


def test_makefile_uses_python3_with_a_version_check_and_existing_scripts() -> None:
    make = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^PYTHON \?= python3$", make, re.MULTILINE)
    assert "sys.version_info >= (3, 11)" in make
    for script in re.findall(r"\$\(PY\) (benchmarks/\S+\.py)", make):
        assert (REPO / script).is_file(), script
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for lib in ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-randr0",
                "libxcb-render-util0", "libxcb-shape0", "libxcb-xkb1", "libxkbcommon-x11-0", "libegl1", "libgl1",
                "fontconfig"):
        assert lib in make and lib in readme, lib
    assert "system-deps:" in make and "make system-deps" in readme


@pytest.mark.skipif(sys.platform != "linux", reason="make is checked on Linux")
def test_make_refuses_an_old_python(tmp_path: Path) -> None:
    fake = tmp_path / "python3.9"
    fake.write_text("#!/bin/sh\nexec " + sys.executable + ' -c "import sys; '
                    "sys.exit(1) if 'version_info' in sys.argv[-1] else print('3.9.18')\" \"$@\"\n")
    fake.chmod(0o755)
    result = subprocess.run(["make", "-s", "check-python", f"PYTHON={fake}"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode != 0 and "needs Python >= 3.11" in result.stdout + result.stderr
