"""The main window: wiring only. Views, panels, jobs and state live in their own modules."""
from __future__ import annotations

import logging
import platform
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QTabWidget,
    QWidget,
)

from app.errors import ErrorReporter
from app.export import ExportActions
from app.jobs import JobManager
from app.opener import OPEN_FILTER, CubeOpener
from app.panels.pipeline_panel import PipelinePanel
from app.panels.target_list import TargetList
from app.runner import PipelineRunner
from app.session import Session
from app.settings import Preferences
from app.views.compare_view import CompareView
from app.views.cube_view import CubeView
from app.views.messages import MessageLog
from app.views.noise_view import NoiseView
from app.views.spectrum_plot import SpectrumPlot
from app.views.training_view import TrainingView
from app.views.warp_view import WarpView
from app.views.window_layout import (
    LayoutKeeper,
    apply_dock_minimums,
    fit_docks,
    initial_size,
    scrolled,
    shortcuts_dialog,
    user_guide_dialog,
)

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Target list (left), views in tabs (centre), spectra (bottom), pipeline (right)."""

    def __init__(self, prefs: Preferences | None = None) -> None:
        super().__init__()
        self.setWindowTitle("hiralign — adapt hyperspectral restoration to your data")
        self.resize(initial_size())
        self.setAcceptDrops(True)
        self.prefs = prefs or Preferences()
        self.session = Session()
        self.jobs = JobManager(self)
        self.errors = ErrorReporter(self)
        self.opener = CubeOpener(self.jobs, self.prefs, self.errors, parent_widget=self)

        self.target_list = TargetList(self.session)
        self.cube_view = CubeView()
        self.spectrum = SpectrumPlot()
        self.compare_view = CompareView()
        self.warp_view = WarpView()
        self.training_view = TrainingView(self.session)
        self.noise_view = NoiseView()
        self.tabs = QTabWidget()
        self._stale_tabs: set[QWidget] = set()
        for widget, title in ((self.cube_view, "Cube"), (self.compare_view, "Compare"),
                              (self.warp_view, "Warp"), (self.training_view, "Training"), (self.noise_view, "Noise")):
            self.tabs.addTab(widget, title)
        self.setCentralWidget(self.tabs)
        self._dock("Target set", self.target_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        bottom = self._dock("Spectra", self.spectrum, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.messages = MessageLog()  # the core's warnings, tabbed behind the spectra
        self.tabifyDockWidget(bottom, self._dock("Messages", self.messages, Qt.DockWidgetArea.BottomDockWidgetArea))
        bottom.raise_()
        self.pipeline = self._make_pipeline_panel()
        apply_dock_minimums(self)
        fit_docks(self)
        self.readout = QLabel()
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the window
        self.statusBar().addWidget(self.readout, 1)

        self._build_menus()
        self._connect()
        self.messages.install()
        self.messages.message.connect(lambda text: self.statusBar().showMessage(f"⚠ {text}  (View ▸ Messages)", 10000))
        self.layout_keeper = LayoutKeeper(self, self.prefs.store)
        self.layout_keeper.restore()
        #: Load-time analyses queued or running, by (target uid, task, model folder).
        self._analysing: set[tuple[int, str, str | None]] = set()
        #: Notes already sent to the Messages dock, by (target uid, text): each is said once.
        self._posted: set[tuple[int, str]] = set()
        self.check_availability()

    # -- construction ------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _make_pipeline_panel(self) -> PipelinePanel:
        work_dir = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)) / "runs"
        self.runner = PipelineRunner(self.session, self.jobs, self.errors, work_dir)
        panel = PipelinePanel(self.runner, self.prefs)
        self._dock("Pipeline", scrolled(panel), Qt.DockWidgetArea.RightDockWidgetArea)  # scrolls in short windows
        return panel

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self._action("&Open cubes…", self.open_dialog, QKeySequence.StandardKey.Open))
        file_menu.addAction(self._action("Open CAVE PNG &folder…", self.open_folder_dialog, "Ctrl+Shift+O"))
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addAction(self._action("Open &demo target set", self.open_demo, "Ctrl+D"))
        file_menu.addSeparator()
        self.export_menu = file_menu.addMenu("&Export")
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))

        view_menu = self.menuBar().addMenu("&View")
        for index in range(self.tabs.count()):
            view_menu.addAction(self._action(self.tabs.tabText(index), lambda i=index: self.tabs.setCurrentIndex(i),
                                             f"Ctrl+{index + 1}"))
        view_menu.addSeparator()
        view_menu.addAction(self._action("Clear pinned spectra", self.spectrum.clear_pins, "Ctrl+Shift+P"))
        view_menu.addAction(self._action("Stretch 2–98 %", self.cube_view.stretch, "Ctrl+T"))
        view_menu.addAction(self.cube_view.fit_action)
        view_menu.addSeparator()
        for dock in self.findChildren(QDockWidget):
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addAction(self._action("Reset layout", lambda: self.layout_keeper.reset()))

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("&User guide", self.show_user_guide, QKeySequence.StandardKey.HelpContents))
        help_menu.addAction(self._action("&Keyboard shortcuts", self.show_shortcuts, "Ctrl+/"))
        help_menu.addAction(self._action("&About hiralign", self.show_about))

        self.exporter = ExportActions(
            session=self.session, prefs=self.prefs, errors=self.errors, jobs=self.jobs, parent=self,
            figures=self.figure_widgets, tabs=self.tabs, spectra=self.spectrum, config=self.pipeline.config,
            status=lambda message: self.statusBar().showMessage(message, 5000))
        self.exporter.populate(self.export_menu)

    def figure_widgets(self) -> dict[str, QWidget]:
        """The views File ▸ Export ▸ Figures renders, by file stem: only those with something to show
        (an empty view made a blank PNG)."""
        target, session = self.session.current_target, self.session
        shown = {
            "cube": (self.cube_view.graphics, target is not None),
            "spectra": (self.spectrum.plot_widget, self.spectrum.has_curves()),
            "compare": (self.compare_view.graphics, target is not None and bool(target.guides)),
            "warp": (self.warp_view, target is not None and bool(target.warps)),
            "training": (self.training_view, bool(session.loss_history) or any(t.metrics for t in session.targets)),
            "noise": (self.noise_view, target is not None and target.analysis is not None
                      and target.analysis.noise is not None),
        }
        return {name: widget for name, (widget, has_content) in shown.items() if has_content}

    def _action(self, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        def run(_checked: bool = False) -> None:
            slot()

        action.triggered.connect(run)
        return action

    def _connect(self) -> None:
        session = self.session
        self.opener.opened.connect(lambda cube, path: session.add_target(cube, path))
        session.current_changed.connect(lambda _i: self._show_target(keep_view=False))
        session.target_updated.connect(self._on_target_updated)
        self.cube_view.pixel_clicked.connect(self._on_pixel_clicked)
        self.cube_view.hovered.connect(self.readout.setText)
        self.cube_view.bands_changed.connect(self.spectrum.set_band_lines)
        self.cube_view.roi_changed.connect(self.spectrum.set_roi)
        self.cube_view.layer_changed.connect(self.spectrum.set_layer)
        self.spectrum.pins_changed.connect(self.cube_view.set_pins)
        self.target_list.attach_clean_requested.connect(self.attach_clean_dialog)
        self.pipeline.loss_streamed.connect(self.training_view.set_loss)
        session.targets_changed.connect(self.analyse_targets)
        self.pipeline.model_changed.connect(self.analyse_targets)
        self.tabs.currentChanged.connect(lambda _index: self._refresh_visible_tab())

    # -- showing -----------------------------------------------------------------------
    def _show_target(self, keep_view: bool) -> None:
        target = self.session.current_target
        # The spectrum first: it forgets the old target's ROI, then the cube view announces its
        # own (kept on when ticked, moved inside a new cube), so a ticked ROI is always plotted.
        self.spectrum.set_target(target)
        self.cube_view.set_target(target, keep_view=keep_view)
        # Hidden tabs redraw when shown: results streaming in must not redraw unseen views.
        self._stale_tabs = {self.compare_view, self.warp_view, self.noise_view}
        self._refresh_visible_tab()

    def _refresh_visible_tab(self) -> None:
        widget = self.tabs.currentWidget()
        if widget in self._stale_tabs:
            self._stale_tabs.discard(widget)
            widget.set_target(self.session.current_target)

    def _on_target_updated(self, index: int) -> None:
        if index == self.session.current:
            self._show_target(keep_view=True)

    def _on_pixel_clicked(self, row: int, col: int, pin: bool) -> None:
        if pin:
            self.spectrum.pin_pixel(row, col)
        else:
            self.spectrum.show_pixel(row, col)

    # -- load-time analysis ------------------------------------------------------------
    def check_availability(self) -> None:
        """Find out in the background which generators and devices this machine can run."""
        from app.analysis import availability

        # Its own queue: it imports torch (seconds) and must not delay opening files.
        job = self.jobs.submit("check availability", lambda _p: availability(), device="probe")
        job.finished.connect(self.pipeline.set_availability)
        job.failed.connect(lambda summary, _details: log.warning("availability check failed: %s", summary))

    def analyse_targets(self) -> None:
        """Analyse every target whose notes are missing or were made for another task or model.

        Runs in the background (:func:`app.analysis.target_analysis`): how the selected model
        will treat each cube, and its blind noise estimate (once per cube; a new model only
        redoes the notes). The notes reach the Messages dock and the status bar.
        """
        from app.analysis import target_analysis

        task = self.pipeline.task_box.currentText()
        model = self.pipeline.model_box.currentData()
        model = None if model is None else str(model)
        for target in self.session.targets:
            done = target.analysis
            key = (target.uid, task, model)
            if (done is not None and (done.task, done.model) == (task, model)) or key in self._analysing:
                continue
            self._analysing.add(key)
            noise = done is None or (done.noise is None and not done.noise_error)
            cube, uid = target.degraded, target.uid
            job = self.jobs.submit(f"analyse {target.name}",
                                   lambda _p, c=cube, n=noise: target_analysis(c, task, model, noise=n), device="io")
            job.finished.connect(lambda result, uid=uid, old=done: self._analysed(uid, result, old))
            job.ended.connect(lambda key=key: self._analysing.discard(key))
            job.failed.connect(lambda summary, _details, name=target.name: log.warning(
                "%s: the load-time analysis failed: %s", name, summary))

    def _analysed(self, uid: int, result, old) -> None:
        import dataclasses

        index = self.session.index_of(uid)
        if index is None:
            return  # removed while it was analysed
        if old is not None and result.noise is None and not result.noise_error:
            result = dataclasses.replace(result, noise=old.noise, noise_error=old.noise_error)
        for note in result.notes:
            if (uid, note) not in self._posted:
                self._posted.add((uid, note))
                log.warning(note)  # the Messages dock, the status bar and stderr
        self.session.set_analysis(index, result)

    # -- opening -----------------------------------------------------------------------
    def open_paths(self, paths: list[str | Path]) -> None:
        for path in paths:
            self.opener.open(path)

    def open_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open target cubes", self.prefs.last_folder("open"), OPEN_FILTER)
        self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a CAVE-style folder of PNG bands",
                                                  self.prefs.last_folder("open"))
        if folder:
            self.open_paths([folder])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.prefs.recent_files:
            self.recent_menu.addAction(path, lambda p=path: self.open_paths([p]))
        if not self.prefs.recent_files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def attach_clean_dialog(self, index: int) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Clean reference", self.prefs.last_folder("open"), OPEN_FILTER)
        if path:
            self.attach_clean(index, path)

    def attach_clean(self, index: int, path: str | Path) -> None:
        """Load ``path`` as the clean reference of target ``index`` (on the same bands)."""
        from hiralign.errors import InputError
        from hiralign.stages import check_reference

        def ready(cube, _path) -> None:
            target = self.session.targets[index]
            try:
                check_reference(cube, target.degraded, path)  # the rule scoring applies, in the CLI too
            except InputError as exc:
                self.errors.show(str(exc))
                return
            self.session.set_clean(index, cube, path)

        self.opener.open(path, on_ready=ready, recent=False)

    def open_demo(self) -> None:
        from app.demo import DEMO_DIR, load_demo

        job = self.jobs.submit("open demo", lambda progress: load_demo(DEMO_DIR, progress), device="io")
        job.finished.connect(self._demo_loaded)
        job.failed.connect(lambda summary, details: self.errors.show(summary, details))

    def _demo_loaded(self, demo) -> None:
        for item in demo.targets:
            self.session.add_target(item.degraded, item.path, clean=item.clean, clean_path=item.clean_path)
        self.pipeline.apply_demo(demo)
        self.session.set_current(0)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        # A dropped ENVI pair opens once, by its header.
        headers = {Path(p).with_suffix(".hdr") for p in paths if Path(p).suffix.lower() == ".hdr"}
        self.open_paths([p for p in paths if Path(p).with_suffix(".hdr") not in headers
                         or Path(p).suffix.lower() == ".hdr"])
        event.acceptProposedAction()

    # -- misc --------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Pay torch's first-use costs in the background now, not when a stage starts."""
        from app.stages import warm_up

        job = self.jobs.submit("warm-up", warm_up, device=self.pipeline.device_box.currentText())
        job.failed.connect(lambda summary, details: log.warning("warm-up failed: %s\n%s", summary, details))

    def show_user_guide(self) -> QDialog:
        dialog = user_guide_dialog(self)
        dialog.show()
        return dialog

    def show_shortcuts(self) -> QDialog:
        dialog = shortcuts_dialog(self)
        dialog.show()
        return dialog

    def show_about(self) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Information, "About hiralign", about_text(), QMessageBox.StandardButton.Ok,
                          self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()
        return box

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        """Cancel running jobs and wait for their threads before the window goes."""
        if self.jobs.busy:
            self.statusBar().showMessage("Cancelling running jobs…")
        self.jobs.shutdown()
        self.errors.close_all()
        self.layout_keeper.save()
        self.pipeline.save_settings()
        self.messages.uninstall()
        super().closeEvent(event)


def about_text() -> str:
    """Versions of hiralign and the libraries it runs on (HTML)."""
    import numpy
    import pyqtgraph
    import PySide6
    import torch
    from PySide6.QtCore import qVersion

    import hiralign

    torch_line = f"torch {torch.__version__} (CUDA {'available' if torch.cuda.is_available() else 'not available'})"
    return (f"<h3>hiralign {hiralign.__version__}</h3>"
            "<p>Adapts hyperspectral restoration networks to a target domain with HIR-ALIGN: "
            "proxy → distribution-adaptive synthesis → aligned finetuning.</p>"
            f"<p>Python {platform.python_version()}<br>PySide6 {PySide6.__version__} (Qt {qVersion()})<br>"
            f"pyqtgraph {pyqtgraph.__version__}<br>numpy {numpy.__version__}<br>{torch_line}</p>")
