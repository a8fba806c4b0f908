"""The main window: opening files into the target set, inspecting pixels, preferences."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from PySide6.QtCore import QPoint, QPointF, Qt

from hiralign.cube import Cube

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]


@pytest.fixture
def window(qtbot, tmp_path):
    from app.main_window import MainWindow
    from app.settings import Preferences

    win = MainWindow(Preferences.at(tmp_path / "prefs.ini"))
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def _cube(rng, shape=(24, 30, 31), name="tiny") -> Cube:
    return Cube(rng.random(shape, dtype=np.float32), wavelengths=np.linspace(400, 700, shape[2]), name=name)


def _wait_targets(qtbot, window, count: int) -> None:
    qtbot.waitUntil(lambda: len(window.session.targets) == count and not window.jobs.busy, timeout=20000)


def test_open_envi_file_shows_its_shape_and_range_in_the_target_list(qtbot, window, tmp_path, rng):
    from hiralign.io import save

    header = save(_cube(rng, (24, 30, 31), name="scene"), tmp_path / "scene.hdr")
    window.open_paths([header])
    _wait_targets(qtbot, window, 1)
    text = window.target_list.row_texts()[0]
    assert "24×30×31" in text
    assert "400–700 nm" in text
    assert window.prefs.recent_files == [str(header.resolve())]
    assert window.cube_view.current_layer() == "degraded"
    assert window.errors.history == []


def test_npy_without_wavelengths_asks_for_them(qtbot, window, tmp_path, rng):
    path = tmp_path / "raw.npy"
    np.save(path, rng.random((10, 12, 16), dtype=np.float32))
    asked = []

    def answer(p, bands, default):
        asked.append((bands, default))
        return "450:600:10"

    window.opener.ask_wavelengths = answer
    window.open_paths([path])
    _wait_targets(qtbot, window, 1)
    assert asked and asked[0][0] == 16
    np.testing.assert_allclose(window.session.targets[0].wavelengths, np.arange(450, 601, 10.0))
    assert "450–600 nm" in window.target_list.row_texts()[0]


def test_mat_file_with_two_cubes_asks_which_variable(qtbot, window, tmp_path, rng):
    path = tmp_path / "two.mat"
    first, second = rng.random((8, 9, 31)), rng.random((12, 13, 31))
    scipy.io.savemat(path, {"first": first, "second": second, "wavelengths": np.arange(400, 701, 10.0)})
    offered = []
    window.opener.ask_variable = lambda p, names: offered.append(names) or "second"
    window.open_paths([path])
    _wait_targets(qtbot, window, 1)
    assert sorted(offered[0]) == ["first", "second"]
    np.testing.assert_allclose(window.session.targets[0].degraded.data, second.astype(np.float32), rtol=1e-6)


def test_unreadable_file_shows_the_error_dialog_naming_it(qtbot, window, tmp_path):
    path = tmp_path / "broken.hdr"
    path.write_text("this is not an ENVI header\n")
    window.open_paths([path])
    qtbot.waitUntil(lambda: bool(window.errors.dialogs), timeout=20000)
    dialog = window.errors.dialogs[0]
    assert "broken.hdr" in dialog.text()
    assert dialog.detailedText()  # the traceback is one click away
    assert window.session.targets == []


def _click_pixel(qtbot, cube_view, row: int, col: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    scene_point = cube_view.view_box.mapViewToScene(QPointF(col + 0.5, row + 0.5))
    widget_point = cube_view.graphics.mapFromScene(scene_point)
    qtbot.mouseClick(cube_view.graphics.viewport(), Qt.MouseButton.LeftButton, modifier,
                     QPoint(int(widget_point.x()), int(widget_point.y())))


def test_clicking_a_pixel_plots_exactly_its_spectrum(qtbot, window, rng):
    cube = _cube(rng, (20, 26, 31))
    clean = cube.with_data(rng.random(cube.shape, dtype=np.float32), name="tiny clean")
    window.session.add_target(cube, clean=clean)
    qtbot.wait(50)
    _click_pixel(qtbot, window.cube_view, 7, 11)
    qtbot.waitUntil(lambda: "degraded" in window.spectrum.curves)
    x, y = window.spectrum.curves["degraded"].getData()
    np.testing.assert_allclose(x, cube.wavelengths)
    np.testing.assert_array_equal(y, cube.data[7, 11])
    np.testing.assert_array_equal(window.spectrum.curves["clean"].getData()[1], clean.data[7, 11])

    _click_pixel(qtbot, window.cube_view, 3, 20, Qt.KeyboardModifier.ShiftModifier)
    _click_pixel(qtbot, window.cube_view, 15, 2, Qt.KeyboardModifier.ShiftModifier)
    assert [p[:2] for p in window.spectrum.pins] == [(3, 20), (15, 2)]
    assert len({p[2] for p in window.spectrum.pins}) == 2  # each pin has its own colour
    assert window.cube_view.pin_markers.data.size == 2
    wl, columns = window.spectrum.table()
    np.testing.assert_array_equal(columns["pin degraded r15 c2"], cube.data[15, 2])


def test_roi_mean_and_std_and_band_line(qtbot, window, rng):
    cube = _cube(rng, (20, 26, 31))
    window.session.add_target(cube)
    view = window.cube_view
    view.roi_check.setChecked(True)
    view.roi.setPos((4, 2))
    view.roi.setSize((6, 5))
    view.roi_changed.emit(view.roi_bounds())
    mean, std = window.spectrum.roi_statistics()
    block = cube.data[2:7, 4:10].reshape(-1, 31)
    np.testing.assert_allclose(mean, block.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, block.std(0), rtol=1e-5)

    view.band_slider.setValue(20)
    assert view.mode_box.currentText() == "Single band"
    assert [line.value() for line in window.spectrum._band_lines] == [pytest.approx(cube.wavelengths[20])]
    assert "600.0 nm" in view.band_label.text()


def test_rgb_composite_presets_pick_the_nearest_bands(qtbot, window, rng):
    cube = _cube(rng, (12, 12, 31))
    window.session.add_target(cube)
    view = window.cube_view
    assert view.mode_box.currentText() == "RGB composite"
    assert view.displayed_wavelengths() == [660.0, 550.0, 470.0]
    assert view.preset_box.findText("Colour infrared 860/650/550 nm") == -1  # outside 400–700 nm
    view.channel_boxes[0].setCurrentIndex(30)
    assert view.preset_box.currentText() == "Custom"
    assert view.displayed_wavelengths()[0] == 700.0
    np.testing.assert_array_equal(view.image.image, cube.data[:, :, [30, 15, 7]])


def test_recent_files_and_fresh_preferences(tmp_path):
    from app.settings import MAX_RECENT, Preferences

    prefs = Preferences.at(tmp_path / "p.ini")
    for i in range(MAX_RECENT + 3):
        prefs.add_recent(tmp_path / f"f{i}.hdr")
    assert len(prefs.recent_files) == MAX_RECENT
    assert prefs.recent_files[0].endswith(f"f{MAX_RECENT + 2}.hdr")
    prefs.device = "cpu"
    prefs.clear()
    assert prefs.recent_files == [] and prefs.device == "auto"


def test_about_box_lists_versions(qtbot, window):
    box = window.show_about()
    assert "hiralign" in box.text() and "PySide6" in box.text() and "torch" in box.text()
    box.close()


def test_dropping_files_opens_each_cube_once(qtbot, window, tmp_path, rng):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    from hiralign.io import save

    header = save(_cube(rng, (10, 11, 31), name="dropped"), tmp_path / "dropped.hdr")
    data_file = next(p for p in tmp_path.iterdir() if p.stem == "dropped" and p.suffix != ".hdr")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(header)), QUrl.fromLocalFile(str(data_file))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    _wait_targets(qtbot, window, 1)
    assert window.session.targets[0].degraded.shape == (10, 11, 31)


def test_super_resolution_layers_share_one_reference_frame(rng):
    from app.session import Target

    low = _cube(rng, (8, 10, 31), name="lr")
    target = Target(degraded=low)
    target.proxy = low.with_data(rng.random((32, 40, 31), dtype=np.float32))
    assert target.reference_shape() == (32, 40)
    spectra = {label: (spectrum, pixel) for label, spectrum, pixel in target.spectra_at(13, 39)}
    assert spectra["degraded"][1] == (3, 9)
    np.testing.assert_array_equal(spectra["degraded"][0], low.data[3, 9])
    assert spectra["proxy"][1] == (13, 39)


def test_closing_the_window_cancels_and_waits_for_running_jobs(qtbot, window):
    import time

    def forever(progress):
        while True:
            progress.check()
            time.sleep(0.01)

    job = window.jobs.submit("endless", forever)
    qtbot.waitUntil(lambda: job.state == "running")
    window.close()
    assert job.token.cancelled and not job._thread.isRunning()  # close() returned after the worker


def test_the_demo_budget_is_shown_not_switched_silently(qtbot, window):
    from app.panels.pipeline_panel import DEMO_BUDGET

    panel = window.pipeline
    assert not panel.budget_note.isVisibleTo(panel)
    window.open_demo()
    qtbot.waitUntil(lambda: len(window.session.targets) > 0 and not window.jobs.busy, timeout=30000)
    assert panel.guides_spin.value() == DEMO_BUDGET["guides"] and panel.steps_spin.value() == DEMO_BUDGET["steps"]
    assert panel.budget_note.isVisibleTo(panel)
    text = panel.budget_note.text()
    assert f"{DEMO_BUDGET['steps']} finetune steps" in text and "400 steps" in text
