"""The core library must never import Qt (only app/ does)."""
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "hiralign"


def test_importing_hiralign_and_all_its_modules_loads_no_qt() -> None:
    modules = sorted(
        "hiralign." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in CORE.rglob("*.py") if p.name != "__main__.py"
    )
    modules = [m.removesuffix(".__init__") for m in modules]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'app', 'shiboken6'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_no_core_source_mentions_a_qt_import() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                    q in stripped.split()[1] for q in ("PySide6", "pyqtgraph", "app")):
                if stripped.split()[1].split(".")[0] in ("PySide6", "pyqtgraph", "app"):
                    offenders.append(f"{path}: {stripped}")
    assert not offenders, offenders
