"""The PyInstaller bundle (``make bundle``): the GUI's smoke run and the bundled CLI's proxy stage.

Building takes minutes, so CI does not; these tests skip cleanly without ``dist/hiralign/``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

BUNDLE = Path(__file__).resolve().parents[1] / "dist" / "hiralign"
GUI = BUNDLE / "hiralign"
CLI = BUNDLE / "hiralign-cli"
#: Shared libraries of a CUDA build of torch and its nvidia-* wheels.
CUDA_LIBRARY = re.compile(r"^lib(cudart|cublas|cudnn|cufft|curand|cusolver|cusparse|nccl|nvrtc|torch_cuda)")

pytestmark = pytest.mark.skipif(not GUI.is_file(), reason="no bundle in dist/hiralign (run `make bundle`)")


def _environment(tmp_path: Path) -> dict[str, str]:
    # a fresh HOME: no preferences or caches of the developer's own runs leak in
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}


@pytest.mark.slow
def test_bundled_app_opens_the_demo_runs_the_proxy_stage_and_exits_cleanly(tmp_path: Path) -> None:
    done = subprocess.run([str(GUI), "--smoke", "--fresh", "--settings", str(tmp_path / "prefs.ini")],
                          env=_environment(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"smoke: .*proxy stage (\d+)/\1 targets\b.*; ok$", done.stderr, re.MULTILINE), done.stderr[-3000:]


@pytest.mark.slow
def test_bundled_cli_runs_the_proxy_stage_on_the_demo(tmp_path: Path) -> None:
    demo = BUNDLE / "_internal" / "resources" / "demo"
    manifest = json.loads((demo / "manifest.json").read_text())
    target = demo / manifest["cubes"][0]["file"]
    task = manifest.get("config", {}).get("task", "gaussian")
    # no --model: the shipped model is found inside the bundle (sys._MEIPASS)
    done = subprocess.run([str(CLI), "proxy", "--task", task, str(target), "--out", str(tmp_path / "proxies"),
                           "--device", "cpu"], env=_environment(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((tmp_path / "proxies").glob("*.hdr")) and list((tmp_path / "proxies").glob("*_rgb.png"))


def test_cpu_bundle_carries_no_cuda_libraries() -> None:
    import torch

    if torch.version.cuda is not None and os.environ.get("HIRALIGN_BUNDLE_CUDA") == "1":
        pytest.skip("a CUDA bundle was asked for")
    libraries = [p.name for p in BUNDLE.rglob("*.so*") if CUDA_LIBRARY.match(p.name)]
    assert libraries == []


@pytest.mark.slow
def test_bundled_cli_runs_the_unclip_generator(tmp_path: Path, one_thread) -> None:
    """diffusers/transformers load their modules lazily: the spec's hidden imports must carry them."""
    import numpy as np

    from hiralign import io
    from hiralign.generate.tiny import build_tiny_unclip

    model = build_tiny_unclip(tmp_path / "tiny-unclip", seed=0)
    picture = io.save_rgb(np.random.default_rng(0).random((32, 40, 3)).astype(np.float32), tmp_path / "proxy.png")
    done = subprocess.run([str(CLI), "--quiet", "generate", "--generator", "unclip", "--model", str(model), "--n", "1",
                           "--steps", "2", "--work-side", "0", "--device", "cpu", str(picture), "--out",
                           str(tmp_path / "guides")], env=_environment(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert io.load_rgb(tmp_path / "guides" / "proxy_g0.png").shape == (32, 40, 3)
