"""The cube view: one layer of the current target as an RGB composite or a single band,
beside a second layer for comparison, with a line saying what is shown and what to do next.

Composed from pyqtgraph parts (``ImageItem`` in a ``ViewBox`` plus a
``HistogramLUTItem``) rather than ``ImageView``, as in pyqtgraph's image-analysis example.
The images are placed over the target's reference frame, so a super-resolution target's
low-resolution degraded cube lines up with its proxy, and every pixel coordinate the
view emits is a reference-frame (row, col).

The panel beside the main one ("Beside: auto") shows the most useful other layer: the
restored cube once the adapted model ran, else the proxy, else the clean reference, so a
fresh demo opens on *degraded | clean* and a finished run on *degraded | restored*. Both
panels share zoom, bands and display levels.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.session import Target
from app.views import stretch_levels
from app.views.band_controls import RGB_PRESETS, BandControls, Choice, fixed_combo
from hiralign.cube import Cube

__all__ = ["RGB_PRESETS", "CubeView", "SidePanel", "auto_beside", "describe_layer", "next_step"]
#: Choices of the "Beside" box besides the layer labels.
BESIDE_AUTO, BESIDE_NONE = "auto", "nothing"
#: What each layer is, for the panel titles and the hint line.
LAYER_WORDS = {
    "degraded": "the degraded observation (your file)",
    "proxy": "the proxy p: stage 1's restoration (the source model's, or the classical denoiser's)",
    "synth": "a synthesized training cube (the proxy's spectra warped onto a guide)",
    "restored": "restored by the adapted model",
    "clean": "the clean reference",
}
#: Smallest usable image area, px.
MINIMUM_IMAGE_SIZE = (240, 180)


def describe_layer(label: str) -> str:
    """What a layer label such as ``"synth 2"`` shows, in words."""
    return LAYER_WORDS.get(label.split()[0], label)


def auto_beside(target: Target | None, shown: str) -> str | None:
    """The layer worth showing beside ``shown``: restored, else proxy, else clean (None: nothing)."""
    if target is None:
        return None
    labels = [label for label, _ in target.layers()]
    return next((label for label in ("restored", "proxy", "clean") if label in labels and label != shown), None)


def next_step(target: Target | None) -> str:
    """One sentence: what to do next with ``target``."""
    if target is None:
        return "Open cubes (Ctrl+O), drop files on the window, or open the demo target set (Ctrl+D)."
    if target.proxy is None:
        return ("Next: press Run all (Ctrl+R) in the Pipeline panel — the source model restores every cube, "
                "then it is adapted to these scenes and both are scored.")
    if target.restored is None:
        return "Next: Run all continues — guides → spectral warp → finetune → evaluate."
    if target.metrics:
        return "Click a pixel to compare spectra; the Training tab scores the source vs the adapted model."
    return "Click a pixel to compare spectra of every layer; Shift-click pins one."


class SidePanel:
    """The panel beside the main image: caption, view box linked to the main one, image,
    pin and cursor markers; put into a ``GraphicsLayout`` only while it shows a layer.

    Args:
        main_box: the main panel's view box (zoom and pan are shared).
    """

    def __init__(self, main_box: pg.ViewBox) -> None:
        self.title = pg.LabelItem("", size="9pt")
        self.box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.box.setXLink(main_box)
        self.box.setYLink(main_box)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.pins = pg.ScatterPlotItem(size=13, symbol="o", pen=pg.mkPen("k", width=2))
        self.cursor = pg.ScatterPlotItem(size=15, symbol="+", pen=pg.mkPen("#ffff00", width=2), brush=None)
        for item in (self.image, self.pins, self.cursor):
            self.box.addItem(item)
        self.shown = False

    def show(self, layout: pg.GraphicsLayout, label: str | None) -> None:
        """Put the panel into column 1 of ``layout`` captioned ``label``, or take it out (None)."""
        shown = label is not None
        if shown != self.shown:
            if shown:
                layout.addItem(self.title, row=0, col=1)
                layout.addItem(self.box, row=1, col=1)
            else:
                for item in (self.title, self.box):
                    layout.removeItem(item)
            self.shown = shown
        self.title.setText(label or "")
        if not shown:
            self.image.clear()

    def sync(self, main: pg.ImageItem) -> None:
        """Use the main image's levels and colour table, so brightness compares across panels."""
        if self.image.image is not None and main.image is not None:
            self.image.setLookupTable(main.lut)
            self.image.setLevels(main.getLevels())


def build_context_menu(view: CubeView) -> QMenu:
    """The image's right-click menu (built fresh: it reflects the view's current state)."""
    menu = QMenu(view)
    menu.addAction(view.fit_action)
    menu.addAction("Stretch 2–98 %", view.stretch)
    roi = menu.addAction("Show ROI (mean ± std in the spectrum plot)")
    roi.setCheckable(True)
    roi.setChecked(view.roi_check.isChecked())
    roi.toggled.connect(view.roi_check.setChecked)
    for title, box in (("Layer", view.layer_box), ("Beside", view.beside_box), ("Display", view.mode_box)):
        sub = menu.addMenu(title)
        for i in range(box.count()):
            action = sub.addAction(box.itemText(i), lambda b=box, k=i: b.setCurrentIndex(k))
            action.setCheckable(True)
            action.setChecked(i == box.currentIndex())
    return menu


class CubeView(QWidget):
    """Shows a target's layers; emits clicks, hovers, band and ROI changes.

    Signals:
        pixel_clicked(row, col, pin): left click at a reference-frame pixel; ``pin`` is
            True with Shift held.
        hovered(text): the read-out "row, col, λ, value" for the status bar.
        bands_changed(list): wavelengths (nm) on display (3 in RGB mode, else 1).
        roi_changed(object): (top, left, height, width) in the reference frame, or None.
        layer_changed(str): the label of the layer on display.
    """

    pixel_clicked = Signal(int, int, bool)
    hovered = Signal(str)
    bands_changed = Signal(list)
    roi_changed = Signal(object)
    layer_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.target: Target | None = None
        self.cube: Cube | None = None
        self.side_cube: Cube | None = None
        self._building = False
        self._build_controls()
        self._build_images()
        self._build_layout()
        self._connect()
        self._update_hint()

    # -- construction ------------------------------------------------------------------
    def _build_controls(self) -> None:
        # Fixed by content length, not by the longest item: long names elide, the rows hold at 1024 px.
        self.layer_box = fixed_combo("Layer of the current target to display", 8)
        self.beside_box = fixed_combo("Layer shown beside it, same bands, zoom and levels (auto: restored, else "
                                      "proxy, else clean reference)", 8)
        self.bands = BandControls(self)
        self.mode_box, self.preset_box = self.bands.mode_box, self.bands.preset_box
        self.channel_boxes, self.band_slider, self.band_label = (self.bands.channel_boxes, self.bands.band_slider,
                                                                 self.bands.band_label)
        self.channel_row, self.band_row = self.bands.channel_row, self.bands.band_row
        self.fit_button = QToolButton(text="Fit", toolTip="Fit the image to the view (Ctrl+0); right-click the "
                                      "image for more")
        self.stretch_button = QPushButton("Stretch 2–98 %", toolTip="Set the display levels to the 2nd–98th "
                                          "percentiles of the image (per channel)")
        self.roi_check = QCheckBox("ROI", toolTip="Show a rectangle; the spectrum plot shows its mean ± std")
        self.hint = QLabel(wordWrap=True)
        self.hint.setStyleSheet("color: #404040")
        self.fit_action = QAction("Fit image to view", self, shortcut="Ctrl+0")
        self.addAction(self.fit_action)

    def _build_images(self) -> None:
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setMinimumSize(*MINIMUM_IMAGE_SIZE)
        self.title = self.graphics.addLabel("", row=0, col=0, size="9pt")
        self.view_box = self.graphics.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image)
        self.side = SidePanel(self.view_box)
        self.side_box, self.side_image = self.side.box, self.side.image
        self.histogram = pg.HistogramLUTItem(image=self.image)
        self.graphics.addItem(self.histogram, row=0, col=2, rowspan=2)
        self.pin_markers = pg.ScatterPlotItem(size=13, symbol="o", pen=pg.mkPen("k", width=2))
        self.cursor_marker = pg.ScatterPlotItem(size=15, symbol="+", pen=pg.mkPen("#ffff00", width=2), brush=None)
        for item in (self.pin_markers, self.cursor_marker):
            self.view_box.addItem(item)
        self.roi = pg.RectROI([0, 0], [8, 8], pen=pg.mkPen("#00e5ff", width=2))
        self.roi.setZValue(10)
        self._frame: tuple[int, int] | None = None
        #: Display choice per target uid: (mode index, R/G/B band indices, single band).
        self._choices: dict[int, Choice] = {}
        self._shown_uid: int | None = None

    def _build_layout(self) -> None:
        row1 = QHBoxLayout()
        for widget in (QLabel("Layer"), self.layer_box, QLabel("Beside"), self.beside_box):
            row1.addWidget(widget)
        row1.addStretch(1)
        row1.addWidget(self.fit_button)
        row1.addWidget(self.roi_check)
        row2 = QHBoxLayout()
        row2.addWidget(self.mode_box)
        row2.addWidget(self.preset_box, 1)
        row2.addWidget(self.stretch_button)
        # Row 3: the R/G/B pickers in RGB mode, the band slider in single-band mode.
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(3)
        for row in (row1, row2):
            layout.addLayout(row)
        layout.addWidget(self.channel_row)
        layout.addWidget(self.band_row)
        layout.addWidget(self.hint)
        layout.addWidget(self.graphics, 1)

    def _connect(self) -> None:
        self.layer_box.currentIndexChanged.connect(self._on_layer_changed)
        self.beside_box.currentIndexChanged.connect(lambda _i: self._refresh_image() if not self._building else None)
        self.bands.changed.connect(self._refresh_image)
        self.stretch_button.clicked.connect(self.stretch)
        self.fit_button.clicked.connect(self.fit)
        self.fit_action.triggered.connect(self.fit)
        self.roi_check.toggled.connect(self._toggle_roi)
        self.roi.sigRegionChangeFinished.connect(lambda *_: self.roi_changed.emit(self.roi_bounds()))
        self.histogram.sigLevelsChanged.connect(self._sync_side_display)
        self.histogram.sigLookupTableChanged.connect(self._sync_side_display)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)
        self._hover_proxy = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30,
                                           slot=lambda args: self._on_hover(args[0]))

    # -- public API --------------------------------------------------------------------
    def set_target(self, target: Target | None, keep_view: bool = False) -> None:
        """Show ``target`` (or nothing), keeping the layer label and bands when possible."""
        previous_label = self.layer_box.currentText()
        previous_beside = self.beside_box.currentText()
        new_target = target is not self.target
        self.target = target
        self._building = True
        self.layer_box.clear()
        self.beside_box.clear()
        if target is not None:
            labels = [label for label, _ in target.layers()]
            self.layer_box.addItems(labels)
            index = self.layer_box.findText(previous_label)
            self.layer_box.setCurrentIndex(max(index, 0))
            self.beside_box.addItems([BESIDE_AUTO, BESIDE_NONE, *labels])
            self.beside_box.setCurrentIndex(max(self.beside_box.findText(previous_beside), 0))
        self._building = False
        if new_target:
            self._fit_roi_to_target()
        self._on_layer_changed(keep_view=keep_view)

    def current_layer(self) -> str:
        return self.layer_box.currentText()

    def beside_layer(self) -> str | None:
        """The label of the layer shown beside the main one, or None."""
        choice = self.beside_box.currentText()
        if choice in ("", BESIDE_AUTO):
            return auto_beside(self.target, self.current_layer())
        if choice == BESIDE_NONE or self.target is None or self.target.layer(choice) is None:
            return None
        return choice

    def select_layer(self, label: str) -> bool:
        index = self.layer_box.findText(label)
        if index >= 0:
            self.layer_box.setCurrentIndex(index)
        return index >= 0

    def displayed_bands(self) -> list[int]:
        return self.bands.bands()

    def displayed_wavelengths(self) -> list[float]:
        if self.cube is None:
            return []
        wl = self.cube.wavelengths_or_default()
        return [float(wl[b]) for b in self.displayed_bands()]

    def set_pins(self, pins: list[tuple[int, int, str]]) -> None:
        """Draw colour-matched markers at pinned reference-frame pixels (in both panels)."""
        for markers in (self.pin_markers, self.side.pins):
            markers.setData([c + 0.5 for _, c, _ in pins], [r + 0.5 for r, _, _ in pins],
                            brush=[pg.mkBrush(QColor(colour)) for _, _, colour in pins])

    def set_cursor(self, row: int | None, col: int | None) -> None:
        for marker in (self.cursor_marker, self.side.cursor):
            if row is None or col is None:
                marker.setData([], [])
            else:
                marker.setData([col + 0.5], [row + 0.5])

    def roi_bounds(self) -> tuple[int, int, int, int] | None:
        """(top, left, height, width) of the ROI clipped to the reference frame, or None."""
        if not self.roi_check.isChecked() or self.target is None:
            return None
        ref_h, ref_w = self.target.reference_shape()
        x, y = self.roi.pos()
        w, h = self.roi.size()
        top, left = max(int(round(y)), 0), max(int(round(x)), 0)
        bottom, right = min(int(round(y + h)), ref_h), min(int(round(x + w)), ref_w)
        if bottom <= top or right <= left:
            return None
        return top, left, bottom - top, right - left

    def fit(self) -> None:
        """Fit the image to the view: the image alone, never stale ROI or markers of another cube."""
        if self.image.image is not None:
            self.view_box.autoRange(padding=0.0, items=[self.image])

    def stretch(self) -> None:
        """Set the levels to the 2–98 % percentiles of what is on display."""
        data = self.image.image
        if data is None:
            return
        levels = stretch_levels(data)
        if data.ndim == 3:
            self.histogram.setLevelMode("rgba")
            self.histogram.setLevels(rgba=[tuple(level) for level in levels])
            self.image.setLevels(levels)
        else:
            self.histogram.setLevelMode("mono")
            self.histogram.setLevels(*levels[0])
        self._sync_side_display()

    def context_menu(self) -> QMenu:
        return build_context_menu(self)

    # -- internals ---------------------------------------------------------------------
    def _on_layer_changed(self, *_args: object, keep_view: bool = False) -> None:
        if self._building:
            return
        label = self.layer_box.currentText()
        cube = self.target.layer(label) if (self.target is not None and label) else None
        if keep_view and cube is not None and cube is self.cube and self._side_is_current():
            self._update_hint()
            return  # another layer changed: what is on display did not
        same_bands = (self.cube is not None and cube is not None and cube.n_bands == self.cube.n_bands
                      and np.array_equal(cube.wavelengths_or_default(), self.cube.wavelengths_or_default()))
        self.cube = cube
        uid = self.target.uid if self.target is not None else None
        target_changed, self._shown_uid = uid != self._shown_uid, uid
        if not same_bands:
            self.bands.set_cube(cube)
        if target_changed and uid in self._choices:
            self.bands.restore(*self._choices[uid])  # each target keeps its own bands and mode
        # Fit when the picture's frame changed (another cube, not just another layer): the
        # user's zoom survives switching layers, a new cube never opens in a corner.
        frame = self.target.reference_shape() if self.target is not None else None
        refit = not keep_view and (not same_bands or frame != self._frame)
        self._frame = frame
        self._refresh_image(autorange=refit)
        self.layer_changed.emit(label)

    def _side_is_current(self) -> bool:
        label = self.beside_layer()
        side = self.target.layer(label) if (self.target is not None and label) else None
        return side is self.side_cube

    def _band_data(self, cube: Cube, bands: list[int]) -> np.ndarray:
        """The displayed bands of ``cube`` (by wavelength when its bands differ from the main cube's)."""
        if self.cube is not None and cube.n_bands != self.cube.n_bands:
            wl = self.cube.wavelengths_or_default()
            bands = [cube.band_index(float(wl[b])) for b in bands]
        return np.ascontiguousarray(cube.data[:, :, bands] if len(bands) == 3 else cube.data[:, :, bands[0]])

    def _refresh_image(self, *_args: object, autorange: bool = False) -> None:
        if self._building:
            return
        if self.cube is None or self.target is None:
            self.image.clear()
            self.side_cube = None
            self.side.show(self.graphics.ci, None)
            self.title.setText("")
            self.bands_changed.emit([])
            self._update_hint()
            return
        bands = self.displayed_bands()
        data = self._band_data(self.cube, bands)
        self.image.setImage(data, autoLevels=False)
        ref_h, ref_w = self.target.reference_shape()
        self.image.setRect(QRectF(0, 0, ref_w, ref_h))
        if data.ndim == 2:
            self.histogram.gradient.loadPreset("grey")
        label = self.beside_layer()
        self.side_cube = self.target.layer(label) if label else None
        if self.side_cube is not None:
            self.side_image.setImage(self._band_data(self.side_cube, bands), autoLevels=False)
            self.side_image.setRect(QRectF(0, 0, ref_w, ref_h))
        self.side.show(self.graphics.ci, label)
        self._choices[self.target.uid] = self.bands.choice()
        self.title.setText(self.current_layer() if label else "")
        self.stretch()
        if autorange:
            self.fit()
        self._update_hint()
        self.bands_changed.emit(self.displayed_wavelengths())

    def _sync_side_display(self, *_args: object) -> None:
        self.side.sync(self.image)

    def _update_hint(self) -> None:
        target, label = self.target, self.current_layer()
        if target is None or not label:
            self.hint.setText(next_step(None))
            return
        side = self.beside_layer()
        shown = (f"Left: {describe_layer(label)}. Right: {describe_layer(side)}." if side
                 else f"Shown: {describe_layer(label)}.")
        self.hint.setText(f"{shown} {next_step(target)}")

    def _fit_roi_to_target(self) -> None:
        """Keep the ROI inside a newly shown target (a smaller cube after a larger one)."""
        if self.target is None:
            return
        ref_h, ref_w = self.target.reference_shape()
        x, y = self.roi.pos()
        w, h = self.roi.size()
        if x < 0 or y < 0 or x + w > ref_w or y + h > ref_h:
            self.roi.setPos((ref_w // 4, ref_h // 4), finish=False)
            self.roi.setSize((max(ref_w // 4, 2), max(ref_h // 4, 2)), finish=False)
        if self.roi_check.isChecked():
            self.roi_changed.emit(self.roi_bounds())

    def _toggle_roi(self, on: bool) -> None:
        if on and self.target is not None:
            ref_h, ref_w = self.target.reference_shape()
            if self.roi.scene() is None:
                self.roi.setPos((ref_w // 4, ref_h // 4))
                self.roi.setSize((max(ref_w // 4, 2), max(ref_h // 4, 2)))
            self.view_box.addItem(self.roi, ignoreBounds=True)
        elif self.roi.scene() is not None:
            self.view_box.removeItem(self.roi)
        self.roi_changed.emit(self.roi_bounds())

    def _panel_at(self, scene_pos) -> tuple[pg.ViewBox, Cube | None] | None:
        if self.view_box.sceneBoundingRect().contains(scene_pos):
            return self.view_box, self.cube
        if self.side.shown and self.side_box.sceneBoundingRect().contains(scene_pos):
            return self.side_box, self.side_cube
        return None

    def _scene_to_pixel(self, scene_pos) -> tuple[int, int] | None:
        panel = self._panel_at(scene_pos)
        if self.target is None or panel is None:
            return None
        point = panel[0].mapSceneToView(scene_pos)
        row, col = math.floor(point.y()), math.floor(point.x())
        ref_h, ref_w = self.target.reference_shape()
        return (row, col) if 0 <= row < ref_h and 0 <= col < ref_w else None

    def _on_click(self, event) -> None:
        if event.button() == Qt.MouseButton.RightButton and self._panel_at(event.scenePos()) is not None:
            event.accept()
            self.context_menu().popup(QCursor.pos())
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pixel = self._scene_to_pixel(event.scenePos())
        if pixel is None:
            return
        pin = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if not pin:
            self.set_cursor(*pixel)
        self.pixel_clicked.emit(pixel[0], pixel[1], pin)

    def _on_hover(self, scene_pos) -> None:
        pixel = self._scene_to_pixel(scene_pos)
        panel = self._panel_at(scene_pos)
        cube = panel[1] if panel is not None else None
        if pixel is None or cube is None or self.target is None:
            self.hovered.emit("")
            return
        r, c = self.target.to_layer_pixel(cube, *pixel)
        wl = cube.wavelengths_or_default()
        bands = self.displayed_bands()
        if cube.n_bands != self.cube.n_bands:
            bands = [cube.band_index(w) for w in self.displayed_wavelengths()]
        name = self.current_layer() if cube is self.cube else (self.beside_layer() or "")
        values = ", ".join(f"{wl[b]:.0f} nm = {cube.data[r, c, b]:.4g}" for b in bands)
        self.hovered.emit(f"row {pixel[0]}, col {pixel[1]}  ·  {name}: {values}")
