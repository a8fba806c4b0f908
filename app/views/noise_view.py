"""The noise view: the selected target's blind noise estimate and, after a run, the
no-reference report of its restoration — the real-capture workflow, where no clean
reference exists to score against.

- **σ per band** against wavelength: the capture's noise as :func:`hiralign.noise.analyse`
  estimates it (what a ``sensor`` run models), and after a run the σ of the restored cube
  (the report's ``sigma_after``), on the file's own scale (counts for integer captures).
- **Variance against level** for one band: the level-set bins (mean level, robust noise
  variance) and the Poisson–Gaussian fit var = a·μ + b of that band, with the all-bands fit
  dashed; a straight line through the points means the model holds.
- **How the run treats this cube**: the load-time notes (bands, intensity scale).
- **No-reference report** (:func:`hiralign.quality.quality_report`, what ``report.json``
  holds): noise before → after, method-noise correlation with the image, its lag-1
  autocorrelation and low-pass energy against white noise, mean-spectrum drift, seams.

The analysis itself runs in a background job started by the window when a cube is
loaded; this view only draws what the session holds.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.session import Target
from app.views import LAYER_COLOURS

#: Height below which the view scrolls, px (notes + plots + report stay readable).
MIN_CONTENT_HEIGHT = 470
NO_TARGET = "Open a cube to see its noise."
#: Colours of the fit lines (per band, all bands).
FIT_COLOUR, POOLED_COLOUR = "#d62728", "#555555"


def unit_name(units: str) -> str:
    """A noise model's units as the plots name them ("counts"; float data: "data units")."""
    return {"loaded": "data units"}.get(units, units)


def coloured(text: str, colour: str) -> str:
    return f"<span style='color:{colour}'>{text}</span>"
WAITING = "Estimating the noise of {name}…"
NO_REPORT = ("No-reference report: after Run all (or Evaluate) it shows what the adapted model did to this cube "
             "without a clean reference — noise before → after, what the restoration removed, spectral drift, seams.")


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(quantity, value, what to expect) rows of a :func:`hiralign.quality.quality_report` dict."""
    noise, mn, spectra = report["noise"], report["method_noise"], report["spectra"]
    units = unit_name(report.get("units", ""))
    before, after = float(np.median(noise["sigma_before"])), float(np.median(noise["sigma_after"]))
    rows = [
        ("noise σ, median band", f"{before:.3g} → {after:.3g} {units}",
         "lower after; the ratio is how many times the noise dropped"),
        ("noise drop", f"{noise['median_ratio']}× (worst band {noise['min_ratio']}×)", "> 1 in every band"),
        ("method noise |corr| with image", f"{mn['mean_abs_corr_with_restored']:.3f}",
         "≈ 0: the restoration removed noise, not scene"),
        ("method noise lag-1 autocorrelation", f"{mn['mean_lag1_autocorr']:.3f}",
         "≈ 0 for white noise; higher: structure was removed"),
        ("method noise low-pass energy", f"{100 * mn['mean_lowpass_energy_fraction']:.1f} %",
         f"white noise {100 * mn['white_lowpass_energy_fraction']:.1f} %; more: smooth detail removed"),
        ("mean-spectrum drift", f"max {spectra['max_abs_drift_percent']:.2f} % (regions "
                                f"{spectra['max_abs_region_drift_percent']:.2f} %)", "≈ 0: colours kept"),
    ]
    seams = report.get("seams")
    if seams and seams.get("method_noise_border_step_ratio") is not None:
        rows.append(("tile seams (method noise)", f"{seams['method_noise_border_step_ratio']:.3f} "
                     f"(off the borders {seams['method_noise_null_step_ratio']:.3f})",
                     f"1 = none ({seams['tile']}-px tiles, {seams['overlap']} overlap)"))
    return rows


def fit_text(analysis: Any) -> str:
    """One line on the fitted noise model of a :class:`hiralign.noise.NoiseAnalysis`."""
    model = analysis.model
    a, b = analysis.pooled_ab
    sigma = float(np.median(model.sigma))
    dependent = sum(model.signal_dependent)
    units = unit_name(model.units)
    return (f"All bands: var = {a:.3g}·μ + {b:.3g} {units}²; median σ {sigma:.3g} {units}; "
            f"signal-dependent (Poisson) in {dependent} of {model.n_bands} bands.")


class NoiseView(QWidget):
    """σ per band, the a·μ + b fit of one band, load-time notes and the no-reference report."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.target: Target | None = None
        self.notes = QLabel(NO_TARGET, wordWrap=True)
        self.notes.setTextFormat(Qt.TextFormat.PlainText)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(220)
        self.sigma_plot = self.plots.addPlot(row=0, col=0, title="Noise σ per band")
        self.sigma_plot.setLabel("bottom", "Wavelength", units="nm")
        self.sigma_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.sigma_plot.getAxis("left").enableAutoSIPrefix(False)
        self.sigma_plot.showGrid(x=True, y=True, alpha=0.25)
        self.level_plot = self.plots.addPlot(row=0, col=1, title="Noise variance against level")
        self.level_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.level_plot.getAxis("left").enableAutoSIPrefix(False)
        self.level_plot.showGrid(x=True, y=True, alpha=0.25)

        self.band_box = QComboBox(toolTip="The band whose level sets and a·μ + b fit the right plot shows")
        self.band_box.setMinimumContentsLength(10)
        self.fit = QLabel(wordWrap=True)
        band_row = QHBoxLayout()
        band_row.addWidget(QLabel("Band"))
        band_row.addWidget(self.band_box)
        band_row.addWidget(self.fit, 1)

        self.report_note = QLabel(NO_REPORT, wordWrap=True)
        self.report = QTableWidget(0, 3)
        self.report.setHorizontalHeaderLabels(("quantity", "value", "what to expect"))
        self.report.verticalHeader().setVisible(False)
        self.report.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.report.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.report.horizontalHeader().setStretchLastSection(True)
        self.report.setWordWrap(False)
        self.report.setVisible(False)

        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.notes)
        layout.addLayout(band_row)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.report_note)
        layout.addWidget(self.report)
        inner.setMinimumHeight(MIN_CONTENT_HEIGHT)
        # Below MIN_CONTENT_HEIGHT the view scrolls instead of squashing the plots (1024×700).
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(2, 2, 2, 2)
        outer.addWidget(self.scroll)
        self.band_box.currentIndexChanged.connect(lambda _i: self._draw_levels())
        self._drawn: tuple[Any, ...] | None = None

    # -- inputs ------------------------------------------------------------------------
    def set_target(self, target: Target | None) -> None:
        """Show ``target``'s analysis and report (redrawn only when they changed)."""
        analysis = target.analysis if target is not None else None
        key = (id(target), id(analysis), id(target.quality) if target is not None else 0)
        if key == self._drawn:
            return
        self._drawn = key
        new = target is not self.target
        self.target = target
        if new or self.band_box.count() != (target.degraded.n_bands if target is not None else 0):
            self._fill_bands()
        self._draw_notes()
        self._draw_sigma()
        self._draw_levels()
        self._draw_report()

    # -- drawing -----------------------------------------------------------------------
    def _fill_bands(self) -> None:
        self.band_box.blockSignals(True)
        self.band_box.clear()
        if self.target is not None:
            wl = self.target.wavelengths
            self.band_box.addItems([f"{w:.0f} nm (#{k})" for k, w in enumerate(wl)])
            self.band_box.setCurrentIndex(len(wl) // 2)
        self.band_box.blockSignals(False)

    def _draw_notes(self) -> None:
        target = self.target
        if target is None:
            self.notes.setText(NO_TARGET)
        elif target.analysis is None:
            self.notes.setText(WAITING.format(name=target.name))
        else:
            lines = list(target.analysis.notes) or [f"{target.name}: on the model's bands and full scale; "
                                                    "the run takes it as it is."]
            if target.analysis.noise_error:
                lines.append(f"Noise estimate failed: {target.analysis.noise_error}")
            self.notes.setText("How the run treats this cube:\n" + "\n".join(f"• {line}" for line in lines))

    def _noise(self) -> Any:
        return None if self.target is None or self.target.analysis is None else self.target.analysis.noise

    def _draw_sigma(self) -> None:
        self.sigma_plot.clear()
        self.sigma_plot.setTitle("Noise σ per band", size="10pt")
        noise = self._noise()
        if noise is None:
            self.sigma_plot.setLabel("left", "σ")
            return
        model = noise.model
        wl = self.target.wavelengths
        bad = list(self.target.degraded.bad_bands)

        def gaps(values) -> np.ndarray:
            out = np.array(values, dtype=np.float64)
            out[bad] = np.nan
            return out

        self.sigma_plot.setLabel("left", f"σ ({unit_name(model.units)})")
        self.sigma_plot.plot(wl, gaps(model.sigma), pen=pg.mkPen(LAYER_COLOURS["degraded"], width=2), symbol="o",
                             symbolSize=5, symbolBrush=LAYER_COLOURS["degraded"], connect="finite")
        quality = self.target.quality
        # The curves are named in the title, in their colours: a legend inside the axes covered them.
        title = f"Noise σ per band: {coloured('captured', LAYER_COLOURS['degraded'])}"
        if quality and len(quality["noise"]["sigma_after"]) == len(wl):
            title += f" vs {coloured('restored', LAYER_COLOURS['restored'])}"
            self.sigma_plot.plot(wl, gaps(quality["noise"]["sigma_after"]), connect="finite",
                                 pen=pg.mkPen(LAYER_COLOURS["restored"], width=2), symbol="t", symbolSize=6,
                                 symbolBrush=LAYER_COLOURS["restored"])
        self.sigma_plot.setTitle(title, size="10pt")
        self.sigma_plot.setYRange(0, float(np.nanmax(gaps(model.sigma))) * 1.15 or 1.0)
        self.sigma_plot.enableAutoRange(axis="x")

    def _draw_levels(self) -> None:
        self.level_plot.clear()
        self.level_plot.setTitle("Noise variance against level", size="10pt")
        noise = self._noise()
        band = self.band_box.currentIndex()
        if noise is None or not 0 <= band < noise.model.n_bands:
            self.fit.setText("")
            return
        model = noise.model
        units = unit_name(model.units)
        self.level_plot.setLabel("bottom", f"mean level ({units})")
        self.level_plot.setLabel("left", f"noise variance ({units}²)")
        mu, var = noise.bin_mean[band], noise.bin_var[band]
        ok = np.isfinite(mu) & np.isfinite(var)
        self.level_plot.plot(mu[ok], var[ok], pen=None, symbol="o", symbolSize=7,
                             symbolBrush=LAYER_COLOURS["degraded"])
        if ok.any():
            x = np.linspace(0.0, float(mu[ok].max()) * 1.05, 50)
            a, b = model.a[band], model.b[band]
            self.level_plot.plot(x, a * x + b, pen=pg.mkPen(FIT_COLOUR, width=2))
            pa, pb = noise.pooled_ab
            self.level_plot.plot(x, pa * x + pb, pen=pg.mkPen(POOLED_COLOUR, width=1, style=Qt.PenStyle.DashLine))
        names = (coloured("level sets", LAYER_COLOURS["degraded"]), coloured("a·μ + b", FIT_COLOUR),
                 coloured("all bands (dashed)", POOLED_COLOUR))
        self.level_plot.setTitle(f"{self.target.wavelengths[band]:.0f} nm: " + ", ".join(names), size="10pt")
        self.fit.setText(f"This band: var = {model.a[band]:.3g}·μ + {model.b[band]:.3g} {units}². " + fit_text(noise))

    def _draw_report(self) -> None:
        quality = self.target.quality if self.target is not None else None
        self.report.setVisible(bool(quality))
        if not quality:
            self.report_note.setText(NO_REPORT)
            return
        self.report_note.setText(f"No-reference report of {self.target.name}'s restoration by the adapted model "
                                 "(report.json; method noise = input − restored):")
        rows = report_rows(quality)
        self.report.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.report.setItem(r, c, QTableWidgetItem(text))
        self.report.resizeColumnsToContents()
        self.report.resizeRowsToContents()
        height = self.report.horizontalHeader().sizeHint().height() + 2 * self.report.frameWidth()
        height += sum(self.report.rowHeight(r) for r in range(len(rows)))
        height += self.report.horizontalScrollBar().sizeHint().height()
        self.report.setFixedHeight(height)

    # -- queries (tests, export) ---------------------------------------------------------
    def report_values(self) -> dict[str, str]:
        """quantity -> value of the report table as shown."""
        return {self.report.item(r, 0).text(): self.report.item(r, 1).text() for r in range(self.report.rowCount())}
