"""The views on their own: the empty spectrum plot, legends outside the curves, bad bands as
gaps, fit-to-view after a larger cube with an ROI, the image's context menu, the side
panel and hint of the cube view, the Messages dock, the remembered layout and the help."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication, QDockWidget

from hiralign.cube import Cube

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]


@pytest.fixture
def window(qtbot, tmp_path):
    from app.main_window import MainWindow
    from app.settings import Preferences

    win = MainWindow(Preferences.at(tmp_path / "prefs.ini"))
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def _cube(rng, shape=(24, 30, 31), start=400.0, stop=700.0, name="tiny", bad=()) -> Cube:
    return Cube(rng.random(shape, dtype=np.float32), wavelengths=np.linspace(start, stop, shape[2]), name=name,
                bad_bands=tuple(bad))


def test_empty_spectrum_plot_shows_nanometres_and_a_hint(window, rng):
    plot = window.spectrum
    (x0, x1), _ = plot.plot.viewRange()
    assert 390 <= x0 <= 400 and 700 <= x1 <= 710  # not 0–1
    assert plot.hint.scene() is not None and "Click a pixel" in plot.hint.toPlainText()
    window.session.add_target(_cube(rng, start=420, stop=720))  # KAIST's range
    (x0, x1), _ = plot.plot.viewRange()
    assert 410 <= x0 <= 420 and 720 <= x1 <= 730
    plot.show_pixel(3, 4)
    assert plot.hint.scene() is None and "degraded" in plot.curves


def test_legend_sits_beside_the_axes_not_over_the_curves(window, rng):
    cube = _cube(rng)
    window.session.add_target(cube, clean=_cube(rng, name="clean"))
    plot = window.spectrum
    plot.show_pixel(5, 6)
    plot.pin_pixel(2, 2)
    QApplication.processEvents()
    axes = plot.plot.vb.sceneBoundingRect()
    legend = plot.legend.sceneBoundingRect()
    assert legend.width() > 0 and not axes.intersects(legend)
    assert len(plot.legend.items) == 3  # degraded, clean, pin
    # Many pins and an ROI in a short dock: the legend takes more columns, never runs off.
    for k in range(5):
        plot.pin_pixel(k + 3, k)
    plot.set_roi((2, 2, 6, 6))
    window.resizeDocks([window.findChild(QDockWidget, "Spectra")], [150], Qt.Orientation.Vertical)  # its minimum
    for _ in range(3):
        QApplication.processEvents()
    box, legend = plot.legend_box.sceneBoundingRect(), plot.legend.sceneBoundingRect()
    assert len(plot.legend.items) == 9 and plot.legend.columnCount >= 2
    assert legend.bottom() <= box.bottom() + 1 and legend.right() <= box.right() + 1
    assert not plot.plot.vb.sceneBoundingRect().intersects(legend)


def test_bad_bands_are_gaps_and_grey_spans_not_drops(window, rng):
    from app.views.spectrum_plot import bad_band_spans

    cube = _cube(rng, bad=(0, 10, 11, 12))
    window.session.add_target(cube)
    plot = window.spectrum
    plot.show_pixel(4, 5)
    y = plot.curves["degraded"].getData()[1]
    assert np.isnan(y[[0, 10, 11, 12]]).all() and np.isfinite(np.delete(y, [0, 10, 11, 12])).all()
    np.testing.assert_array_equal(np.delete(y, [0, 10, 11, 12]), np.delete(cube.data[4, 5], [0, 10, 11, 12]))
    spans = [span.getRegion() for span in plot._bad_spans]
    assert spans == bad_band_spans(cube.wavelengths, cube.bad_bands) and len(spans) == 2
    (lo, hi) = spans[1]
    assert lo < cube.wavelengths[10] and hi > cube.wavelengths[12] and hi < cube.wavelengths[13]


def test_aviris_water_bands_of_salton_sea_are_gaps(window):
    from conftest import shared_file

    from hiralign.io import load

    cube = load(shared_file("remote", "salton_sea_roi.mat"))
    assert cube.bad_bands, "the Salton Sea ROI lists bad bands"
    window.session.add_target(cube)
    window.spectrum.show_pixel(10, 10)
    y = window.spectrum.curves["degraded"].getData()[1]
    assert np.isnan(y[list(cube.bad_bands)]).all()
    assert len(window.spectrum._bad_spans) >= 2  # the 1400 nm and 1900 nm water bands at least


def test_small_cube_opens_fitted_after_a_larger_one_with_roi_on(window, rng):
    view = window.cube_view
    window.session.add_target(_cube(rng, (200, 240, 31), name="large"))
    view.roi_check.setChecked(True)
    view.roi.setPos((150, 120))
    view.roi.setSize((80, 70))
    view.set_pins([(190, 230, "#d62728")])
    window.session.add_target(_cube(rng, (16, 20, 31), name="small"))
    (x0, x1), (y0, y1) = view.view_box.viewRange()
    # Fitted: the 20×16 image fills the view along one axis (the other has the aspect's margin).
    tight_x = abs(x0) < 1 and abs(x1 - 20) < 1 and y0 <= 0 and y1 >= 16
    tight_y = abs(y0) < 1 and abs(y1 - 16) < 1 and x0 <= 0 and x1 >= 20
    assert tight_x or tight_y, view.view_box.viewRange()
    bounds = view.roi_bounds()
    assert bounds is not None and bounds[0] + bounds[2] <= 16 and bounds[1] + bounds[3] <= 20


@pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise", "grabbing the keyboard")  # offscreen popups
def test_fit_action_and_context_menu(window, rng, qtbot):
    view = window.cube_view
    window.session.add_target(_cube(rng, (40, 50, 31)))
    (x0, x1), (y0, y1) = view.view_box.viewRange()
    fitted = (x1 - x0, y1 - y0)
    view.view_box.scaleBy((0.1, 0.1))
    (x0, x1), (y0, y1) = view.view_box.viewRange()
    assert x1 - x0 < fitted[0] / 5
    view.fit_action.trigger()
    (x0, x1), (y0, y1) = view.view_box.viewRange()
    assert (x1 - x0, y1 - y0) == pytest.approx(fitted) and min(x1 - x0 - 50, y1 - y0 - 40) == pytest.approx(0, abs=1)
    assert view.fit_action in window.menuBar().actions()[1].menu().actions()  # View ▸ Fit image to view

    centre = view.view_box.mapViewToScene(QPointF(25, 20))
    qtbot.mouseClick(view.graphics.viewport(), Qt.MouseButton.RightButton, pos=view.graphics.mapFromScene(centre))
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None, timeout=3000)
    menu = QApplication.activePopupWidget()
    texts = [a.text() for a in menu.actions()]
    assert "Fit image to view" in texts and "Stretch 2–98 %" in texts
    assert {"Layer", "Beside", "Display"} <= {a.text() for a in menu.actions() if a.menu() is not None}
    menu.close()


def test_cube_view_shows_the_best_layer_beside_and_says_what_next(window, rng):
    view = window.cube_view
    degraded, clean = _cube(rng, name="scene"), _cube(rng, name="scene clean")
    window.session.add_target(degraded, clean=clean)
    assert view.current_layer() == "degraded" and view.beside_layer() == "clean"
    np.testing.assert_array_equal(view.side_image.image, clean.data[:, :, view.displayed_bands()])
    assert "clean reference" in view.hint.text() and "Run all" in view.hint.text()
    np.testing.assert_allclose(view.side_image.getLevels(), view.image.getLevels())  # one display scale

    window.session.set_proxy(0, degraded.with_data(clean.data * 0.5, name="proxy"))
    assert view.beside_layer() == "proxy" and "source model" in view.hint.text()
    view.beside_box.setCurrentText("nothing")
    assert view.beside_layer() is None and view.side_box.scene() is None
    assert view.hint.text().startswith("Shown:")


def test_core_warnings_of_any_thread_reach_the_messages_dock(window, qtbot):
    worker = threading.Thread(target=lambda: logging.getLogger("hiralign.io.envi").warning(
        "capture.hdr: uint16 data fill only 0.4 % of the range; values are dark"))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: bool(window.messages.messages()), timeout=3000)
    assert "capture.hdr" in window.messages.messages()[-1]
    assert "capture.hdr" in window.statusBar().currentMessage()
    logging.getLogger("hiralign").info("not a warning")
    QApplication.processEvents()
    assert len(window.messages.messages()) == 1
    dock = window.findChild(QDockWidget, "Messages")
    assert dock is not None and dock.toggleViewAction() in window.menuBar().actions()[1].menu().actions()


def test_dark_data_is_explained_on_the_spectrum_plot(window, rng):
    window.session.add_target(Cube(rng.random((8, 8, 16), dtype=np.float32) * 0.004,
                                   wavelengths=np.linspace(476, 629, 16), name="imec"))
    assert "dark data" in window.spectrum.note


def test_geometry_and_docks_are_remembered_and_reset(qtbot, tmp_path):
    from app.main_window import MainWindow
    from app.settings import Preferences

    first = MainWindow(Preferences.at(tmp_path / "p.ini"))
    qtbot.addWidget(first)
    first.resize(1100, 720)
    first.show()
    first.findChild(QDockWidget, "Spectra").hide()
    first.close()
    second = MainWindow(Preferences.at(tmp_path / "p.ini"))
    qtbot.addWidget(second)
    second.show()
    # The offscreen screen is 800 px wide, so restoring clamps the width; the height fits.
    assert second.layout_keeper.restore() and second.height() == 720
    assert not second.findChild(QDockWidget, "Spectra").isVisible()
    second.layout_keeper.reset()
    assert second.findChild(QDockWidget, "Spectra").isVisible()
    second.close()


def test_help_offers_the_user_guide_and_every_shortcut(window):
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QTextDocument

    guide = window.show_user_guide()
    assert "Desktop application" in guide.browser.toPlainText()
    image = guide.browser.loadResource(QTextDocument.ResourceType.ImageResource.value, QUrl("screenshots/window.png"))
    assert not image.isNull()  # the screenshots show offline
    guide.close()
    dialog = window.show_shortcuts()
    rows = {dialog.table.item(i, 0).text(): dialog.table.item(i, 1).text() for i in range(dialog.table.rowCount())}
    assert rows["Run all"] == "Ctrl+R" and rows["Fit image to view"] == "Ctrl+0"
    assert "Shift-click a pixel" in rows and rows["User guide"]
    dialog.close()


def test_each_target_keeps_its_own_bands_and_mode(window, rng):
    view = window.cube_view
    window.session.add_target(_cube(rng, name="a"))
    view.band_slider.setValue(20)  # single band, 600 nm
    window.session.add_target(_cube(rng, name="b"))
    view.channel_boxes[0].setCurrentIndex(30)  # a custom composite
    window.session.set_current(0)
    assert view.mode_box.currentText() == "Single band" and view.displayed_bands() == [20]
    assert "600.0 nm" in view.band_label.text() and view.band_row.isVisible()
    window.session.set_current(1)
    assert view.mode_box.currentText() == "RGB composite" and view.displayed_bands()[0] == 30
    assert view.preset_box.currentText() == "Custom" and not view.band_row.isVisible()
