"""``python -m app --smoke``: the packaging check, run from the source tree."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.gui


def test_smoke_opens_the_demo_runs_the_proxy_stage_and_exits_zero(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "app", "--smoke", "--fresh", "--settings", str(tmp_path / "p.ini")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    match = re.search(r"smoke: .*proxy stage (\d+)/(\d+) targets\b.*; ok$", done.stderr, re.MULTILINE)
    assert match and match.group(1) == match.group(2) == "4", done.stderr[-3000:]
