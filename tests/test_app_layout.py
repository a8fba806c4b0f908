"""The main window at laptop and desktop sizes: docks, plots and controls keep a usable size,
no text is clipped, no widgets overlap — measured on widget geometry and font metrics, not
pixels — before and after a real (proxy-stage) run on the demo. The PNGs are saved for a
person to look at (``pytest --basetemp DIR`` keeps them)."""
from __future__ import annotations

import itertools

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QDockWidget,
    QLabel,
    QScrollArea,
    QSlider,
    QWidget,
)

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]

SIZES = ((1024, 700), (1366, 768), (1920, 1080))
#: Below these a plot or image stops being usable (px).
MIN_PLOT = (150, 100)
MIN_SLIDER = 100


@pytest.fixture(scope="module")
def demo_window(tmp_path_factory):
    from app.demo import load_demo
    from app.main_window import MainWindow
    from app.settings import Preferences

    QApplication.instance() or QApplication([])
    folder = tmp_path_factory.mktemp("layout")
    win = MainWindow(Preferences.at(folder / "prefs.ini"))
    win.runner.work_dir = folder / "runs"
    win.show()
    win._demo_loaded(load_demo())
    yield win
    win.close()


def _settle(window, width: int, height: int) -> None:
    from app.views.window_layout import fit_docks

    window.resize(width, height)
    for _ in range(3):
        QApplication.processEvents()
    fit_docks(window)
    for _ in range(5):
        QApplication.processEvents()


def _shown(widget: QWidget) -> bool:
    return widget.isVisible() and widget.width() > 0 and widget.height() > 0


def _in_scroll_area(widget: QWidget) -> bool:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            return True
        parent = parent.parentWidget()
    return False


def _label_text_width(label: QLabel) -> float:
    text = label.text()
    if label.textFormat() == Qt.TextFormat.RichText or (label.textFormat() == Qt.TextFormat.AutoText
                                                         and GuiQt.mightBeRichText(text)):  # QtGui's Qt has it
        doc = QTextDocument()
        doc.setDefaultFont(label.font())
        doc.setHtml(text)
        doc.setDocumentMargin(0)
        return doc.idealWidth()
    return max((label.fontMetrics().horizontalAdvance(line) for line in text.splitlines()), default=0)


def layout_problems(window) -> list[str]:
    """Every clipped text, squashed dock/plot/slider and overlap in the visible window."""
    from app.views.window_layout import DOCK_MINIMUM

    problems: list[str] = []
    for dock in window.findChildren(QDockWidget):
        minimum = DOCK_MINIMUM.get(dock.objectName())
        if minimum and _shown(dock.widget()) and not dock.isFloating():
            w, h = dock.widget().width(), dock.widget().height()
            if w < minimum[0] - 1 or h < minimum[1] - 1:
                problems.append(f"dock {dock.objectName()} is {w}×{h}, below {minimum}")
    for view in window.findChildren(pg.GraphicsView):
        if _shown(view) and not _in_scroll_area(view) and (view.width() < MIN_PLOT[0] or view.height() < MIN_PLOT[1]):
            problems.append(f"plot {view.parentWidget().__class__.__name__}/{view.__class__.__name__} is "
                            f"{view.width()}×{view.height()}")
    for slider in window.findChildren(QSlider):
        if _shown(slider) and slider.width() < MIN_SLIDER:
            problems.append(f"slider {slider.toolTip()!r} is {slider.width()} px wide")
    for label in window.findChildren(QLabel):
        if not _shown(label) or not label.text():
            continue
        room = label.contentsRect()
        if label.wordWrap():
            needed = label.heightForWidth(room.width())
            if needed > room.height() + 1:
                problems.append(f"wrapped label {label.text()[:50]!r} needs {needed} px height, has {room.height()}")
        elif _label_text_width(label) > room.width() + 1:
            problems.append(f"label {label.text()[:50]!r} needs {_label_text_width(label):.0f} px, has {room.width()}")
    for widget in [*window.findChildren(QAbstractButton), *window.findChildren(QComboBox)]:
        if _shown(widget) and widget.width() < widget.minimumSizeHint().width() - 1:
            problems.append(f"{widget.__class__.__name__} {getattr(widget, 'text', lambda: '')()!r} is "
                            f"{widget.width()} px, needs {widget.minimumSizeHint().width()}")
    for parent in window.findChildren(QWidget):
        if not _shown(parent) or parent.layout() is None:
            continue
        children = [parent.layout().itemAt(i).widget() for i in range(parent.layout().count())]
        children = [c for c in children if c is not None and _shown(c)]
        for a, b in itertools.combinations(children, 2):
            overlap: QRect = a.geometry().intersected(b.geometry())
            if overlap.width() > 1 and overlap.height() > 1:
                problems.append(f"{a.__class__.__name__} and {b.__class__.__name__} overlap in "
                                f"{parent.__class__.__name__} ({overlap.width()}×{overlap.height()} px)")
    return problems


def _check_every_tab(window, width: int, height: int, folder, stem: str) -> list[str]:
    problems = []
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        _settle(window, width, height)
        name = window.tabs.tabText(index)
        problems += [f"{width}×{height} {name}: {p}" for p in layout_problems(window)]
        assert window.grab().save(str(folder / f"{stem}_{name.lower()}_{width}x{height}.png"))
    window.tabs.setCurrentIndex(0)
    return problems


def test_first_screen_holds_at_laptop_and_desktop_sizes(demo_window, tmp_path):
    window = demo_window
    problems = []
    for width, height in SIZES:
        problems += _check_every_tab(window, width, height, tmp_path, "demo")
        assert window.size().width() <= width and window.size().height() <= height, "the window grew"
    assert problems == []
    # The first screen explains itself: degraded beside its clean reference and a next step.
    view = window.cube_view
    assert view.current_layer() == "degraded" and view.beside_layer() == "clean"
    assert "Run all" in view.hint.text()


def test_layout_holds_after_a_run_of_the_proxy_stage(demo_window, qtbot, tmp_path, one_thread):
    window = demo_window
    window.pipeline.device_box.setCurrentText("cpu")
    with qtbot.waitSignal(window.runner.stage_ended, timeout=120000) as blocker:
        window.pipeline.start("proxy")
    assert blocker.args == ["proxy", "finished"], window.errors.history
    window.session.set_current(0)
    target = window.session.current_target
    window._on_pixel_clicked(target.degraded.height // 2, target.degraded.width // 2, False)
    problems = []
    for width, height in SIZES:
        problems += _check_every_tab(window, width, height, tmp_path, "proxy")
    assert problems == []
    assert window.cube_view.beside_layer() == "proxy"
    assert set(window.spectrum.curves) == {"degraded", "proxy", "clean"}

    # The finished run's layout: a restored layer and real scores in every row. The proxy
    # stands in for the adapted model's restoration: this test is about geometry, and a
    # finetune here would take minutes.
    from hiralign.evaluate import score_cube
    from hiralign.quality import quality_report

    for i, item in enumerate(window.session.targets):
        score = score_cube(item.proxy, item.clean, maps=True).as_dict()
        restored = item.proxy.with_data(item.proxy.data, name=f"{item.name} restored")
        window.session.set_evaluation(i, restored, {"source": score, "adapted": score})
        window.session.set_quality(i, quality_report(item.degraded, restored, tile=64, overlap=16))
    window.session.set_current(0)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)  # the noise analyses, for the Noise tab
    for width, height in SIZES:
        problems += _check_every_tab(window, width, height, tmp_path, "scored")
        window.tabs.setCurrentWidget(window.training_view)
        _settle(window, width, height)
        table = window.training_view.table
        assert table.rowCount() == 5  # four images and the mean
        for row in range(table.rowCount()):  # every score visible without scrolling down
            assert table.visualRect(table.model().index(row, 0)).bottom() <= table.viewport().height()
    assert problems == []
    assert window.cube_view.beside_layer() == "restored"
    window.tabs.setCurrentWidget(window.noise_view)  # the no-reference report is laid out with the rest
    assert window.noise_view.report.isVisible() and window.noise_view.report.rowCount() >= 6
    window.tabs.setCurrentIndex(0)


def test_the_checker_sees_clipped_text_and_squashed_widgets(demo_window):
    window = demo_window
    _settle(window, 1366, 768)
    probe = QLabel("a read-out far too long for forty pixels")
    probe.setFixedWidth(40)
    window.statusBar().addPermanentWidget(probe)
    slider = window.cube_view.band_slider
    old_minimum = slider.minimumWidth()
    slider.setMinimumWidth(0)
    slider.setMaximumWidth(30)
    window.tabs.setCurrentWidget(window.cube_view)
    window.cube_view.mode_box.setCurrentIndex(1)  # the slider's row
    _settle(window, 1366, 768)
    try:
        problems = layout_problems(window)
        assert any("far too long" in p for p in problems), problems
        assert any("slider" in p for p in problems), problems
    finally:
        window.statusBar().removeWidget(probe)
        probe.deleteLater()
        slider.setMaximumWidth(16777215)
        slider.setMinimumWidth(old_minimum)
        window.cube_view.mode_box.setCurrentIndex(0)


def test_a_long_warp_read_out_does_not_widen_the_window(demo_window):
    window = demo_window
    _settle(window, 1024, 700)
    window.tabs.setCurrentWidget(window.warp_view)
    before = window.centralWidget().minimumSizeHint().width()
    window.warp_view.info.setText("guide pixel (12, 34): 784 proxy sources, 120 drawn (weight ≥ 2% of the heaviest, "
                                  "0.031); they hold 87% of the weight " * 3)
    window.compare_view.info.setText("a long explanation " * 30)
    _settle(window, 1024, 700)
    assert window.centralWidget().minimumSizeHint().width() == before
    assert window.findChild(QDockWidget, "Target set").width() >= 179
    assert layout_problems(window) == []
    window.tabs.setCurrentIndex(0)


def test_a_real_imec_capture_opens_explained_and_laid_out(demo_window, qtbot, tmp_path):
    from conftest import shared_file

    window = demo_window
    path = shared_file("envi", "VIS_leaves_FD1_FN0_original.hdr")
    before = len(window.session.targets)
    window.open_paths([path])
    qtbot.waitUntil(lambda: len(window.session.targets) == before + 1 and not window.jobs.busy, timeout=60000)
    window.session.set_current(before)
    window.tabs.setCurrentWidget(window.cube_view)
    window._on_pixel_clicked(120, 260, False)
    # The loader's note about the dark 16-bit data reaches the window, and the plot says so.
    qtbot.waitUntil(lambda: any(path.name in m for m in window.messages.messages()), timeout=5000)
    assert "dark data" in window.spectrum.note
    problems = []
    for width, height in SIZES:
        _settle(window, width, height)
        problems += [f"{width}×{height}: {p}" for p in layout_problems(window)]
        assert window.grab().save(str(tmp_path / f"imec_{width}x{height}.png"))
    assert problems == []
