"""Real-capture runs through the one pipeline: intensity scale, the sensor's own noise, quality report."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import band_agnostic_checkpoint
from scipy.ndimage import gaussian_filter

from hiralign import io
from hiralign.cli import main
from hiralign.cube import Cube

BANDS = 8
WL = np.linspace(480.0, 620.0, BANDS)
#: Poisson–Gaussian noise of the synthetic captures, counts: var = A·μ + B (like the IMEC captures).
A, B = 0.2, 6.0


def _counts_capture(path: Path, seed: int = 0, side: int = 40, peak: float = 250.0) -> Path:
    """A smooth scene as 10-bit-like counts (peak ``peak``) with Poisson–Gaussian noise, stored as uint16 ENVI."""
    rng = np.random.default_rng(seed)
    clean = gaussian_filter(rng.random((side, side, BANDS)), sigma=(3, 3, 1.5))
    clean = 20 + (peak - 20) * (clean - clean.min()) / (clean.max() - clean.min())
    noisy = np.clip(np.round(clean + rng.normal(size=clean.shape) * np.sqrt(A * clean + B)), 0, 1023)
    cube = Cube((noisy / 65535).astype(np.float32), wavelengths=WL, name=path.stem)
    return io.save(cube, path, dtype="uint16")


def _adapt(target: Path, model: Path, out: Path, task: str = "sensor") -> list[str]:
    return ["adapt", "--target", str(target), "--task", task, "--model", str(model), "--out", str(out),
            "--mode", "proxy-only", "--steps", "3", "--batch-size", "2", "--patch-size", "16", "--tile", "32",
            "--overlap", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def sensor_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("sensor")
    target = _counts_capture(root / "capture.hdr")
    model = band_agnostic_checkpoint(root / "sensor-any", "sensor")
    run = root / "run"
    assert main(_adapt(target, model, run)) == 0
    return {"root": root, "target": target, "model": model, "run": run}


def test_a_sensor_run_stores_its_scale_and_noise_and_restores_counts_like_the_input(sensor_run):
    run, target = sensor_run["run"], io.load(sensor_run["target"])
    from hiralign.intensity import IntensityScale
    from hiralign.noise import NoiseModel

    scale = IntensityScale.from_dict(json.loads((run / "intensity.json").read_text()))
    noise = NoiseModel.from_dict(json.loads((run / "noise.json").read_text()))
    assert scale.mode == "cube" and 150 / 65535 < scale.values[0] < 260 / 65535  # the robust peak, loaded units
    assert noise.units == "counts" and noise.n_bands == BANDS
    assert np.median(noise.a) == pytest.approx(A, rel=0.5) and np.median(noise.sigma) > 2  # the capture's own noise
    # the proxy is on the network's normalised scale (peak near 1), not the capture's (peak 0.004)
    proxy = io.load(run / "proxies" / "capture.hdr")
    assert 0.5 < np.percentile(proxy.data, 99.9) < 1.5
    restored = io.load(run / "restored" / "capture.hdr")
    assert restored.shape == target.shape
    np.testing.assert_allclose(restored.wavelengths, target.wavelengths)
    assert restored.metadata["dtype"] == "uint16"  # counts stay counts
    counts = restored.data.astype(np.float64) * 65535
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-2)
    assert counts.min() >= 0 and counts.max() < 1023 and abs(counts.mean() / (target.data.mean() * 65535) - 1) < 0.2
    report = json.loads((run / "report.json").read_text())
    assert report["intensity"] == scale.to_dict() and report["noise"]["a"] == list(noise.a)
    quality = report["quality"]["capture"]
    assert quality["units"] == "counts" and len(quality["noise"]["sigma_before"]) == BANDS
    assert quality["seams"]["tile"] == 32 and quality["spectra"]["max_abs_drift_percent"] is not None


def test_a_resumed_sensor_run_reads_the_stored_scale_and_noise(sensor_run, monkeypatch):
    import shutil

    import hiralign.intensity
    import hiralign.noise

    copy = sensor_run["root"] / "resumed"
    shutil.copytree(sensor_run["run"], copy)
    shutil.rmtree(copy / "restored")
    (copy / "report.json").unlink()
    stored = json.loads((copy / "intensity.json").read_text())
    stored["values"] = [2 * v for v in stored["values"]]  # a marker: only a read-back scale has it
    (copy / "intensity.json").write_text(json.dumps(stored))

    def refuse(*args, **kwargs):
        raise AssertionError("a resumed run must not estimate its scale or noise again")

    monkeypatch.setattr(hiralign.noise, "estimate_noise", refuse)
    monkeypatch.setattr(hiralign.intensity, "scale_for_task", refuse)
    assert main(_adapt(sensor_run["target"], sensor_run["model"], copy)) == 0
    report = json.loads((copy / "report.json").read_text())
    assert report["resumed"] and report["intensity"]["values"] == stored["values"]
    assert report["noise"] == json.loads((copy / "noise.json").read_text())
    assert (copy / "restored" / "capture.hdr").is_file()


def test_dark_data_with_a_protocol_task_is_normalised_with_the_warning_recorded(tmp_path, capsys):
    target = _counts_capture(tmp_path / "dark.hdr")
    model = band_agnostic_checkpoint(tmp_path / "gaussian-any", "gaussian")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(_adapt(target, model, tmp_path / "run", task="gaussian")) == 0
    assert any("intensity" in str(w.message) and "full scale" in str(w.message) for w in caught)
    stored = json.loads((tmp_path / "run" / "intensity.json").read_text())
    assert stored["mode"] == "cube" and stored["warnings"] and "full scale" in stored["reason"]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["warnings"] == stored["warnings"] and "noise" not in (report["noise"] or {})
    assert not (tmp_path / "run" / "noise.json").exists()
    err = capsys.readouterr().err
    assert "warning: intensity" in err and "noise σ" in err  # the CLI prints the quality summary


def test_preflight_refuses_a_sensor_run_it_cannot_do(tmp_path):
    from hiralign.config import AdaptConfig
    from hiralign.errors import PreflightError
    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint
    from hiralign.stages import preflight

    fixed = save_checkpoint(build_model("compact", BANDS + 2, 1, features=8, depth=2), tmp_path / "fixed",
                            CheckpointConfig(arch="compact", task="sensor", bands=BANDS + 2,
                                             wavelengths=tuple(np.linspace(450, 650, BANDS + 2)),
                                             args={"features": 8, "depth": 2}))
    rng = np.random.default_rng(0)
    a = Cube(rng.random((20, 20, BANDS), dtype=np.float32), wavelengths=WL, name="a")
    b = Cube(rng.random((4, 20, BANDS + 1), dtype=np.float32), wavelengths=np.linspace(480, 620, BANDS + 1), name="b")
    with pytest.raises(PreflightError) as info:
        preflight(AdaptConfig(task="sensor", model=str(fixed)), [a, b], ["proxy", "finetune", "restore"],
                  device="cpu")
    message = str(info.value)
    assert "a: the sensor task needs a band-agnostic model" in message
    assert "b: 4×20 pixels are too few" in message and "one band count" in message


def test_degrade_sensor_draws_from_a_noise_file_and_checks_its_task(tmp_path, capsys):
    from hiralign.commands.degrade import ALL_TASK_NAMES, TASK_NAMES
    from hiralign.degrade import ALL_TASKS
    from hiralign.noise import NoiseModel, estimate_noise

    assert ALL_TASK_NAMES == ALL_TASKS and TASK_NAMES + ("sensor",) == ALL_TASKS
    side = 96
    yy, xx = np.mgrid[:side, :side] / side
    clean = 30 + 200 * (0.5 + 0.5 * np.sin(3 * xx + 2 * yy))[..., None] * np.linspace(0.6, 1.0, BANDS)
    clean_file = io.save(Cube((np.round(clean) / 65535).astype(np.float32), wavelengths=WL, name="clean"),
                         tmp_path / "clean.hdr", dtype="uint16")
    model = NoiseModel(sigma=(4.0,) * BANDS, a=(0.3,) * BANDS, b=(8.0,) * BANDS, mean=(100.0,) * BANDS,
                       scale=(65535.0,) * BANDS, units="counts")
    (tmp_path / "noise.json").write_text(json.dumps(model.to_dict()))
    out = tmp_path / "noisy.hdr"
    assert main(["degrade", str(clean_file), str(out), "--task", "sensor", "--noise", str(tmp_path / "noise.json"),
                 "--dtype", "input"]) == 0
    noisy = io.load(out)
    assert noisy.metadata["dtype"] == "uint16"
    fitted = estimate_noise(noisy)
    assert np.median(fitted.a) == pytest.approx(0.3, rel=0.25) and np.median(fitted.b) == pytest.approx(8, rel=0.6)
    capsys.readouterr()
    assert main(["degrade", str(clean_file), str(tmp_path / "g.hdr"), "--task", "gaussian", "--noise",
                 str(tmp_path / "noise.json")]) == 2
    assert "sensor task only" in capsys.readouterr().err


def test_the_default_model_is_band_agnostic_for_sensor_runs_and_off_grid_targets(tmp_path, monkeypatch):
    import hiralign.resources
    from hiralign.config import AdaptConfig, default_model_folder
    from hiralign.errors import ModelError
    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint

    models = tmp_path / "models"
    wl31 = tuple(np.arange(400, 701, 10.0))
    save_checkpoint(build_model("compact", 31, 1, features=8, depth=2), models / "gaussian",
                    CheckpointConfig(arch="compact", task="gaussian", bands=31, wavelengths=wl31,
                                     args={"features": 8, "depth": 2}))
    band_agnostic_checkpoint(models / "gaussian-any", "gaussian")
    band_agnostic_checkpoint(models / "sensor-any", "sensor")
    monkeypatch.setattr(hiralign.resources, "resources_dir", lambda: tmp_path)
    on_grid = Cube(np.zeros((4, 4, 31), np.float32), wavelengths=np.array(wl31), name="cave")
    imec = Cube(np.zeros((4, 4, BANDS), np.float32), wavelengths=WL, name="imec")
    assert default_model_folder("gaussian", [on_grid]) == models / "gaussian"
    assert default_model_folder("gaussian", [on_grid, imec]) == models / "gaussian-any"
    assert default_model_folder("gaussian") == models / "gaussian"
    assert default_model_folder("sensor", [on_grid]) == models / "sensor-any"
    assert AdaptConfig(task="sensor").model_folder([imec]) == models / "sensor-any"
    with pytest.raises(ModelError, match="pass --model"):
        default_model_folder("complex", [imec])


def test_proxy_restores_a_many_band_cube_on_its_own_bands_and_scale(tmp_path, caplog, capsys):
    """A band-agnostic model: 72 bands in, 72 out, no resampling; a dark reflectance cube comes back on its scale."""
    import logging

    rng = np.random.default_rng(3)
    wl = np.linspace(380, 1050, 72)
    data = 0.2 * gaussian_filter(rng.random((24, 24, 72)), sigma=(2, 2, 3))  # peak ≈ 0.1: normalised, with a warning
    path = io.save(Cube(data.astype(np.float32), wavelengths=wl, name="muufl_like"), tmp_path / "muufl_like.hdr")
    model = band_agnostic_checkpoint(tmp_path / "gaussian-any", "gaussian")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["proxy", str(path), "--model", str(model), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    messages = [r.getMessage() for r in caplog.records] + [str(w.message) for w in caught]
    assert not any("resampl" in m for m in messages) and any("intensity" in m for m in messages)
    report = json.loads(capsys.readouterr().out)
    assert report["proxies"][0]["shape"] == [24, 24, 72] and report["proxies"][0]["intensity"]["mode"] == "cube"
    proxy = io.load(tmp_path / "out" / "muufl_like.hdr")
    np.testing.assert_allclose(proxy.wavelengths, wl)
    # the tiny model starts as the identity: on the input's scale again, not the normalised one
    np.testing.assert_allclose(proxy.data, data, rtol=1e-4, atol=1e-6)


def test_the_proxy_source_is_recorded_and_an_unavailable_bm4d_is_refused_up_front(tmp_path, monkeypatch):
    from hiralign import ensemble

    target = _counts_capture(tmp_path / "capture.hdr")
    model = band_agnostic_checkpoint(tmp_path / "sensor-any", "sensor")
    assert main(_adapt(target, model, tmp_path / "plain") + ["--proxy-source", "model"]) == 0
    config = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert config["settings"]["proxy"]["source"] == "model"
    assert json.loads((tmp_path / "plain" / "report.json").read_text())["proxy_source"] == "model"
    # asking for BM4D without it installed is refused before anything is written
    monkeypatch.setattr(ensemble, "bm4d_available", lambda: False)
    code = main(_adapt(target, model, tmp_path / "refused") + ["--proxy-source", "bm4d"])
    assert code != 0 and not (tmp_path / "refused" / "proxies").exists()


@pytest.mark.parametrize("source", ["auto", "blend-bm4d"])
def test_a_sensor_run_makes_classical_proxies_on_the_stabilised_capture(tmp_path, source):
    from hiralign.ensemble import ProxyConfig, make_proxy
    from hiralign.intensity import IntensityScale
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.noise import NoiseModel
    from hiralign.proxy import TileConfig
    from hiralign.stages import RunScale, normalised

    if source == "blend-bm4d":
        pytest.importorskip("bm4d")
        extra, config, resolved = (["--proxy-source", "blend", "--proxy-classical", "bm4d", "--proxy-transforms", "2"],
                                   ProxyConfig("blend", classical="bm4d", transforms=2), "blend")
    else:
        extra, config, resolved = [], ProxyConfig("blend"), "blend"
    target = _counts_capture(tmp_path / "capture.hdr", side=48)
    model = band_agnostic_checkpoint(tmp_path / "sensor-any", "sensor")
    run = tmp_path / "run"
    assert main(_adapt(target, model, run) + extra) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["proxy_source"] == resolved
    proxy = io.load(run / "proxies" / "capture.hdr")
    # the stored proxy is exactly the configured source applied to the normalised capture with the run's noise model
    scale = RunScale(IntensityScale.from_dict(json.loads((run / "intensity.json").read_text())),
                     NoiseModel.from_dict(json.loads((run / "noise.json").read_text())))
    net, _ = load_checkpoint(model, "cpu")
    expected = make_proxy(normalised(io.load(target), scale), config, model=net,
                          tiles=TileConfig(tile=32, overlap=8), noise=scale.train_noise)
    np.testing.assert_allclose(proxy.data, expected.data, atol=2e-3)


def _gaussian_target_and_model(folder: Path, seed: int) -> tuple[Path, Path]:
    """A 40² smooth 8-band target with white noise (σ 0.05) and a tiny band-agnostic gaussian model."""
    rng = np.random.default_rng(seed)
    clean = gaussian_filter(rng.random((40, 40, BANDS)), sigma=(3, 3, 1.5))
    clean = 0.1 + 0.8 * (clean - clean.min()) / np.ptp(clean)
    target = io.save(Cube((clean + rng.normal(size=clean.shape) * 0.05).astype(np.float32), wavelengths=WL,
                          name="t"), folder / "t.hdr")
    return target, band_agnostic_checkpoint(folder / "gaussian-any", "gaussian")


def test_the_restoration_fuses_classical_proxies_with_the_network_unless_told_not_to(tmp_path):
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.proxy import TileConfig
    from hiralign.stages import restore_target

    target, model = _gaussian_target_and_model(tmp_path, seed=3)
    reports = {}
    for fuse in ("0.75", "0"):
        run = tmp_path / f"run{fuse}"
        assert main(_adapt(target, model, run, task="gaussian") + ["--fuse-proxies", fuse]) == 0
        reports[fuse] = json.loads((run / "report.json").read_text())
        net, ckpt = load_checkpoint(run / "checkpoint", "cpu")
        network = restore_target(net, ckpt, io.load(target), tiles=TileConfig(tile=32, overlap=8), device="cpu",
                                 transforms=8)  # the default 8-view restoration
        proxy = io.load(run / "proxies" / "t.hdr").data
        expected = float(fuse) * proxy + (1 - float(fuse)) * network.data
        np.testing.assert_allclose(io.load(run / "restored" / "t.hdr").data, expected, atol=1e-5)
    assert reports["0.75"]["proxy_source"] == "subspace" and reports["0.75"]["fused_proxy_weight"] == 0.75
    assert reports["0"]["fused_proxy_weight"] == 0.0


def test_restore_transforms_average_the_networks_dihedral_views(tmp_path):
    from hiralign.ensemble import ensemble_restore
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.proxy import TileConfig

    target, model = _gaussian_target_and_model(tmp_path, seed=4)
    run = tmp_path / "run"
    # model proxies: the restoration is the network's, here the mean of its 4 quarter-turn views
    assert main(_adapt(target, model, run, task="gaussian") + ["--proxy-source", "model", "--restore-transforms",
                                                               "4"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert json.loads((run / "config.json").read_text())["settings"]["restore_transforms"] == 4
    assert report["fused_proxy_weight"] == 0.0
    net, _ = load_checkpoint(run / "checkpoint", "cpu")
    expected = ensemble_restore(net, io.load(target), transforms=4, tiles=TileConfig(tile=32, overlap=8))
    restored = io.load(run / "restored" / "t.hdr").data
    np.testing.assert_allclose(restored, expected.data, atol=1e-5)
    single = ensemble_restore(net, io.load(target), transforms=1, tiles=TileConfig(tile=32, overlap=8))
    assert np.abs(restored - single.data).max() > 1e-4  # the views differ: the average is not one pass
    assert main(_adapt(target, model, tmp_path / "bad", task="gaussian") + ["--restore-transforms", "9"]) == 2
