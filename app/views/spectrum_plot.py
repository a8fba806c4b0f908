"""The spectrum plot: every layer's spectrum at the clicked pixel, pinned pixels, ROI
statistics and a marker at the band(s) on display.

- A click shows the spectrum of each layer of the target at that pixel: degraded, proxy,
  each synthesized HSI at the pixel the warp maps there, restored, clean.
- Shift-click pins a pixel: its spectrum (of the layer on display) stays, in the colour of
  its marker on the image.
- With the ROI on, the mean ± one standard deviation over the rectangle (layer on display)
  is drawn as a line and a shaded band.
- Bad bands (ENVI ``bbl`` = 0, e.g. AVIRIS's water-absorption bands) are gaps in every
  curve and grey spans, never drops to 0.
- The legend sits in its own column right of the axes, so it never covers curves; before
  any click the axis spans the target's wavelengths (400–700 nm without a target) and a
  hint says what to do.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.session import Target
from app.views import PIN_COLOURS, layer_colour

#: Colours of the band lines in RGB mode (R, G, B channels).
CHANNEL_COLOURS = ("#c00000", "#008000", "#0000c0")
#: Wavelength range shown before any cube is open, nm.
EMPTY_RANGE_NM = (400.0, 700.0)
#: Width of the legend column, px (long enough for "ROI proxy mean ± std (16×16 px)").
LEGEND_WIDTH = 215
#: Smallest usable plot: below this the dock cannot be squeezed (px).
MINIMUM_SIZE = (360, 190)
#: Colour of the ROI statistics when only one layer exists (the degraded cube, before any run).
ROI_COLOUR = "#00a0b0"
HINT = "Click a pixel of the image to plot its spectrum in every layer · Shift-click pins it · tick ROI for a region"


def bad_band_spans(wavelengths: np.ndarray, bad_bands: tuple[int, ...] | list[int]) -> list[tuple[float, float]]:
    """(start, stop) nm of each run of consecutive bad bands, reaching halfway to the good neighbours.

    Args:
        wavelengths: (B,) increasing band centres, nm.
        bad_bands: indices of bad bands.
    """
    wl = np.asarray(wavelengths, dtype=np.float64)
    bad = np.zeros(wl.size, dtype=bool)
    bad[[int(b) for b in bad_bands if 0 <= int(b) < wl.size]] = True
    if not bad.any():
        return []
    step = np.diff(wl) if wl.size > 1 else np.ones(1)
    # Band edges: halfway between centres, half a step beyond the first and last band.
    edges = np.concatenate([[wl[0] - step[0] / 2], (wl[:-1] + wl[1:]) / 2, [wl[-1] + step[-1] / 2]])
    change = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(change == 1), np.flatnonzero(change == -1)  # runs [start, stop)
    spans = [(float(edges[a]), float(edges[b])) for a, b in zip(starts, stops)]
    return spans


def with_gaps(spectrum: np.ndarray, bad_bands: tuple[int, ...] | list[int]) -> np.ndarray:
    """A float copy of ``spectrum`` with NaN at the bad bands (drawn as gaps with ``connect="finite"``)."""
    out = np.array(spectrum, dtype=np.float64)
    if len(bad_bands):
        out[list(bad_bands)] = np.nan
    return out


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
        #: The figure (plot + legend column), also what *Export ▸ Figures* saves.
        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot = self.plot_widget.addPlot(row=0, col=0)
        self.plot.setLabel("bottom", "Wavelength", units="nm")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setLabel("left", "Value")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        # The legend lives in an inert box beside the axes: inside them it covered the
        # 400–450 nm curves and the low-PSNR band ends.
        self.legend_box = pg.ViewBox(enableMouse=False, enableMenu=False)  # in the layout while curves exist
        self.legend_box.setFixedWidth(LEGEND_WIDTH)
        self.legend = pg.LegendItem(offset=(2, 2), labelTextSize="9pt", brush=(255, 255, 255, 230),
                                    pen=(180, 180, 180))
        self.legend.setParentItem(self.legend_box)
        self.plot.legend = self.legend  # PlotItem.addItem(name=...) fills it
        self.legend_box.sigResized.connect(lambda _box: self._fit_legend(relayout=False))
        self.hint = pg.TextItem(HINT, color="#555555", anchor=(0.5, 0.5))
        self.note = ""
        self._peak = 0.0
        self._was_empty = True
        self.plot_widget.setMinimumSize(*MINIMUM_SIZE)
        self.setMinimumSize(*MINIMUM_SIZE)
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
        self._bad_spans: list[pg.LinearRegionItem] = []
        self.redraw()

    # -- inputs ------------------------------------------------------------------------
    def set_target(self, target: Target | None) -> None:
        """A new target (or new layers of the same one): redraw what is selected."""
        new = target is not self.target
        if new:
            self.pixel, self.roi = None, None
            self.pins = []
            self.pins_changed.emit([])
        self.target = target
        if new:  # once per target: a large cube's maximum costs tens of ms
            data = target.degraded.data[::4, ::4] if target is not None else np.zeros(0)
            self._peak = float(np.nanmax(data)) if data.size and np.isfinite(data).any() else 0.0
            self._draw_bad_bands()  # the degraded cube's bad bands: they change with the target only
        elif not self.has_curves():
            return  # a new layer of the same target changes no curve: no redraw (results stream in often)
        self.redraw()
        if new:
            self._show_range()

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
        if [line.value() for line in self._band_lines] == [float(w) for w in wavelengths]:
            return  # unchanged (every streamed result re-announces the bands): no repaint of the plot
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
            for label in self.roi_layers() if self.roi is not None else ():
                stats = self.roi_statistics(label)
                if stats is not None:
                    columns[f"roi {label} mean"], columns[f"roi {label} std"] = stats
        return self.target.wavelengths, columns

    def roi_layers(self) -> list[str]:
        """The layers whose ROI mean ± std is drawn: before and after restoration, and the layer on display.

        Before = the degraded observation; after = the adapted model's restoration, else the
        source model's (the proxy). The layer on display is added when it is another one.
        """
        if self.target is None:
            return []
        available = {label for label, _ in self.target.layers()}
        after = next((label for label in ("restored", "proxy") if label in available), None)
        layers = ["degraded"] + ([after] if after else [])
        if self.layer in available and self.layer not in layers:
            layers.append(self.layer)
        return layers

    def roi_statistics(self, layer: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Mean and standard deviation (B,) over the ROI of ``layer`` (default: the layer on display)."""
        if self.target is None or self.roi is None:
            return None
        cube = self.target.layer(layer or self.layer)
        if cube is None:
            return None
        top, left, height, width = self.roi
        r0, c0 = self.target.to_layer_pixel(cube, top, left)
        r1, c1 = self.target.to_layer_pixel(cube, top + height - 1, left + width - 1)
        block = cube.data[r0:r1 + 1, c0:c1 + 1].reshape(-1, cube.n_bands)
        return block.mean(axis=0), block.std(axis=0)

    def bad_bands(self) -> tuple[int, ...]:
        """Bad bands of the current target (its degraded cube's ``bbl``)."""
        return tuple(self.target.degraded.bad_bands) if self.target is not None else ()

    def has_curves(self) -> bool:
        return bool(self.curves or self._pin_curves or self._roi_items)

    # -- drawing -----------------------------------------------------------------------
    def _show_range(self) -> None:
        """Fit the axes to the curves, or show the target's wavelength range while there are none."""
        if self.has_curves():
            self.plot.enableAutoRange()
            return
        wl = self.target.wavelengths if self.target is not None else np.asarray(EMPTY_RANGE_NM)
        lo, hi = float(np.min(wl)), float(np.max(wl))
        self.plot.setXRange(lo, hi, padding=0.02)
        self.plot.setYRange(0.0, 1.0, padding=0.02)
        self.hint.setPos((lo + hi) / 2, 0.5)

    def _draw_bad_bands(self) -> None:
        for item in self._bad_spans:
            self.plot.removeItem(item)
        self._bad_spans = []
        if self.target is None:
            return
        for start, stop in bad_band_spans(self.target.wavelengths, self.bad_bands()):
            span = pg.LinearRegionItem((start, stop), movable=False, brush=pg.mkBrush(0, 0, 0, 28),
                                       pen=pg.mkPen(None))
            span.setZValue(-10)
            span.setToolTip(f"bad bands {start:.0f}–{stop:.0f} nm (flagged in the file's bad-band list)")
            self.plot.addItem(span, ignoreBounds=True)
            self._bad_spans.append(span)

    def _fit_legend(self, relayout: bool = True) -> None:
        """Spread the legend over as many columns as the dock's height needs (pins and ROI add rows)."""
        n = len(self.legend.items)
        if not n:
            return
        row_height = max(max(sample.height(), label.height()) for sample, label in self.legend.items) or 18.0
        fit = max(1, int((self.legend_box.height() - 6) // row_height))
        columns = max(1, math.ceil(n / fit))
        if relayout or columns != self.legend.columnCount:
            self.legend.columnCount = 0  # setColumnCount re-lays the items out only on a change
            self.legend.setColumnCount(columns)
            self.legend_box.setFixedWidth(max(LEGEND_WIDTH, self.legend.width() + 6))

    def _update_note(self) -> None:
        """Say when the data is far below the 0–1 full scale (dark captures look empty otherwise)."""
        text = ""
        if self.target is not None:
            high = self._peak
            if 0 < high < 0.05:
                text = (f"dark data: values reach only {high:.2g} of the full scale 1 "
                        "(View ▸ Messages has the loader's notes)")
        if text != self.note:
            self.note = text
            self.plot.setTitle(text or None, color="#a05000", size="9pt")

    def redraw(self) -> None:
        for item in [*self.curves.values(), *self._pin_curves, *self._roi_items]:
            self.plot.removeItem(item)
        self.curves, self._pin_curves, self._roi_items = {}, [], []
        self._draw_curves()
        empty = not self.has_curves()
        if empty and self.hint.scene() is None:
            self.plot.addItem(self.hint, ignoreBounds=True)
        elif not empty and self.hint.scene() is not None:
            self.plot.removeItem(self.hint)
        if empty == (self.legend_box.scene() is not None):
            if empty:
                self.plot_widget.ci.removeItem(self.legend_box)
            else:
                self.plot_widget.ci.addItem(self.legend_box, row=0, col=1)
        if empty:
            self._show_range()
        elif self._was_empty:
            self.plot.enableAutoRange()  # the empty view's fixed range must not hide the first curves
        if not empty:
            self._fit_legend()
        self._was_empty = empty
        self._update_note()

    def _draw_curves(self) -> None:
        target = self.target
        if target is None:
            return
        wl = target.wavelengths
        bad = self.bad_bands()
        if self.pixel is not None:
            row, col = self.pixel
            spectra = target.spectra_at(row, col)
            for label, spectrum, (r, c) in spectra:
                style = pg.QtCore.Qt.PenStyle.DashLine if label.startswith("synth") else pg.QtCore.Qt.PenStyle.SolidLine
                width = 2.5 if label in ("clean", "restored") else 1.8
                curve = pg.PlotDataItem(wl, with_gaps(spectrum, bad), connect="finite",
                                        pen=pg.mkPen(layer_colour(label), width=width, style=style),
                                        name=f"{label} ({r}, {c})")
                # The y-range follows the restored layers: a noisy observation would squash them.
                self.plot.addItem(curve, ignoreBounds=label == "degraded" and len(spectra) > 1)
                self.curves[label] = curve
        cube = target.layer(self.layer)
        if cube is not None:
            for row, col, colour in self.pins:
                r, c = target.to_layer_pixel(cube, row, col)
                curve = self.plot.plot(wl, with_gaps(cube.data[r, c], bad), connect="finite",
                                       pen=pg.mkPen(colour, width=1.8), symbol="o",
                                       symbolSize=4, symbolBrush=colour, symbolPen=None,
                                       name=f"pin {self.layer} ({r}, {c})")
                self._pin_curves.append(curve)
        if self.roi is None:
            return
        top, left, height, width = self.roi
        layers = self.roi_layers()
        for label in layers:
            stats = self.roi_statistics(label)
            if stats is None:
                continue
            mean, std = with_gaps(stats[0], bad), with_gaps(stats[1], bad)
            colour = ROI_COLOUR if len(layers) == 1 else layer_colour(label)
            fill_colour = QColor(colour)
            fill_colour.setAlpha(50)
            edge = pg.mkPen(fill_colour, width=1)
            upper = pg.PlotCurveItem(wl, mean + std, pen=edge, connect="finite")
            lower = pg.PlotCurveItem(wl, mean - std, pen=edge, connect="finite")
            band = pg.FillBetweenItem(upper, lower, brush=pg.mkBrush(fill_colour))
            # The noisy observation's spread must not squash the restored layers' range.
            noisy = label == "degraded" and len(layers) > 1
            # Dash-dotted beside a clicked pixel's solid curves of the same layer colour.
            style = pg.QtCore.Qt.PenStyle.DashDotLine if self.pixel is not None else pg.QtCore.Qt.PenStyle.SolidLine
            mean_curve = pg.PlotDataItem(wl, mean, pen=pg.mkPen(colour, width=2.5, style=style), connect="finite",
                                         name=f"ROI {label} mean ± std ({height}×{width} px)")
            self.plot.addItem(mean_curve)
            for item in (upper, lower, band):
                self.plot.addItem(item, ignoreBounds=item is band or noisy)
            self._roi_items += [upper, lower, band, mean_curve]
