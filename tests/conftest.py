"""Shared test fixtures: device selection, real data location, small seeded cubes."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# A lean install (no [gui] or [test] extras' Qt parts) still collects: the window's tests need
# PySide6, pyqtgraph and pytest-qt, and are left out without them instead of failing to import.
collect_ignore_glob: list[str] = []
if any(importlib.util.find_spec(name) is None for name in ("PySide6", "pyqtgraph", "pytestqt")):
    collect_ignore_glob.append("test_app_*.py")

#: Real data staged beside the checkout (absent on some machines: tests skip cleanly).
SHARED_DATA = Path(os.environ.get("HIRALIGN_SHARED_DATA",
                                  Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu",
                     help="torch device for device-aware tests: cpu (default) or cuda; "
                          "cuda tests skip when no GPU is present")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_flush_denormal(True)


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> torch.device:  # noqa: F821
    import torch

    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("--device cuda given but no CUDA GPU is available")
    return torch.device(name)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, skipping the calling test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data file {path} is absent")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def small_cube(rng: np.random.Generator):
    """A smooth random 32×40×31 cube over 400–700 nm (values in [0, 1])."""
    from scipy.ndimage import gaussian_filter

    from hiralign.cube import Cube

    data = gaussian_filter(rng.random((32, 40, 31)), sigma=(2, 2, 3)).astype(np.float32)
    data = (data - data.min()) / (data.max() - data.min())
    return Cube(data=data, wavelengths=np.arange(400, 701, 10.0), name="small")


@pytest.fixture
def one_thread():
    """One torch and FAISS thread for the test.

    On the 2-core machines tests run on, two intra-op threads that share the cores with
    another process are many times slower than one (FACTS.md); the heavy test modules
    request this fixture for every test.
    """
    import faiss
    import torch

    old_torch, old_faiss = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(old_torch)
    faiss.omp_set_num_threads(old_faiss)


def band_agnostic_checkpoint(folder: Path, task: str) -> Path:
    """A tiny, seeded band-agnostic ``spectral_window`` checkpoint for ``task`` (31-band 400–700 nm record)."""
    import torch

    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint

    torch.manual_seed(0)
    args = {"radius": 1, "features": 8, "depth": 2}
    return save_checkpoint(build_model("spectral_window", 31, 1, **args), folder,
                           CheckpointConfig(arch="spectral_window", task=task, bands=31,
                                            wavelengths=tuple(np.arange(400, 701, 10.0)), args=args))
