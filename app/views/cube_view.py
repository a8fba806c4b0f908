"""The cube view: one layer of the current target as an RGB composite or a single band.

Composed from pyqtgraph parts (``ImageItem`` in a ``ViewBox`` plus a
``HistogramLUTItem``) rather than ``ImageView``, as in pyqtgraph's image-analysis example.
The image is placed over the target's reference frame, so a super-resolution target's
low-resolution degraded cube lines up with its proxy, and every pixel coordinate the
view emits is a reference-frame (row, col).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from app.session import Target
from app.views import stretch_levels
from hiralign.cube import RGB_WAVELENGTHS_NM, Cube

#: Band-combination presets (R, G, B) in nm; offered when the cube covers them.
RGB_PRESETS: dict[str, tuple[float, float, float]] = {
    "Γ pseudo-RGB 660/550/470 nm": RGB_WAVELENGTHS_NM,
    "True colour 640/545/460 nm": (640.0, 545.0, 460.0),
    "Colour infrared 860/650/550 nm": (860.0, 650.0, 550.0),
    "SWIR 2200/1650/850 nm": (2200.0, 1650.0, 850.0),
}
#: A preset is offered when each of its wavelengths lies within this many nm of the cube's range.
PRESET_TOLERANCE_NM = 25.0


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
        self._building = False

        self.layer_box = QComboBox(toolTip="Layer of the current target to display")
        self.layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_box.setMinimumContentsLength(9)
        self.mode_box = QComboBox(toolTip="RGB composite of three bands, or one band")
        self.mode_box.addItems(["RGB composite", "Single band"])
        self.preset_box = QComboBox(toolTip="Band combination presets (wavelengths in nm)")
        self.preset_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.channel_boxes = [QComboBox(toolTip=f"{name} channel band") for name in ("Red", "Green", "Blue")]
        for box in self.channel_boxes:
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            box.setMinimumContentsLength(9)
        self.band_slider = QSlider(Qt.Orientation.Horizontal, toolTip="Band shown in single-band mode")
        self.band_label = QLabel("— nm")
        self.band_label.setMinimumWidth(150)
        self.stretch_button = QPushButton("Stretch 2–98 %", toolTip="Set the display levels to the 2nd–98th "
                                          "percentiles of the image (per channel)")
        self.roi_check = QCheckBox("ROI", toolTip="Show a rectangle; the spectrum plot shows its mean ± std")

        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Layer"))
        row1.addWidget(self.layer_box)
        row1.addWidget(self.mode_box)
        row1.addWidget(self.preset_box)
        row1.addStretch(1)
        row1.addWidget(self.stretch_button)
        row1.addWidget(self.roi_check)
        row2 = QHBoxLayout()
        for name, box in zip("RGB", self.channel_boxes):
            label = QLabel(name)
            label.setStyleSheet(f"color: {dict(R='#c00000', G='#008000', B='#0000c0')[name]}; font-weight: bold")
            row2.addWidget(label)
            row2.addWidget(box)
        row2.addWidget(QLabel("Band"))
        row2.addWidget(self.band_slider, 1)
        row2.addWidget(self.band_label)

        self.graphics = pg.GraphicsLayoutWidget()
        self.view_box = self.graphics.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image)
        self.histogram = pg.HistogramLUTItem(image=self.image)
        self.graphics.addItem(self.histogram, row=0, col=1)
        self.pin_markers = pg.ScatterPlotItem(size=13, symbol="o", pen=pg.mkPen("k", width=2))
        self.cursor_marker = pg.ScatterPlotItem(size=15, symbol="+", pen=pg.mkPen("#ffff00", width=2),
                                                brush=None)
        self.view_box.addItem(self.pin_markers)
        self.view_box.addItem(self.cursor_marker)
        self.roi = pg.RectROI([0, 0], [8, 8], pen=pg.mkPen("#00e5ff", width=2))
        self.roi.setZValue(10)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.graphics, 1)

        self.layer_box.currentIndexChanged.connect(self._on_layer_changed)
        self.mode_box.currentIndexChanged.connect(self._refresh_image)
        self.preset_box.currentIndexChanged.connect(self._apply_preset)
        for box in self.channel_boxes:
            box.currentIndexChanged.connect(self._on_channel_changed)
        self.band_slider.valueChanged.connect(self._on_band_changed)
        self.stretch_button.clicked.connect(self.stretch)
        self.roi_check.toggled.connect(self._toggle_roi)
        self.roi.sigRegionChangeFinished.connect(lambda *_: self.roi_changed.emit(self.roi_bounds()))
        self.graphics.scene().sigMouseClicked.connect(self._on_click)
        self._hover_proxy = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30,
                                           slot=lambda args: self._on_hover(args[0]))

    # -- public API --------------------------------------------------------------------
    def set_target(self, target: Target | None, keep_view: bool = False) -> None:
        """Show ``target`` (or nothing), keeping the layer label and bands when possible."""
        previous_label = self.layer_box.currentText()
        self.target = target
        self._building = True
        self.layer_box.clear()
        if target is not None:
            self.layer_box.addItems([label for label, _ in target.layers()])
            index = self.layer_box.findText(previous_label)
            self.layer_box.setCurrentIndex(max(index, 0))
        self._building = False
        self._on_layer_changed(keep_view=keep_view)

    def current_layer(self) -> str:
        return self.layer_box.currentText()

    def select_layer(self, label: str) -> bool:
        index = self.layer_box.findText(label)
        if index >= 0:
            self.layer_box.setCurrentIndex(index)
        return index >= 0

    def displayed_bands(self) -> list[int]:
        if self.mode_box.currentIndex() == 0:
            return [max(box.currentIndex(), 0) for box in self.channel_boxes]
        return [self.band_slider.value()]

    def displayed_wavelengths(self) -> list[float]:
        if self.cube is None:
            return []
        wl = self.cube.wavelengths_or_default()
        return [float(wl[b]) for b in self.displayed_bands()]

    def set_pins(self, pins: list[tuple[int, int, str]]) -> None:
        """Draw colour-matched markers at pinned reference-frame pixels."""
        self.pin_markers.setData([c + 0.5 for _, c, _ in pins], [r + 0.5 for r, _, _ in pins],
                                 brush=[pg.mkBrush(QColor(colour)) for _, _, colour in pins])

    def set_cursor(self, row: int | None, col: int | None) -> None:
        if row is None or col is None:
            self.cursor_marker.setData([], [])
        else:
            self.cursor_marker.setData([col + 0.5], [row + 0.5])

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

    # -- internals ---------------------------------------------------------------------
    def _on_layer_changed(self, *_args: object, keep_view: bool = False) -> None:
        if self._building:
            return
        label = self.layer_box.currentText()
        cube = self.target.layer(label) if (self.target is not None and label) else None
        if keep_view and cube is not None and cube is self.cube:
            return  # another layer changed: what is on display did not
        same_bands = (self.cube is not None and cube is not None and cube.n_bands == self.cube.n_bands
                      and np.array_equal(cube.wavelengths_or_default(), self.cube.wavelengths_or_default()))
        self.cube = cube
        if not same_bands:
            self._populate_band_controls()
        self._refresh_image(autorange=not keep_view and not same_bands)
        self.layer_changed.emit(label)

    def _populate_band_controls(self) -> None:
        self._building = True
        for box in self.channel_boxes:
            box.clear()
        self.preset_box.clear()
        if self.cube is not None:
            wl = self.cube.wavelengths_or_default()
            items = [f"{w:.1f} nm" for w in wl]
            for box in self.channel_boxes:
                box.addItems(items)
            lo, hi = wl.min() - PRESET_TOLERANCE_NM, wl.max() + PRESET_TOLERANCE_NM
            for name, triple in RGB_PRESETS.items():
                if all(lo <= t <= hi for t in triple):
                    self.preset_box.addItem(name, triple)
            self.preset_box.addItem("Custom")
            self.band_slider.setRange(0, self.cube.n_bands - 1)
            self.band_slider.setValue(self.cube.band_index(550.0) if self.cube.n_bands > 3 else 0)
            for box, band in zip(self.channel_boxes, self.cube.rgb_band_indices()):
                box.setCurrentIndex(band)
        self._building = False
        self._update_band_label()

    def _apply_preset(self) -> None:
        triple = self.preset_box.currentData()
        if self._building or self.cube is None or triple is None:
            return
        self._building = True
        for box, band in zip(self.channel_boxes, self.cube.rgb_band_indices(triple)):
            box.setCurrentIndex(band)
        self._building = False
        self.mode_box.setCurrentIndex(0)
        self._refresh_image()

    def _on_channel_changed(self) -> None:
        if self._building:
            return
        self._building = True
        wl = self.cube.wavelengths_or_default() if self.cube is not None else None
        chosen = [box.currentIndex() for box in self.channel_boxes]
        match = self.preset_box.count() - 1
        for i in range(self.preset_box.count()):
            triple = self.preset_box.itemData(i)
            if triple is not None and wl is not None and list(self.cube.rgb_band_indices(triple)) == chosen:
                match = i
                break
        self.preset_box.setCurrentIndex(match)
        self._building = False
        self.mode_box.setCurrentIndex(0)
        self._refresh_image()

    def _on_band_changed(self) -> None:
        self._update_band_label()
        if self._building:
            return
        if self.mode_box.currentIndex() != 1:
            self.mode_box.setCurrentIndex(1)  # refreshes the image
        else:
            self._refresh_image()

    def _update_band_label(self) -> None:
        if self.cube is None:
            self.band_label.setText("— nm")
            return
        b = self.band_slider.value()
        self.band_label.setText(f"{self.cube.wavelengths_or_default()[b]:.1f} nm  (band {b + 1}/{self.cube.n_bands})")

    def _refresh_image(self, *_args: object, autorange: bool = False) -> None:
        if self._building:
            return
        if self.cube is None or self.target is None:
            self.image.clear()
            self.bands_changed.emit([])
            return
        bands = self.displayed_bands()
        data = self.cube.data[:, :, bands] if len(bands) == 3 else self.cube.data[:, :, bands[0]]
        self.image.setImage(np.ascontiguousarray(data), autoLevels=False)
        ref_h, ref_w = self.target.reference_shape()
        self.image.setRect(QRectF(0, 0, ref_w, ref_h))
        if data.ndim == 2:
            self.histogram.gradient.loadPreset("grey")
        self.stretch()
        if autorange:
            self.view_box.autoRange(padding=0.0)
        self.bands_changed.emit(self.displayed_wavelengths())

    def _toggle_roi(self, on: bool) -> None:
        if on and self.target is not None:
            ref_h, ref_w = self.target.reference_shape()
            if self.roi.scene() is None:
                self.roi.setPos((ref_w // 4, ref_h // 4))
                self.roi.setSize((max(ref_w // 4, 2), max(ref_h // 4, 2)))
            self.view_box.addItem(self.roi)
        elif self.roi.scene() is not None:
            self.view_box.removeItem(self.roi)
        self.roi_changed.emit(self.roi_bounds())

    def _scene_to_pixel(self, scene_pos) -> tuple[int, int] | None:
        if self.target is None or not self.view_box.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.view_box.mapSceneToView(scene_pos)
        row, col = math.floor(point.y()), math.floor(point.x())
        ref_h, ref_w = self.target.reference_shape()
        return (row, col) if 0 <= row < ref_h and 0 <= col < ref_w else None

    def _on_click(self, event) -> None:
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
        if pixel is None or self.cube is None or self.target is None:
            self.hovered.emit("")
            return
        r, c = self.target.to_layer_pixel(self.cube, *pixel)
        wl = self.cube.wavelengths_or_default()
        values = ", ".join(f"{wl[b]:.0f} nm = {self.cube.data[r, c, b]:.4g}" for b in self.displayed_bands())
        self.hovered.emit(f"row {pixel[0]}, col {pixel[1]}  ·  {self.current_layer()}: {values}")
