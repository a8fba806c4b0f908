"""``hiralign info``: JSON summary on stdout, one-line errors with exit code 2, real data shapes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
from bad_inputs import CATALOGUE
from conftest import shared_file

from hiralign import cli
from hiralign.cube import Cube
from hiralign.io import save


@pytest.fixture
def run_info(monkeypatch, capsys):
    """Run ``hiralign info ARGS`` through the real CLI entry; returns (exit code, JSON or None, stderr)."""
    # Only this command's module: the test must not depend on other commands being importable.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("info",))

    def run(*args: str):
        code = cli.main(["info", *map(str, args)])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if out.strip() else None), err

    return run


def test_info_of_a_cube_with_wavelengths(tmp_path, small_cube, run_info):
    path = save(small_cube, tmp_path / "small.hdr")
    code, info, _ = run_info(path)
    assert code == 0
    assert info["shape"] == [32, 40, 31] and info["bands"] == 31
    assert info["dtype"] == "float32" and info["format"] == "ENVI"
    assert info["wavelength_range_nm"] == [400.0, 700.0] and info["wavelength_source"] == "file"
    assert info["rgb_bands"] == [26, 15, 7] and info["rgb_wavelengths_nm"] == [660.0, 550.0, 470.0]
    assert info["value_range"] == [pytest.approx(0.0), pytest.approx(1.0)]
    assert info["nonfinite"] == 0 and info["bad_bands"] == [] and info["scaling"] is None
    assert info["path"] == str(path) and info["name"] == "small"


def test_info_without_wavelengths_and_with_given_ones(tmp_path, run_info):
    data = np.arange(2 * 3 * 16, dtype=np.uint16).reshape(2, 3, 16) * 100
    np.save(tmp_path / "raw.npy", data)
    code, info, _ = run_info(tmp_path / "raw.npy")
    assert code == 0
    assert info["rgb_bands"] is None and info["wavelength_range_nm"] is None
    assert info["dtype"] == "uint16" and info["scaling"] == {"divisor": 65535.0, "reason": "uint16 full scale"}
    assert info["value_range"] == [0.0, pytest.approx(9500 / 65535)]
    code, info, _ = run_info(tmp_path / "raw.npy", "--wavelengths", "470:620:10")
    assert info["wavelength_source"] == "given" and info["rgb_bands"] == [15, 8, 0]


def test_info_31_bands_without_wavelengths_assumes_400_700(tmp_path, run_info):
    scipy.io.savemat(tmp_path / "c.mat", {"NRD": np.zeros((4, 4, 31), np.uint16)})
    code, info, _ = run_info(tmp_path / "c.mat")
    assert code == 0 and info["wavelength_source"] == "assumed" and info["rgb_bands"] == [26, 15, 7]
    assert info["variable"] == "NRD"


def test_info_counts_nonfinite_values(tmp_path, run_info, caplog):
    data = np.ones((3, 3, 4), np.float32)
    data[0, :, 2] = np.nan
    np.save(tmp_path / "nan.npy", data)
    code, info, _ = run_info(tmp_path / "nan.npy")
    assert code == 0 and info["nonfinite"] == 3 and info["value_range"] == [1.0, 1.0]
    code, info, _ = run_info(tmp_path / "nan.npy", "--zero-nonfinite")
    assert info["nonfinite"] == 0 and info["nonfinite_zeroed"] == 3 and info["value_range"] == [0.0, 1.0]
    assert "3 NaN/Inf values in 1 bands replaced by 0" in caplog.text  # logged (stderr outside pytest)


@pytest.mark.parametrize("bad", CATALOGUE, ids=[b.id for b in CATALOGUE])
def test_info_errors_are_one_line_without_traceback(tmp_path, run_info, bad):
    path = bad.make(tmp_path)
    code, info, err = run_info(path)
    if bad.info == "reported":  # info inspects such a file (e.g. counts its NaN) rather than refusing it
        assert code == 0 and info["nonfinite"] > 0
        return
    assert code == 2 and info is None
    assert bad.message in err and path.name in err and "Traceback" not in err
    assert err.strip().count("\n") == 0 and err.startswith("hiralign info: error:")


def test_info_of_a_mat_file_with_several_cubes_lists_them(tmp_path, run_info):
    scipy.io.savemat(tmp_path / "two.mat", {"a": np.zeros((2, 2, 5)), "b": np.zeros((2, 2, 6))})
    code, _, err = run_info(tmp_path / "two.mat")
    assert code == 2 and "a 2×2×5 double" in err and "--var NAME" in err
    code, info, _ = run_info(tmp_path / "two.mat", "--var", "b")
    assert code == 0 and info["shape"] == [2, 2, 6]


def test_info_reports_bad_bands(tmp_path, small_cube, run_info):
    path = save(Cube(small_cube.data, wavelengths=small_cube.wavelengths, bad_bands=(3, 9)), tmp_path / "b.mat")
    assert run_info(path)[1]["bad_bands"] == [3, 9]


# ------------------------------------------------------------------------- real data ("done when")
@pytest.mark.data
@pytest.mark.parametrize("parts", [
    ("cave", "chart_and_stuffed_toy_ms_256.mat"), ("cave", "cloth_ms_256.mat"),
    ("cave", "real_and_fake_apples_ms_256.mat"), ("kaist", "scene01.mat"), ("kaist", "scene02.mat"),
    ("kaist", "scene03.mat"), ("kaist", "scene04.mat"),
])
def test_info_real_31_band_scenes(parts, run_info):
    code, info, _ = run_info(shared_file(*parts))
    assert code == 0 and info["shape"] == [256, 256, 31]
    assert info["rgb_bands"] == [26, 15, 7]  # 400–700 nm assumed (KAIST's own 420–720 would give 24/13/5)


@pytest.mark.data
@pytest.mark.parametrize("parts, shape", [
    (("envi", "RedYellowSet_3_FD1_FN0.hdr"), [256, 512, 16]),
    (("envi", "VIS_leaves_FD1_FN0_original.hdr"), [256, 512, 16]),
    (("envi", "fenix_geology.hdr"), [38, 23, 450]),
])
def test_info_real_envi(parts, shape, run_info, caplog):
    code, info, _ = run_info(shared_file(*parts))
    assert code == 0 and info["shape"] == shape and info["dtype"] == "uint16"
    assert info["wavelength_source"] == "file"
    if "fenix" not in parts[1]:
        assert "errors = {recover}" in caplog.text  # the header oddity is reported, not fatal


@pytest.mark.data
@pytest.mark.parametrize("name, low, high", [
    ("reg_pavia_dataset.mat", 430.0, 860.0), ("salton_sea_roi.mat", 365.9, 2496.3),
    ("aviris_crop_224.mat", 365.9, 2496.3), ("muufl_crop_72.mat", 367.7, 1043.5),
])
def test_info_real_remote_sensing_in_nm(name, low, high, run_info):
    code, info, _ = run_info(shared_file("remote", name))
    assert code == 0
    first, last = info["wavelength_range_nm"]
    assert first == pytest.approx(low, abs=0.1) and last == pytest.approx(high, abs=0.1)
    assert info["rgb_bands"] is not None and info["nonfinite"] == 0


def _checkpoint(folder, provenance, task="gaussian", scale=1):
    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint

    model = build_model("compact", 31, scale, features=8, depth=2)
    config = CheckpointConfig(arch="compact", task=task, bands=31, scale=scale,
                              wavelengths=tuple(np.arange(400, 701, 10.0)), args={"features": 8, "depth": 2})
    return save_checkpoint(model, folder, config, provenance), model


def test_info_of_a_continued_source_checkpoint_names_the_whole_chain(tmp_path, run_info):
    first = {"kind": "source pretraining", "result": {"steps": 800}, "metrics": {"validation_psnr": 24.921}}
    folder, model = _checkpoint(tmp_path / "sr4", {
        "kind": "source pretraining", "result": {"steps": 1600}, "metrics": {"validation_psnr": 25.054},
        "train_config": {"loss": "l2"}, "source": {"config": {"n": 96, "grid": "31"}},
        "init": {"folder": "resources/models/sr4", "steps": 800, "validation_psnr": 24.921, "provenance": first}},
        task="sr4", scale=4)
    code, info, err = run_info(folder)
    assert code == 0, err
    assert (info["arch"], info["task"], info["scale"], info["bands"]) == ("compact", "sr4", 4, 31)
    assert info["wavelengths_nm"] == [400.0, 700.0] and info["band_agnostic"] is False
    assert info["parameters"] == sum(p.numel() for p in model.state_dict().values())
    training = info["pretraining"]
    assert (training["steps"], training["validation_psnr_db"], training["loss"]) == (1600, 25.05, "l2")
    assert training["source_set"] == {"n": 96, "grid": "31"}
    assert training["continued_from"] == [{"folder": "resources/models/sr4", "steps": 800, "validation_psnr_db": 24.92}]
    assert training["total_steps"] == 2400


def test_info_of_a_band_agnostic_checkpoint_says_any_bands(tmp_path, run_info):
    from hiralign.models.summary import summary_line

    folder, _ = _checkpoint(tmp_path / "any", {"kind": "source pretraining", "band_agnostic": True,
                                               "result": {"steps": 300}}, task="sr4", scale=4)
    code, info, err = run_info(folder)
    assert code == 0, err
    assert (info["bands"], info["band_agnostic"], info["wavelengths_nm"]) == ("any", True, None)
    assert info["validation_layout"] == {"bands": 31, "wavelengths_nm": [400.0, 700.0]}
    assert "any bands" in summary_line(info) and "31" not in summary_line(info).split(",")[0]


def test_info_of_an_adapted_checkpoint_says_how_new_captures_are_restored(tmp_path, run_info):
    from hiralign.config import AdaptConfig

    folder, _ = _checkpoint(tmp_path / "run" / "checkpoint", {
        "kind": "hiralign-adapted", "targets": ["/data/a.hdr", "/data/b.hdr"], "mode": "hiralign",
        "settings": AdaptConfig(task="gaussian").to_dict(), "training": {"steps": 400},
        "pairs": {"proxies": 2, "synthesized": 6}, "source_model": "resources/models/gaussian",
        "source_replay": {"weight": 0.33}})
    code, info, err = run_info(folder)
    assert code == 0, err
    adapted = info["adapted"]
    assert adapted["targets"] == ["a.hdr", "b.hdr"] and adapted["steps"] == 400 and adapted["source_replay"] == 0.33
    assert "denoiser" in adapted["restores_new_captures_with"]


def test_info_of_a_damaged_checkpoint_is_one_line_naming_it(tmp_path, run_info):
    folder, _ = _checkpoint(tmp_path / "ckpt", {"kind": "source pretraining"})
    (folder / "config.json").write_text("{not json", encoding="utf-8")
    code, info, err = run_info(folder)
    assert code == 2 and info is None
    assert "config.json" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_adapt_says_when_restored_is_the_proxies_alone(capsys):
    from hiralign.commands.adapt import print_quality, restored_note

    print_quality({"fused_proxy_weight": 1.0, "proxy_source": "subspace"})
    err = capsys.readouterr().err
    assert err.startswith("note: restored/ holds the subspace proxies") and "--network-only" in err
    assert restored_note({"fused_proxy_weight": 0.0, "proxy_source": "ensemble"}) is None  # sr4: the network
    assert restored_note({"fused_proxy_weight": 0.75, "proxy_source": "subspace"}) is None
    assert restored_note({}) is None  # an older report
