"""The real-capture workflow in the window: load-time notes on how the model will treat a
cube (Messages dock and status bar), the core's warnings reaching the dock every time, the
noise estimate plotted from a background job, the sensor task run on an IMEC crop with its
no-reference report, and an ROI's mean spectrum before and after restoration."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import band_agnostic_checkpoint

from hiralign.cube import Cube

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]

WL31 = np.arange(400, 701, 10.0)
IMEC_WL = np.linspace(476, 629, 16)


@pytest.fixture
def window(qtbot, tmp_path, one_thread):
    from app.main_window import MainWindow
    from app.settings import Preferences

    win = MainWindow(Preferences.at(tmp_path / "prefs.ini"))
    qtbot.addWidget(win)
    win.runner.work_dir = tmp_path / "gui-runs"
    win.resize(1366, 768)
    win.show()
    win.pipeline.device_box.setCurrentText("cpu")
    yield win
    win.close()


def _dark_capture(path, side=48, bands=16, wavelengths=IMEC_WL):
    """A uint16 ENVI capture of 10-bit-like counts (peak ≈ 250 of 65535) with Poisson–Gaussian noise."""
    from scipy.ndimage import gaussian_filter

    from hiralign import io

    rng = np.random.default_rng(3)
    clean = gaussian_filter(rng.random((side, side, bands)), sigma=(3, 3, 1.5))
    clean = 20 + 230 * (clean - clean.min()) / (clean.max() - clean.min())
    noisy = np.clip(np.round(clean + rng.normal(size=clean.shape) * np.sqrt(0.2 * clean + 6)), 0, 1023)
    cube = Cube((noisy / 65535).astype(np.float32), wavelengths=wavelengths, name=path.stem)
    return io.save(cube, path, dtype="uint16")


def _open(qtbot, window, path):
    before = len(window.session.targets)
    window.open_paths([path])
    qtbot.waitUntil(lambda: len(window.session.targets) == before + 1, timeout=30000)
    target = window.session.targets[before]
    qtbot.waitUntil(lambda: target.analysis is not None and not window.jobs.busy, timeout=60000)
    return target


def test_a_dark_16_band_capture_is_explained_in_the_messages_dock_and_status_bar(qtbot, window, tmp_path):
    from hiralign.resources import shipped_model

    target = _open(qtbot, window, _dark_capture(tmp_path / "leaves.hdr"))
    messages = window.messages.messages()
    # which model will be used, and that it needs no resampling
    assert window.pipeline.model_box.currentText() == "shipped: gaussian-any"
    from PySide6.QtCore import Qt

    tip = window.pipeline.model_box.itemData(0, Qt.ItemDataRole.ToolTipRole)  # what the model is, on hover
    assert tip.startswith("subspace for gaussian · any bands") and "pretrained 500 steps (validation" in tip, tip
    assert any("16 bands at 476–629 nm" in m and "gaussian-any is band-agnostic" in m for m in messages), messages
    # the intensity scale: how dark, in counts, and what the run does about it
    dark = [m for m in messages if "% of full scale" in m]
    assert dark and "counts in the file" in dark[0] and "normalises by the 99.9th percentile" in dark[0]
    assert "⚠" in window.statusBar().currentMessage()
    assert list(target.analysis.notes) == [m for m in messages if m.startswith("leaves:")]

    # The 31-band model chosen by hand: the same cube is now resampled, and the window says so.
    window.pipeline.set_source_model(shipped_model("gaussian"))
    qtbot.waitUntil(lambda: target.analysis.model == str(shipped_model("gaussian")) and not window.jobs.busy,
                    timeout=30000)
    box = window.pipeline.model_box
    assert box.itemData(box.currentIndex(), Qt.ItemDataRole.ToolTipRole).startswith(
        "compact for gaussian · 31 bands 400–700 nm · 366 k parameters")
    assert any("resampled onto them and back" in m for m in window.messages.messages())
    assert target.analysis.noise is not None  # the noise estimate is kept, not recomputed
    count = len(window.messages.messages())
    window.pipeline.set_source_model(shipped_model("gaussian"))  # nothing new: nothing said twice
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)
    assert len(window.messages.messages()) == count


def test_a_kaist_like_cube_is_fed_band_by_band_and_needs_no_rescaling(qtbot, window, tmp_path, rng):
    from hiralign import io

    cube = Cube(rng.random((24, 24, 31), dtype=np.float32), wavelengths=WL31 + 20, name="kaist")
    target = _open(qtbot, window, io.save(cube, tmp_path / "kaist.hdr"))
    assert window.pipeline.model_box.currentText() == "shipped: gaussian"  # within 40 nm: the 31-band model
    assert target.analysis.notes == ("kaist: 31 bands at 420–720 nm on gaussian's 31 bands at 400–700 nm: fed band "
                                     "by band (centres up to 20 nm apart, within the 40 nm the run accepts), not "
                                     "resampled",)
    assert any("fed band by band" in m for m in window.messages.messages())


def test_the_noise_estimate_runs_off_the_gui_thread_and_is_plotted(qtbot, window, tmp_path, monkeypatch):
    import app.analysis

    threads = []
    original = app.analysis.target_analysis

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(app.analysis, "target_analysis", recording)
    target = _open(qtbot, window, _dark_capture(tmp_path / "leaves.hdr"))
    assert threads and all(t is not threading.main_thread() for t in threads)
    noise = target.analysis.noise
    assert noise.model.units == "counts" and noise.model.n_bands == 16
    assert 3.0 < float(np.median(noise.model.sigma)) < 8.0  # √(0.2·μ + 6) counts at μ ≈ 20–250
    assert 0.1 < noise.pooled_ab[0] < 0.3  # the simulated gain a = 0.2

    view = window.noise_view
    window.tabs.setCurrentWidget(view)
    sigma_curves = view.sigma_plot.listDataItems()
    assert len(sigma_curves) == 1  # before a run: the capture's σ only
    x, y = sigma_curves[0].getData()
    np.testing.assert_allclose(x, IMEC_WL)
    np.testing.assert_allclose(y, noise.model.sigma)
    assert "σ (counts)" in view.sigma_plot.getAxis("left").labelText
    assert view.band_box.count() == 16 and view.band_box.currentIndex() == 8
    points, fit, pooled = view.level_plot.listDataItems()
    band = 8
    a, b = noise.model.a[band], noise.model.b[band]
    fx, fy = fit.getData()
    np.testing.assert_allclose(fy, a * fx + b)
    assert "counts²" in view.fit.text() and "signal-dependent" in view.fit.text()
    view.band_box.setCurrentIndex(2)
    assert f"{IMEC_WL[2]:.0f} nm" in view.level_plot.titleLabel.text
    assert "How the run treats leaves:" in view.notes.text() and "band-agnostic" in view.notes.text()
    assert not view.report.isVisible() and "after Run all" in view.report_note.text()


def test_core_warnings_from_workers_reach_the_messages_dock_every_time(qtbot, window, tmp_path):
    import logging

    from hiralign.intensity import scale_for_task

    # pytest swaps the warning machinery for each test phase: route warnings to logging again, as
    # `python -m app` does once at start-up
    logging.captureWarnings(False)
    window.messages.uninstall()
    window.messages.install()
    dark = Cube(np.full((8, 8, 4), 0.004, np.float32), wavelengths=[450, 500, 550, 600], name="dark")
    for _ in range(2):  # Python shows a warning once per code location unless told otherwise
        job = window.jobs.submit("scale", lambda _p: scale_for_task("gaussian", dark), device="io")
        with qtbot.waitSignal(job.ended, timeout=10000):
            pass
    qtbot.waitUntil(lambda: sum("intensity:" in m for m in window.messages.messages()) == 2, timeout=5000)
    logging.captureWarnings(False)


def _imec_crop(path):
    """A 48×48 crop of the real IMEC leaves capture, counts kept (uint16); synthetic when absent."""
    from conftest import SHARED_DATA

    from hiralign import io

    source = SHARED_DATA / "envi" / "VIS_leaves_FD1_FN0_original.hdr"
    if not source.exists():
        return _dark_capture(path)
    cube = io.load(source)
    return io.save(cube.with_data(cube.data[100:148, 240:288], name=path.stem), path, dtype="uint16")


def test_the_sensor_task_runs_on_an_imec_capture_and_shows_the_no_reference_report(qtbot, window, tmp_path):
    target = _open(qtbot, window, _imec_crop(tmp_path / "leaves.hdr"))
    panel = window.pipeline
    tasks = [panel.task_box.itemText(i) for i in range(panel.task_box.count())]
    assert "sensor" in tasks
    panel.task_box.setCurrentText("sensor")
    assert panel.model_box.currentText() == "shipped: sensor-any"
    qtbot.waitUntil(lambda: target.analysis.task == "sensor" and not window.jobs.busy, timeout=30000)
    assert any("sensor run divides by the 99.9th percentile" in n for n in target.analysis.notes)
    panel.set_source_model(band_agnostic_checkpoint(tmp_path / "sensor-any", "sensor"))  # tiny: seconds
    panel.mode_box.setCurrentText("proxy-only")
    panel.steps_spin.setValue(3)
    ended = []
    window.runner.stage_ended.connect(lambda stage, state: ended.append((stage, state)))
    panel.run_all_button.click()
    qtbot.waitUntil(lambda: (len(ended) == 3 and not window.runner.busy)
                    or any(state != "finished" for _, state in ended), timeout=120000)
    assert ended == [("proxy", "finished"), ("finetune", "finished"), ("evaluate", "finished")], \
        window.errors.history
    assert target.metrics is None and target.quality is not None  # no clean reference: the report only

    view = window.noise_view
    window.tabs.setCurrentWidget(view)
    assert view.report.isVisible() and "No-reference report of the adapted model" in view.report_note.text()
    values = view.report_values()
    noise = target.quality["noise"]
    before, after = float(np.median(noise["sigma_before"])), float(np.median(noise["sigma_after"]))
    assert values["noise σ (median band)"] == f"{before:.3g} → {after:.3g} counts"
    assert values["noise drop"].startswith(f"{target.quality['noise']['median_ratio']}×")
    for key in ("method noise |corr|", "method noise lag-1", "method noise low-pass", "spectrum drift"):
        assert values[key]
    captured, restored = view.sigma_plot.listDataItems()
    np.testing.assert_allclose(restored.getData()[1], target.quality["noise"]["sigma_after"])
    assert "restored" in view.sigma_plot.titleLabel.text


def test_an_roi_shows_its_mean_spectrum_before_and_after_restoration(window, rng):
    from app.views.spectrum_plot import ROI_COLOUR

    cube = Cube(rng.random((20, 24, 31), dtype=np.float32), wavelengths=WL31, name="scene")
    session = window.session
    session.add_target(cube)
    plot = window.spectrum
    plot.set_roi((2, 4, 6, 5))
    assert plot.roi_layers() == ["degraded"]
    assert plot._roi_items[-1].opts["pen"].color().name() == ROI_COLOUR

    proxy = cube.with_data(cube.data * 0.5, name="proxy")
    session.set_proxy(0, proxy)
    assert plot.roi_layers() == ["degraded", "proxy"]
    session.set_evaluation(0, cube.with_data(cube.data * 0.25, name="restored"), None)
    assert plot.roi_layers() == ["degraded", "restored"]
    names = [label.text for _, label in plot.legend.items]
    assert names == ["ROI degraded mean ± std (6×5 px)", "ROI restored mean ± std (6×5 px)"]
    block = cube.data[2:8, 4:9].reshape(-1, 31)
    for label, factor in (("degraded", 1.0), ("restored", 0.25)):
        mean, std = plot.roi_statistics(label)
        np.testing.assert_allclose(mean, factor * block.mean(0), rtol=1e-5)
        np.testing.assert_allclose(std, factor * block.std(0), rtol=1e-4)
    _, columns = plot.table()
    assert {"roi degraded mean", "roi degraded std", "roi restored mean", "roi restored std"} <= set(columns)
    # The layer on display joins them when it is another one (here: the proxy).
    plot.set_layer("proxy")
    assert plot.roi_layers() == ["degraded", "restored", "proxy"]


def test_a_ticked_roi_stays_plotted_when_another_cube_is_selected(window, rng):
    first = Cube(rng.random((40, 40, 31), dtype=np.float32), wavelengths=WL31, name="first")
    second = Cube(rng.random((20, 24, 31), dtype=np.float32), wavelengths=WL31, name="second")
    window.session.add_target(first)
    window.cube_view.roi_check.setChecked(True)
    assert window.spectrum.roi is not None
    window.session.add_target(second)  # selected at once
    bounds = window.cube_view.roi_bounds()
    assert bounds is not None and window.spectrum.roi == bounds
    assert window.spectrum.roi_layers() == ["degraded"] and window.spectrum.has_curves()
