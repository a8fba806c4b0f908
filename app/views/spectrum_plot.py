"""The spectrum plot: every layer's spectrum at the clicked pixel, pinned pixels, ROI
statistics and a marker at the band(s) on display.

- A click shows the spectrum of each layer of the target at that pixel: degraded, proxy,
  each synthesized HSI at the pixel the warp maps there, restored, clean.
- Shift-click pins a pixel: its spectrum (of the layer on display) stays, in the colour of
  its marker on the image.
- With the ROI on, the mean ± one standard deviation over the rectangle (layer on display)
  is drawn as a line and a shaded band.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.session import Target
from app.views import PIN_COLOURS, layer_colour

#: Colours of the band lines in RGB mode (R, G, B channels).
CHANNEL_COLOURS = ("#c00000", "#008000", "#0000c0")


class SpectrumPlot(QWidget):
    """Plot of spectra against wavelength (nm).

    Attributes:
        curves: label -> PlotDataItem of the clicked pixel's layers.
        pins: pinned pixels as (row, col, colour) in the reference frame.
        pixel: the clicked reference-frame pixel, or None.

    Signals:
        pins_changed(list): the pinned pixels changed (for the image markers).
    """

    pins_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setLabel("bottom", "Wavelength", units="nm")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setLabel("left", "Value (relative, 0–1 scale)")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.plot.addLegend(offset=(10, 10), labelTextSize="9pt", brush=(255, 255, 255, 200),
                                          pen=(180, 180, 180))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

        self.target: Target | None = None
        self.layer = "degraded"
        self.pixel: tuple[int, int] | None = None
        self.pins: list[tuple[int, int, str]] = []
        self.roi: tuple[int, int, int, int] | None = None
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._pin_curves: list[pg.PlotDataItem] = []
        self._roi_items: list[pg.GraphicsObject] = []
        self._band_lines: list[pg.InfiniteLine] = []

    # -- inputs ------------------------------------------------------------------------
    def set_target(self, target: Target | None) -> None:
        """A new target (or new layers of the same one): redraw what is selected."""
        if target is not self.target:
            self.pixel, self.roi = None, None
            self.pins = []
            self.pins_changed.emit([])
        self.target = target
        self.redraw()

    def set_layer(self, label: str) -> None:
        """The layer on display (used for pins and ROI statistics)."""
        self.layer = label or "degraded"
        self.redraw()

    def show_pixel(self, row: int, col: int) -> None:
        self.pixel = (row, col)
        self.redraw()

    def pin_pixel(self, row: int, col: int) -> None:
        """Pin (row, col); pinning a pinned pixel again removes it."""
        existing = [p for p in self.pins if p[:2] == (row, col)]
        if existing:
            self.pins.remove(existing[0])
        else:
            used = {colour for *_, colour in self.pins}
            free = [c for c in PIN_COLOURS if c not in used] or list(PIN_COLOURS)
            self.pins.append((row, col, free[0]))
        self.pins_changed.emit(list(self.pins))
        self.redraw()

    def clear_pins(self) -> None:
        self.pins = []
        self.pins_changed.emit([])
        self.redraw()

    def set_roi(self, bounds: tuple[int, int, int, int] | None) -> None:
        self.roi = bounds
        self.redraw()

    def set_band_lines(self, wavelengths: list[float]) -> None:
        """Vertical lines at the band(s) on display."""
        for line in self._band_lines:
            self.plot.removeItem(line)
        colours = CHANNEL_COLOURS if len(wavelengths) == 3 else ("#555555",)
        self._band_lines = []
        for wl, colour in zip(wavelengths, colours):
            dashed = pg.mkPen(colour, width=1, style=pg.QtCore.Qt.PenStyle.DashLine)
            line = pg.InfiniteLine(pos=wl, angle=90, pen=dashed)
            self.plot.addItem(line, ignoreBounds=True)
            self._band_lines.append(line)

    # -- outputs -----------------------------------------------------------------------
    def table(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Wavelengths (B,) and every plotted spectrum by column name (for CSV export)."""
        if self.target is None:
            return np.zeros(0), {}
        columns: dict[str, np.ndarray] = {}
        if self.pixel is not None:
            for label, spectrum, (r, c) in self.target.spectra_at(*self.pixel):
                columns[f"{label} r{r} c{c}"] = spectrum
        cube = self.target.layer(self.layer)
        if cube is not None:
            for row, col, _ in self.pins:
                r, c = self.target.to_layer_pixel(cube, row, col)
                columns[f"pin {self.layer} r{r} c{c}"] = cube.data[r, c]
            stats = self.roi_statistics()
            if stats is not None:
                columns[f"roi {self.layer} mean"], columns[f"roi {self.layer} std"] = stats
        return self.target.wavelengths, columns

    def roi_statistics(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Mean and standard deviation (B,) over the ROI of the layer on display."""
        if self.target is None or self.roi is None:
            return None
        cube = self.target.layer(self.layer)
        if cube is None:
            return None
        top, left, height, width = self.roi
        r0, c0 = self.target.to_layer_pixel(cube, top, left)
        r1, c1 = self.target.to_layer_pixel(cube, top + height - 1, left + width - 1)
        block = cube.data[r0:r1 + 1, c0:c1 + 1].reshape(-1, cube.n_bands)
        return block.mean(axis=0), block.std(axis=0)

    # -- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        for item in [*self.curves.values(), *self._pin_curves, *self._roi_items]:
            self.plot.removeItem(item)
        self.curves, self._pin_curves, self._roi_items = {}, [], []
        target = self.target
        if target is None:
            return
        wl = target.wavelengths
        if self.pixel is not None:
            row, col = self.pixel
            spectra = target.spectra_at(row, col)
            for label, spectrum, (r, c) in spectra:
                style = pg.QtCore.Qt.PenStyle.DashLine if label.startswith("synth") else pg.QtCore.Qt.PenStyle.SolidLine
                width = 2.5 if label in ("clean", "restored") else 1.8
                curve = pg.PlotDataItem(wl, spectrum, pen=pg.mkPen(layer_colour(label), width=width, style=style),
                                        name=f"{label} ({r}, {c})")
                # The y-range follows the restored layers: a noisy observation would squash them.
                self.plot.addItem(curve, ignoreBounds=label == "degraded" and len(spectra) > 1)
                self.curves[label] = curve
        cube = target.layer(self.layer)
        if cube is not None:
            for row, col, colour in self.pins:
                r, c = target.to_layer_pixel(cube, row, col)
                curve = self.plot.plot(wl, cube.data[r, c], pen=pg.mkPen(colour, width=1.8), symbol="o",
                                       symbolSize=4, symbolBrush=colour, symbolPen=None,
                                       name=f"pin {self.layer} ({r}, {c})")
                self._pin_curves.append(curve)
            stats = self.roi_statistics()
            if stats is not None:
                mean, std = stats
                fill_colour = QColor("#00a0b0")
                fill_colour.setAlpha(60)
                edge = pg.mkPen(fill_colour, width=1)
                upper = pg.PlotCurveItem(wl, mean + std, pen=edge)
                lower = pg.PlotCurveItem(wl, mean - std, pen=edge)
                band = pg.FillBetweenItem(upper, lower, brush=pg.mkBrush(fill_colour))
                top, left, height, width = self.roi
                mean_curve = self.plot.plot(wl, mean, pen=pg.mkPen("#00a0b0", width=2.5),
                                            name=f"ROI {self.layer} mean ± std ({height}×{width} px)")
                for item in (upper, lower, band):
                    self.plot.addItem(item, ignoreBounds=item is band)
                self._roi_items = [upper, lower, band, mean_curve]
