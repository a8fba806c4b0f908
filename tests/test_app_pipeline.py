"""The pipeline through the real workers on tiny cubes: stages, streaming, cancel, errors, export."""
from __future__ import annotations

import numpy as np
import pytest

from hiralign.cube import Cube

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]

BANDS = 16


def _tiny_checkpoint(folder, bands=BANDS, task="gaussian", wavelengths=None):
    import torch

    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint

    torch.manual_seed(0)
    model = build_model("compact", bands, 1, features=8, depth=2)
    wl = np.linspace(450, 650, bands) if wavelengths is None else wavelengths
    config = CheckpointConfig(arch="compact", task=task, bands=bands, wavelengths=tuple(wl),
                              args={"features": 8, "depth": 2})
    return save_checkpoint(model, folder, config, {"note": "random tiny test model"})


def _scene(rng, size=32, name="scene"):
    from scipy.ndimage import gaussian_filter

    clean = gaussian_filter(rng.random((size, size, BANDS)), sigma=(2, 2, 2)).astype(np.float32)
    clean = (clean - clean.min()) / (clean.max() - clean.min())
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    wl = np.linspace(450, 650, BANDS)
    return Cube(noisy, wl, name=name), Cube(clean, wl, name=f"{name} clean")


@pytest.fixture
def window(qtbot, tmp_path, rng, one_thread):
    from app.main_window import MainWindow
    from app.settings import Preferences

    win = MainWindow(Preferences.at(tmp_path / "prefs.ini"))
    qtbot.addWidget(win)
    win.runner.work_dir = tmp_path / "runs"
    win.resize(1200, 800)
    win.show()
    for k in range(2):
        degraded, clean = _scene(rng, name=f"scene{k}")
        win.session.add_target(degraded, clean=clean)
    panel = win.pipeline
    panel.set_source_model(_tiny_checkpoint(tmp_path / "source"))
    panel.device_box.setCurrentText("cpu")
    panel.steps_spin.setValue(4)
    yield win
    win.close()


def _run(qtbot, window, stage, timeout=60000):
    panel = window.pipeline
    assert panel.buttons[stage].isEnabled(), panel.buttons[stage].toolTip()
    with qtbot.waitSignal(window.runner.stage_ended, timeout=timeout) as blocker:
        panel.buttons[stage].click()
    assert blocker.args == [stage, "finished"], window.errors.history


@pytest.mark.slow
def test_proxy_finetune_evaluate_through_the_workers_fill_every_view(qtbot, window, tmp_path):
    from hiralign.models.checkpoint import load_checkpoint, read_provenance

    session, panel = window.session, window.pipeline
    panel.mode_box.setCurrentText("proxy-only")  # the mode is the config's, never guessed from the session
    assert not panel.buttons["finetune"].isEnabled()  # needs proxies first
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)  # the load-time analyses update targets too
    streamed = []
    session.target_updated.connect(streamed.append)
    _run(qtbot, window, "proxy")
    assert streamed == [0, 1]  # each proxy arrived as soon as it was done
    for target in session.targets:
        assert target.proxy is not None and target.proxy.shape == target.degraded.shape
    assert window.cube_view.layer_box.findText("proxy") >= 0
    assert "proxy" in window.target_list.row_texts()[0]

    _run(qtbot, window, "finetune")
    folder = session.adapted_checkpoint
    model, config = load_checkpoint(folder)
    assert config.bands == BANDS and read_provenance(folder)["mode"] == "proxy-only"
    assert [s for s, _ in session.loss_history] == [1, 2, 3, 4]
    steps, losses = window.training_view.loss_raw.getOriginalDataset()
    assert list(steps) == [1, 2, 3, 4]
    np.testing.assert_allclose(losses, [loss for _, loss in session.loss_history])

    _run(qtbot, window, "evaluate")
    for target in session.targets:
        assert target.restored.shape == target.degraded.shape
        assert set(target.metrics) == {"source", "adapted"}
        assert target.metrics["adapted"]["psnr_per_band"].shape == (BANDS,)
        assert target.metrics["adapted"]["sam_map"].shape == (32, 32)
    window.tabs.setCurrentWidget(window.training_view)  # hidden views redraw when shown
    table = window.training_view.table
    assert table.rowCount() == 3 and table.item(2, 0).text() == "mean"
    assert window.cube_view.layer_box.findText("restored") >= 0

    from app.export import export_checkpoint

    exported = export_checkpoint(folder, tmp_path / "export" / "adapted")
    reloaded, _ = load_checkpoint(exported)
    for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert np.array_equal(a.numpy(), b.numpy()), name
    assert window.runner.timings["proxy"]["seconds"] > 0


@pytest.mark.slow
def test_run_all_proxy_generate_warp_finetune_evaluate_on_a_tiny_cube(qtbot, window):
    """The whole method through the real workers, results streaming into every view."""
    from hiralign.generate import settings_class
    from hiralign.models.checkpoint import load_checkpoint, read_provenance
    from hiralign.warp import WarpConfig

    session, panel, runner = window.session, window.pipeline, window.runner
    session.remove_target(0)  # one 32×32 scene keeps this test within seconds
    panel.generator_box.setCurrentText("patchnn")
    panel.generator_config = settings_class("patchnn")(coarsest_side=16, iterations=2, fine_iterations=1)
    panel.warp_config = WarpConfig(iterations=5, index="exact", preview_every=2)
    panel.guides_spin.setValue(2)
    ended = []
    runner.stage_ended.connect(lambda stage, state: ended.append((stage, state)))
    images = []
    sources = []
    runner.previewed.connect(lambda key, value: images.append(key) if isinstance(value, np.ndarray) else None)
    runner.previewed.connect(lambda key, value: sources.append((runner.current_stage, key))
                             if isinstance(value, np.ndarray) else None)
    panel.run_all_button.click()
    qtbot.waitUntil(lambda: len(ended) == 5 or any(state != "finished" for _, state in ended), timeout=300000)
    assert ended == [(s, "finished") for s in ("proxy", "generate", "warp", "finetune", "evaluate")], \
        window.errors.history
    target = session.targets[0]
    assert len(target.guides) == 2 and all(g.shape == (32, 32, 3) for g in target.guides)
    assert len(target.warps) == 2 and [c.shape for c in target.synth] == [(32, 32, BANDS)] * 2
    assert {"proxy", "warp_rgb"} <= set(images)  # live previews reached the panel
    # the caption names the stage and content of the image on show
    from app.panels.pipeline_panel import preview_caption

    assert panel.preview_title.text == preview_caption(*sources[-1])
    assert read_provenance(session.adapted_checkpoint)["mode"] == "hiralign"
    load_checkpoint(session.adapted_checkpoint)

    # Every view shows the results.
    window.tabs.setCurrentWidget(window.compare_view)
    assert window.compare_view.guide_box.count() == 2 and window.compare_view.gallery.count() == 2
    compare = window.compare_view
    assert all(item.image is not None for item in compare.images)
    compare.mode_box.setCurrentText("Swipe")
    compare.swipe_line.setValue(10)
    swiped = compare.images[0].image
    np.testing.assert_array_equal(swiped[:, :10], compare.rgb("proxy r")[:, :10])
    np.testing.assert_array_equal(swiped[:, 10:], compare.rgb("guide g")[:, 10:])
    compare.mode_box.setCurrentText("Difference")
    np.testing.assert_allclose(compare.images[0].image,
                               np.abs(compare.rgb("proxy r") - compare.rgb("guide g")).mean(axis=2))
    window.tabs.setCurrentWidget(window.warp_view)
    rows, cols, weights = window.warp_view.select_guide_pixel(10, 12)
    assert weights.sum() == pytest.approx(1.0, abs=1e-4)
    assert window.warp_view.table.rowCount() > len(weights)
    assert window.cube_view.select_layer("synth 2")
    window.spectrum.show_pixel(10, 12)
    r, c = target.synth_pixel_from(1, 10, 12)
    np.testing.assert_array_equal(window.spectrum.curves["synth 2"].getData()[1], target.synth[1].data[r, c])
    window.tabs.setCurrentWidget(window.training_view)
    assert window.training_view.table.rowCount() == 2
    assert max(t["max_stall_ms"] for t in runner.timings.values()) >= 0


def test_cancel_mid_finetune_keeps_the_session_consistent(qtbot, window):
    session, panel, runner = window.session, window.pipeline, window.runner
    panel.mode_box.setCurrentText("proxy-only")
    _run(qtbot, window, "proxy")
    proxies = [t.proxy for t in session.targets]
    panel.steps_spin.setValue(100000)
    panel.buttons["finetune"].click()
    qtbot.waitUntil(lambda: runner.current is not None and runner.current.fraction > 0, timeout=60000)
    assert panel.cancel_button.isEnabled() and not panel.buttons["proxy"].isEnabled()
    with qtbot.waitSignal(runner.stage_ended, timeout=30000) as blocker:
        panel.cancel_button.click()
        # Said at once, before the worker reaches its next check (issue 14: none for up to 8 s).
        assert "cancelling…" in panel.status.text() and not panel.cancel_button.isEnabled()
        panel._on_progress("finetune", runner.current, 1, 2, "step 5 / 10")  # a late report does not overwrite it
        assert "cancelling…" in panel.status.text()
    assert blocker.args == ["finetune", "cancelled"]
    assert session.adapted_checkpoint is None and session.loss_history == []
    assert [t.proxy for t in session.targets] == proxies
    assert not list((window.runner.work_dir).glob("*/checkpoint/config.json"))  # no half-written bundle
    assert panel.buttons["finetune"].isEnabled() and not panel.cancel_button.isEnabled()
    assert "cancelled" in panel.status.text()
    assert window.errors.history == []


def test_a_failing_stage_shows_the_error_dialog(qtbot, window, tmp_path):
    panel = window.pipeline
    # 8 bands over 900–1000 nm: the 450–650 nm targets cannot be resampled onto them
    panel.set_source_model(_tiny_checkpoint(tmp_path / "wrong", bands=8, wavelengths=np.linspace(900, 1000, 8)))
    with qtbot.waitSignal(window.runner.stage_ended, timeout=60000) as blocker:
        panel.buttons["proxy"].click()
    assert blocker.args == ["proxy", "failed"]
    qtbot.waitUntil(lambda: bool(window.errors.dialogs))
    text = window.errors.dialogs[0].text()
    assert "Proxy failed" in text and "8-band" in text
    assert all(t.proxy is None for t in window.session.targets)
    assert panel.buttons["proxy"].isEnabled()
    window.errors.close_all()


def test_export_writes_cubes_and_csv_atomically(qtbot, window, tmp_path):
    from app.export import export_cubes
    from hiralign.io import load

    _run(qtbot, window, "proxy")
    cubes = window.exporter.cubes_of("proxy")
    written = export_cubes(cubes, tmp_path / "out", ".mat") + export_cubes(cubes, tmp_path / "out", ".hdr")
    assert len(written) == 4
    back = load(written[0])
    np.testing.assert_allclose(back.data, window.session.targets[0].proxy.data, rtol=1e-6)
    np.testing.assert_allclose(back.wavelengths, window.session.targets[0].wavelengths)

    window.spectrum.show_pixel(5, 6)
    csv_path = window.exporter.export_csv(tmp_path / "spectra.csv", roi=False)
    rows = csv_path.read_text().splitlines()
    assert rows[0].split(",")[:2] == ["wavelength_nm", "degraded r5 c6"] and len(rows) == BANDS + 1
    assert float(rows[1].split(",")[1]) == pytest.approx(window.session.current_target.degraded.data[5, 6, 0], rel=1e-5)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)  # the load-time noise analysis
    figures = window.exporter.export_figures(tmp_path / "figures")
    # Views with nothing to show yet (no guides, warps or training after a proxy run) write no blank PNG.
    assert {p.name for p in figures} == {"cube.png", "spectra.png", "noise.png"}
    assert all(p.stat().st_size > 1000 for p in figures)
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp" in p.name]
