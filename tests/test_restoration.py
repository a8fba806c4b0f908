"""New captures restored with an adapted checkpoint's recorded recipe (hiralign.restoration, hiralign restore)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hiralign import io
from hiralign.config import AdaptConfig
from hiralign.cube import Cube
from hiralign.errors import ModelError
from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint
from hiralign.models.compact import compact
from hiralign.proxy import TileConfig
from hiralign.restoration import Recipe, capture_noise, restore_capture

WAVELENGTHS = np.arange(400, 701, 10.0)


def _noise(bands: int, a: float, b: float):
    from hiralign.noise import NoiseModel

    return NoiseModel(sigma=(float(np.sqrt(b)),) * bands, a=(a,) * bands, b=(b,) * bands, mean=(0.5,) * bands,
                      scale=(1.0,) * bands)


def _noisy(side: int = 32, seed: int = 0) -> Cube:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    spectra = np.stack([np.linspace(0.2, 0.8, 31), np.linspace(0.7, 0.3, 31)])
    weights = np.stack([0.5 + 0.4 * np.sin(6 * xx), 0.5 + 0.4 * np.cos(5 * yy)], -1)
    data = weights @ spectra / 1.2 + rng.normal(0, 0.05, (side, side, 31))
    return Cube(data.astype(np.float32), wavelengths=WAVELENGTHS, name="capture")


def _checkpoint(folder: Path, task: str = "gaussian", settings: dict | None = None,
                noise: dict | None = None) -> Path:
    torch.manual_seed(0)
    model = compact(31, features=8, depth=2)
    torch.nn.init.normal_(model.tail.weight, std=0.01)  # a network that is not the identity
    provenance = {"kind": "hiralign-pretrained"} if settings is None else \
        {"kind": "hiralign-adapted", "settings": settings, **({"noise": noise} if noise else {})}
    save_checkpoint(model, folder, CheckpointConfig(arch="compact", task=task, bands=31,
                                                    wavelengths=tuple(WAVELENGTHS),
                                                    args={"features": 8, "depth": 2}), provenance)
    return folder


def test_the_recipe_is_what_adapt_restored_its_targets_with() -> None:
    gaussian = Recipe.from_provenance({"kind": "hiralign-adapted", "settings": AdaptConfig(task="gaussian").to_dict()},
                                      "gaussian")
    assert (gaussian.proxy.source, gaussian.fuse, gaussian.classical) == ("subspace", 1.0, "subspace")
    assert not gaussian.network_needed and gaussian.describe().startswith("the subspace denoiser (the run")
    sr4 = Recipe.from_provenance({"kind": "hiralign-adapted", "settings": AdaptConfig(task="sr4").to_dict()}, "sr4", 4)
    assert (sr4.classical, sr4.fuse, sr4.transforms) == (None, 0.0, 8)
    assert "8 dihedral views" in sr4.describe()
    source = Recipe.from_provenance({"kind": "hiralign-pretrained"}, "gaussian")
    assert (source.classical, source.transforms, source.adapted) == (None, 1, False)
    with pytest.raises(ModelError, match="ckpt: its recorded settings are unusable"):
        Recipe.from_provenance({"kind": "hiralign-adapted", "settings": {"task": "gaussian", "fuse_proxies": 7}},
                               "gaussian", where="ckpt")


def test_fuse_one_is_the_denoiser_and_a_fused_recipe_mixes_in_the_network(tmp_path: Path) -> None:
    from hiralign.classical import subspace_denoise
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.proxy import restore_cube

    capture = _noisy()
    folder = _checkpoint(tmp_path / "ckpt", settings=AdaptConfig(task="gaussian").to_dict())
    model, ckpt = load_checkpoint(folder)
    recipe = Recipe.from_checkpoint(folder, ckpt)
    denoised = subspace_denoise(capture)
    restored = restore_capture(model, ckpt, capture, recipe, tiles=TileConfig())
    np.testing.assert_allclose(restored.data, denoised.data, atol=1e-6)
    np.testing.assert_array_equal(restored.wavelengths, capture.wavelengths)
    half = Recipe(**{**recipe.__dict__, "fuse": 0.5, "transforms": 1})
    network = restore_cube(model, capture)
    assert np.abs(network.data - denoised.data).max() > 1e-3  # the two parts differ, so the mix is visible
    mixed = restore_capture(model, ckpt, capture, half, tiles=TileConfig())
    np.testing.assert_allclose(mixed.data, 0.5 * denoised.data + 0.5 * network.data, atol=1e-5)
    alone = restore_capture(model, ckpt, capture, Recipe.network_only("gaussian"), tiles=TileConfig())
    np.testing.assert_allclose(alone.data, network.data, atol=1e-6)


def test_a_dark_capture_is_restored_on_its_own_scale_and_range(tmp_path: Path) -> None:
    from hiralign.classical import subspace_denoise
    from hiralign.models.checkpoint import load_checkpoint

    bright = _noisy(seed=1)
    dark = bright.with_data(bright.data * 0.01)
    folder = _checkpoint(tmp_path / "ckpt", settings=AdaptConfig(task="gaussian").to_dict())
    model, ckpt = load_checkpoint(folder)
    restored = restore_capture(model, ckpt, dark, Recipe.from_checkpoint(folder, ckpt), tiles=TileConfig())
    assert 0.003 < float(np.percentile(restored.data, 99)) < 0.02  # back on the capture's scale
    # the denoiser saw the capture divided by its robust peak, as adapt's network does
    assert np.corrcoef(restored.data.ravel(), subspace_denoise(bright).data.ravel())[0, 1] > 0.99


def test_a_sensor_recipe_uses_the_recorded_noise_model_or_estimates_one(tmp_path: Path) -> None:
    model = _noise(31, 0.001, 1e-4)
    settings = AdaptConfig(task="sensor").to_dict()
    recorded = Recipe.from_provenance({"kind": "hiralign-adapted", "settings": settings, "noise": model.to_dict()},
                                      "sensor")
    assert recorded.proxy.source == "blend" and capture_noise(recorded, []) is recorded.noise
    assert recorded.noise.b == model.b
    missing = Recipe.from_provenance({"kind": "hiralign-adapted", "settings": settings}, "sensor")
    with pytest.warns(UserWarning, match="no sensor noise model"):
        estimated = capture_noise(missing, [_noisy(64)])
    assert estimated.n_bands == 31
    assert capture_noise(Recipe.network_only("gaussian"), [_noisy()]) is None


def test_adapted_provenance_records_the_sensor_noise() -> None:
    from hiralign.noise import NoiseModel
    from hiralign.stages import adapted_provenance

    noise = _noise(4, 2.0, 9.0)
    record = adapted_provenance(AdaptConfig(task="sensor", model="resources/models/sensor-any"), ["a.hdr"],
                                noise=noise)
    assert NoiseModel.from_dict(record["noise"]).a == (2.0,) * 4
    assert "noise" not in adapted_provenance(AdaptConfig(task="gaussian", model="resources/models/gaussian"), [])


def test_the_cli_restores_new_captures_as_the_run_did(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hiralign.classical import subspace_denoise
    from hiralign.cli import main

    folder = _checkpoint(tmp_path / "ckpt", settings=AdaptConfig(task="gaussian").to_dict())
    capture = _noisy()
    path = io.save(capture, tmp_path / "new.hdr")
    assert main(["restore", "--model", str(folder), str(path), "--out", str(tmp_path / "out")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recipe"]["fuse"] == 1.0 and report["restored"][0]["shape"] == [32, 32, 31]
    np.testing.assert_allclose(io.load(tmp_path / "out" / "new.hdr").data, subspace_denoise(capture).data, atol=1e-6)
    assert (tmp_path / "out" / "new_rgb.png").is_file()
    assert main(["restore", "--model", str(folder), str(path), "--out", str(tmp_path / "net"), "--network-only"]) == 0
    assert json.loads(capsys.readouterr().out)["recipe"]["is"] == "the network alone"


def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hiralign.cli import main

    folder = _checkpoint(tmp_path / "ckpt", settings=AdaptConfig(task="gaussian").to_dict())
    good = io.save(_noisy(), tmp_path / "good.hdr")
    broken = tmp_path / "broken.hdr"
    broken.write_text("not an ENVI header\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["restore", "--model", str(folder), str(good), str(broken), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "broken.hdr" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["restore", "--model", str(folder), str(good), "--out", str(tmp_path / "o2"),
                 "--noise", str(tmp_path / "none.json")]) == 2
    assert "none.json" in capsys.readouterr().err


def test_a_noise_model_is_refused_for_a_checkpoint_that_is_not_a_sensor_one(tmp_path: Path) -> None:
    from hiralign.errors import InputError
    from hiralign.restoration import restore_files

    folder = _checkpoint(tmp_path / "ckpt", settings=AdaptConfig(task="gaussian").to_dict())
    good = io.save(_noisy(), tmp_path / "good.hdr")
    with pytest.raises(InputError, match="sensor checkpoints"):
        restore_files(folder, [good], tmp_path / "out", noise=_noise(31, 0.1, 0.1))
    assert not (tmp_path / "out").exists()


def test_evaluate_scores_an_adapted_checkpoint_by_its_recipe(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hiralign.classical import subspace_denoise
    from hiralign.cli import main
    from hiralign.degrade import degrade_cube
    from hiralign.evaluate import score_cube

    folder = _checkpoint(tmp_path / "run" / "checkpoint", settings=AdaptConfig(task="gaussian").to_dict())
    clean = _noisy(seed=3).with_data(np.clip(_noisy(seed=3).data, 0, 1))
    path = io.save(clean, tmp_path / "clean.hdr")
    assert main(["evaluate", "--clean", str(path), "--task", "gaussian", "--model", str(folder)]) == 0
    recipe_row = json.loads(capsys.readouterr().out)["models"][0]
    expected = score_cube(subspace_denoise(degrade_cube(io.load(path), "gaussian", 0)), io.load(path))
    assert recipe_row["label"] == "run (recipe)"
    assert recipe_row["mean"]["psnr"] == pytest.approx(expected.psnr, abs=1e-4)
    assert main(["evaluate", "--clean", str(path), "--task", "gaussian", "--model", str(folder), "--network-only"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["label"] == "run"


def test_a_result_never_overwrites_its_capture(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hiralign.cli import main

    folder = _checkpoint(tmp_path / "ckpt", settings=AdaptConfig(task="gaussian").to_dict())
    capture = io.save(_noisy(), tmp_path / "new.hdr")
    before = capture.with_suffix(".img").read_bytes()
    assert main(["restore", "--model", str(folder), str(capture), "--out", str(tmp_path)]) == 2
    assert "would overwrite the capture" in capsys.readouterr().err
    assert capture.with_suffix(".img").read_bytes() == before


def test_every_envi_data_suffix_counts_as_its_header() -> None:
    """A HySpex capture (scan.hdr + scan.hyspex) is replaced by a result named scan.hdr beside it."""
    from hiralign.restoration import capture_clash

    assert io.would_replace("cap/scan.hyspex", "cap/scan.hdr") and io.would_replace("cap/scan.bin", "cap/scan.hdr")
    assert not io.would_replace("cap/scan.hyspex", "out/scan.hdr")
    assert capture_clash(["cap/scan.hyspex"], "cap") == (Path("cap/scan.hyspex"), Path("cap/scan.hdr"))
    assert capture_clash(["cap/scan.hyspex"], "out") is None
