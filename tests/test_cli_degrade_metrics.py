"""`hiralign degrade` and `hiralign metrics`: files in, JSON out, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_file

from hiralign.cli import main
from hiralign.commands.degrade import TASK_NAMES
from hiralign.cube import Cube
from hiralign.degrade import TASKS, degrade_cube
from hiralign.io import load, save
from hiralign.metrics import all_metrics


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


@pytest.fixture
def clean_file(small_cube: Cube, tmp_path: Path) -> Path:
    return save(small_cube, tmp_path / "clean.npz")


def test_task_names_of_the_cli_match_the_library() -> None:
    assert TASK_NAMES == TASKS


def test_degrade_writes_the_library_observation(clean_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "noisy.npz"
    code, summary, _ = _run(capsys, "degrade", str(clean_file), str(out), "--task", "complex", "--seed", "3")
    assert code == 0 and out.is_file()
    assert summary["task"] == "complex" and summary["seed"] == 3 and summary["output_shape"] == [32, 40, 31]
    expected = degrade_cube(load(clean_file), "complex", 3)
    written = load(out)
    np.testing.assert_array_equal(written.data, expected.data)
    np.testing.assert_array_equal(written.wavelengths, expected.wavelengths)


def test_sr4_writes_the_low_resolution_cube_and_crops(small_cube: Cube, tmp_path: Path, capsys) -> None:
    odd = save(small_cube.crop(0, 0, 30, 39), tmp_path / "odd.npy")
    with pytest.warns(UserWarning, match="cropped to 28×36"):
        code, summary, _ = _run(capsys, "degrade", str(odd), str(tmp_path / "lr.npy"), "--task", "sr4")
    assert code == 0 and summary["output_shape"] == [7, 9, 31] and summary["cropped_to"] == [28, 36]
    assert load(tmp_path / "lr.npy").shape == (7, 9, 31)


def test_metrics_json_matches_the_library(clean_file: Path, tmp_path: Path, capsys) -> None:
    noisy = tmp_path / "noisy.npz"
    assert main(["degrade", str(clean_file), str(noisy), "--task", "gaussian"]) == 0
    capsys.readouterr()
    code, result, _ = _run(capsys, "metrics", "--ref", str(clean_file), "--est", str(noisy), "--device", "cpu")
    assert code == 0
    expected = all_metrics(load(noisy).to_torch(), load(clean_file).to_torch())
    assert result["psnr"] == pytest.approx(expected["psnr"]) and result["ssim"] == pytest.approx(expected["ssim"])
    assert result["sam"] == pytest.approx(expected["sam"])
    assert len(result["psnr_per_band"]) == 31 and result["shape"] == [32, 40, 31]
    assert np.mean(result["psnr_per_band"]) == pytest.approx(result["psnr"])


def test_metrics_of_identical_cubes(clean_file: Path, capsys) -> None:
    code, result, _ = _run(capsys, "metrics", "--ref", str(clean_file), "--est", str(clean_file))
    assert code == 0 and result["psnr"] == 100.0 and result["ssim"] == pytest.approx(1.0)
    assert result["sam"] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["degrade", "{clean}", "{tmp}/x.npy", "--task", "denoise"], "unknown degradation task 'denoise'"),
    (["degrade", "{tmp}/missing.npy", "{tmp}/x.npy", "--task", "gaussian"], "missing.npy: no such file"),
    (["degrade", "{clean}", "{clean}", "--task", "gaussian"], "would overwrite the clean input"),
    (["degrade", "{clean}", "{tmp}/x.xyz", "--task", "gaussian"], "x.xyz: cannot save"),
    (["metrics", "--ref", "{clean}", "--est", "{lr}"], "looks like an sr4 (low-resolution) observation"),
    (["metrics", "--ref", "{clean}", "--est", "{bands}"], "the shapes (H×W×bands) differ"),
])
def test_bad_input_gives_one_line_and_exit_2(argv: list[str], message: str, clean_file: Path, small_cube: Cube,
                                             tmp_path: Path, capsys) -> None:
    lr = save(Cube(small_cube.data[::4, ::4]), tmp_path / "lr.npy")
    bands = save(Cube(small_cube.data[..., :30]), tmp_path / "bands.npy")
    args = [a.format(clean=clean_file, tmp=tmp_path, lr=lr, bands=bands) for a in argv]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.npy").exists() and not list(tmp_path.glob(".*tmp*"))


@pytest.mark.data
@pytest.mark.slow
def test_kaist_gaussian_is_reproducible_with_protocol_psnr(tmp_path: Path, capsys) -> None:
    scene = shared_file("kaist", "scene01.mat")
    first, second = tmp_path / "a.mat", tmp_path / "b.mat"
    for out in (first, second):
        assert main(["degrade", str(scene), str(out), "--task", "gaussian", "--seed", "0"]) == 0
    capsys.readouterr()
    np.testing.assert_array_equal(load(first).data, load(second).data)
    code, result, _ = _run(capsys, "metrics", "--ref", str(scene), "--est", str(first))
    assert code == 0
    # σ_b ~ U(10, 70)/255 gives per-band PSNRs of 11–31 dB whose mean is ≈17.1 dB in expectation.
    assert 15.5 < result["psnr"] < 19.0
    assert 11.0 < min(result["psnr_per_band"]) and max(result["psnr_per_band"]) < 31.5
    assert 0.0 < result["ssim"] < 0.5 and 20.0 < result["sam"] < 80.0
