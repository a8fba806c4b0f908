"""The GUI and the CLI are two faces of one pipeline: same stage code, same config, same results."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import band_agnostic_checkpoint

from hiralign.cube import Cube

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]

WL31 = np.arange(400, 701, 10.0)


def _tiny_checkpoint(folder, bands=31, wavelengths=WL31):
    import torch

    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint

    torch.manual_seed(0)
    model = build_model("compact", bands, 1, features=8, depth=2)
    return save_checkpoint(model, folder, CheckpointConfig(arch="compact", task="gaussian", bands=bands,
                                                          wavelengths=tuple(wavelengths),
                                                          args={"features": 8, "depth": 2}))


@pytest.fixture
def window(qtbot, tmp_path, one_thread):
    from app.main_window import MainWindow
    from app.settings import Preferences

    win = MainWindow(Preferences.at(tmp_path / "prefs.ini"))
    qtbot.addWidget(win)
    win.runner.work_dir = tmp_path / "gui-runs"
    win.show()
    win.pipeline.device_box.setCurrentText("cpu")
    yield win
    win.close()


def _demo_crops(folder, scenes=2, side=40):
    """The first demo scenes, cropped to ``side``² and saved as ENVI files (observed + clean)."""
    from app.demo import DEMO_DIR, load_demo
    from hiralign import io

    demo = load_demo(DEMO_DIR)
    out = []
    for item in demo.targets[:scenes]:
        name = item.path.stem
        observed = io.save(item.degraded.with_data(item.degraded.data[:side, :side]), folder / f"{name}.hdr")
        clean = io.save(item.clean.with_data(item.clean.data[:side, :side]), folder / f"{name}_clean.hdr")
        out.append((observed, clean))
    return demo.task, out


def _run_all(qtbot, window, timeout=120000):
    ended = []
    window.runner.stage_ended.connect(lambda stage, state: ended.append((stage, state)))
    window.pipeline.run_all_button.click()
    qtbot.waitUntil(lambda: (len(ended) == 5 and not window.runner.busy)
                    or any(state != "finished" for _, state in ended), timeout=timeout)
    return ended


def _arrays(folder, pattern):
    from hiralign import io

    files = sorted(folder.glob(pattern))
    return {p.name: (io.load_rgb(p) if p.suffix == ".png" else io.load(p).data) for p in files}


def test_run_all_in_the_window_and_adapt_from_its_exported_config_write_identical_run_folders(
        qtbot, window, tmp_path):
    """The Done-when test of one pipeline under both faces (demo scenes, cropped, tiny budget)."""
    from safetensors.torch import load_file

    from hiralign import io
    from hiralign.cli import main
    from hiralign.generate import settings_class
    from hiralign.launch import script_arguments
    from hiralign.warp import WarpConfig

    task, files = _demo_crops(tmp_path)
    for observed, clean in files:
        window.session.add_target(io.load(observed), observed, clean=io.load(clean), clean_path=clean)
    panel = window.pipeline
    panel.task_box.setCurrentText(task)
    panel.set_source_model(_tiny_checkpoint(tmp_path / "source"))
    panel.generator_box.setCurrentText("classic")
    panel.generator_config = settings_class("classic")(max_rotation_deg=5.0)
    panel.warp_config = WarpConfig(iterations=4, index="exact", preview_every=2)
    panel.guides_spin.setValue(1)
    panel.steps_spin.setValue(3)
    panel.seed_spin.setValue(3)  # target i is seeded 3 + 7919·i in both faces
    chain = ("proxy", "generate", "warp", "finetune", "evaluate")
    assert _run_all(qtbot, window) == [(s, "finished") for s in chain], window.errors.history
    gui = window.runner.run_folder.root

    from app.run_config import export_run_config

    script = export_run_config(window.session, panel.config(), tmp_path / "export", str(tmp_path / "cli-run"),
                               launcher="none", processes=1)
    assert main(script_arguments(script)) == 0
    cli = tmp_path / "cli-run"

    for pattern in ("proxies/*.hdr", "proxies/*.png", "guides/*.png", "synth/*.hdr", "restored/*.hdr"):
        mine, theirs = _arrays(gui, pattern), _arrays(cli, pattern)
        assert mine.keys() == theirs.keys() and mine, pattern
        for name in mine:
            np.testing.assert_array_equal(mine[name], theirs[name], err_msg=f"{pattern}: {name}")
    weights_gui, weights_cli = (load_file(str(f / "checkpoint" / "model.safetensors")) for f in (gui, cli))
    assert weights_gui.keys() == weights_cli.keys()
    for key in weights_gui:
        assert np.array_equal(weights_gui[key].numpy(), weights_cli[key].numpy()), key
    source = load_file(str(tmp_path / "source" / "model.safetensors"))
    assert any(not np.array_equal(source[k].numpy(), weights_gui[k].numpy()) for k in source)  # it trained
    metrics = [json.loads((f / "report.json").read_text())["metrics"] for f in (gui, cli)]
    assert metrics[0] == metrics[1] and len(metrics[0]["per_image"]["adapted"]) == 2
    settings = [json.loads((f / "config.json").read_text())["settings"] for f in (gui, cli)]
    assert settings[0] == settings[1]
    assert json.loads((gui / "warp.json").read_text()).keys() == json.loads((cli / "warp.json").read_text()).keys()


def _counts_capture(path, side=40, bands=8):
    """A uint16 ENVI capture of 10-bit-like counts with Poisson–Gaussian noise (var = 0.2·μ + 6)."""
    from scipy.ndimage import gaussian_filter

    from hiralign import io

    rng = np.random.default_rng(5)
    clean = gaussian_filter(rng.random((side, side, bands)), sigma=(3, 3, 1.5))
    clean = 20 + 230 * (clean - clean.min()) / (clean.max() - clean.min())
    noisy = np.clip(np.round(clean + rng.normal(size=clean.shape) * np.sqrt(0.2 * clean + 6)), 0, 1023)
    cube = Cube((noisy / 65535).astype(np.float32), wavelengths=np.linspace(480, 620, bands), name=path.stem)
    return io.save(cube, path, dtype="uint16")


def test_a_sensor_run_in_the_window_restores_the_same_counts_as_adapt(qtbot, window, tmp_path):
    """Both faces: one intensity scale and noise model, restored counts identical, quality in the session."""
    from hiralign import io
    from hiralign.cli import main
    from hiralign.launch import script_arguments
    from hiralign.warp import WarpConfig

    path = _counts_capture(tmp_path / "capture.hdr")
    window.session.add_target(io.load(path), path)
    panel = window.pipeline
    panel.task_box.setCurrentText("sensor")
    panel.set_source_model(band_agnostic_checkpoint(tmp_path / "sensor-any", "sensor"))
    panel.generator_box.setCurrentText("classic")
    panel.warp_config = WarpConfig(iterations=4, index="exact", preview_every=2)
    panel.guides_spin.setValue(1)
    panel.steps_spin.setValue(3)
    assert _run_all(qtbot, window) == [(s, "finished") for s in ("proxy", "generate", "warp", "finetune",
                                                                  "evaluate")], window.errors.history
    gui = window.runner.run_folder.root
    target = window.session.targets[0]
    assert target.quality is not None and target.quality["units"] == "counts"
    # the proxy trains on the network's scale (peak near 1) but is shown on the capture's (counts)
    assert 0.5 < np.percentile(target.proxy.data, 99.9) < 1.5
    shown, observed = np.percentile(target.layer("proxy").data, 99), np.percentile(target.degraded.data, 99)
    assert abs(shown / observed - 1) < 0.2

    from app.run_config import export_run_config

    script = export_run_config(window.session, panel.config(), tmp_path / "export", str(tmp_path / "cli-run"),
                               launcher="none", processes=1)
    assert main(script_arguments(script)) == 0
    cli = tmp_path / "cli-run"
    for name in ("intensity.json", "noise.json"):
        assert json.loads((gui / name).read_text()) == json.loads((cli / name).read_text()), name
    mine, theirs = io.load(gui / "restored" / "capture.hdr"), io.load(cli / "restored" / "capture.hdr")
    assert mine.metadata["dtype"] == theirs.metadata["dtype"] == "uint16"
    np.testing.assert_array_equal(mine.data, theirs.data)
    np.testing.assert_array_equal(target.restored.data, theirs.data)  # what the window shows
    reports = [json.loads((f / "report.json").read_text()) for f in (gui, cli)]
    assert reports[0]["quality"] == reports[1]["quality"] == {"capture": target.quality}


def _imec_like(tmp_path, real):
    """A 16-band target file: a crop of the IMEC VIS capture when present, else synthetic."""
    from scipy.ndimage import gaussian_filter

    from hiralign import io

    if real:
        from conftest import shared_file

        cube = io.load(shared_file("envi", "VIS_leaves_FD1_FN0_original.hdr"))
        crop = cube.with_data(np.clip(cube.data[:32, :32] / max(float(cube.data[:32, :32].max()), 1e-6), 0, 1))
        return io.save(crop, tmp_path / "imec_crop.hdr")
    rng = np.random.default_rng(7)
    data = gaussian_filter(rng.random((32, 32, 16)), sigma=(2, 2, 1)).astype(np.float32)
    return io.save(Cube(data, wavelengths=np.linspace(470, 630, 16), name="imec"), tmp_path / "imec_like.hdr")


@pytest.mark.parametrize("real", [False, True], ids=["synthetic", "imec-crop"])
def test_a_16_band_target_goes_through_proxy_in_the_window_exactly_as_in_the_cli(qtbot, window, tmp_path, real):
    from hiralign import io

    # `hiralign proxy` restores with the model alone; the window's Proxy is adapt's stage 1, with the
    # same source when the proxy box says so
    from hiralign.bands import resample_bands
    from hiralign.cli import main

    path = _imec_like(tmp_path, real)
    ckpt = _tiny_checkpoint(tmp_path / "source31")
    window.session.add_target(io.load(path), path)
    window.pipeline.set_source_model(ckpt)
    window.pipeline.proxy_box.setCurrentText("model")
    with qtbot.waitSignal(window.runner.stage_ended, timeout=60000) as blocker:
        window.pipeline.buttons["proxy"].click()
    assert blocker.args == ["proxy", "finished"], window.errors.history
    target = window.session.targets[0]
    assert target.degraded.n_bands == 16 and target.proxy.n_bands == 31  # restored on the model's bands

    assert main(["proxy", str(path), "--model", str(ckpt), "--out", str(tmp_path / "cli"), "--device", "cpu"]) == 0
    cli = io.load(tmp_path / "cli" / f"{path.stem}.hdr")  # `hiralign proxy` maps back onto the 16 bands
    np.testing.assert_array_equal(resample_bands(target.proxy, target.wavelengths).data, cli.data)
    np.testing.assert_array_equal(target.layer("proxy").data, cli.data)  # what the window shows
    run = window.runner.run_folder
    np.testing.assert_array_equal(io.load(run.proxy(path.stem)).data, target.proxy.data)


def test_run_all_with_an_unavailable_generator_and_device_reports_both_before_touching_results(
        qtbot, window, tmp_path):
    import torch

    from hiralign import io
    from hiralign.generate.unclip_weights import weights_available

    if weights_available():
        pytest.skip("unCLIP weights are present on this machine")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the device cannot be made unavailable")
    path = _imec_like(tmp_path, real=False)
    window.session.add_target(io.load(path), path)
    panel = window.pipeline
    panel.set_source_model(_tiny_checkpoint(tmp_path / "source31"))
    with qtbot.waitSignal(window.runner.stage_ended, timeout=60000):
        panel.buttons["proxy"].click()
    target = window.session.targets[0]
    proxy, folder = target.proxy, window.runner.run_folder.root
    files = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    runs = set(window.runner.work_dir.iterdir())

    panel.generator_box.setCurrentText("unclip")
    panel.device_box.setCurrentText("cuda")
    with qtbot.waitSignal(window.runner.stage_ended, timeout=60000) as blocker:
        panel.run_all_button.click()
    assert blocker.args == ["proxy", "failed"]
    qtbot.waitUntil(lambda: bool(window.errors.history))
    message = window.errors.history[-1][0]
    assert "2 problems" in message and "generator unclip" in message and "cuda" in message
    assert target.proxy is proxy and window.session.targets[0].guides == []
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} == files
    assert set(window.runner.work_dir.iterdir()) == runs  # no new run folder was made either
    window.errors.close_all()
