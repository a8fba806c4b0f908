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
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.session import Target
from app.views import LAYER_COLOURS

#: Height below which the view scrolls, px (notes + plots + report stay readable).
MIN_CONTENT_HEIGHT = 400
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
        ("noise σ (median band)", f"{before:.3g} → {after:.3g} {units}",
         "lower after; the ratio is how many times the noise dropped"),
        ("noise drop", f"{noise['median_ratio']}× (worst {noise['min_ratio']}×)", "> 1 in every band"),
        ("method noise |corr|", f"{mn['mean_abs_corr_with_restored']:.3f}",
         "the method noise's correlation with the image: ≈ 0 when noise, not scene, was removed"),
        ("method noise lag-1", f"{mn['mean_lag1_autocorr']:.3f}",
         "its lag-1 autocorrelation: ≈ 0 for white noise; higher: structure was removed"),
        ("method noise low-pass", f"{100 * mn['mean_lowpass_energy_fraction']:.1f} % "
                                  f"(white {100 * mn['white_lowpass_energy_fraction']:.1f} %)",
         "its energy kept by a σ = 2 px low-pass; above white noise's: smooth detail was removed"),
        ("spectrum drift", f"{spectra['max_abs_drift_percent']:.2f} % "
                           f"(regions {spectra['max_abs_region_drift_percent']:.2f} %)",
         "largest change of the mean spectrum (over the image; over large regions): ≈ 0 keeps colours"),
    ]
    seams = report.get("seams")
    if seams and seams.get("method_noise_border_step_ratio") is not None:
        rows.append(("tile seams", f"{seams['method_noise_border_step_ratio']:.3f} "
                     f"(off borders {seams['method_noise_null_step_ratio']:.3f})",
                     f"step of the method noise across the {seams['tile']}-px tile borders over nearby lines: "
                     "1 = no seam"))
    return rows


def fit_text(analysis: Any, band: int | None = None) -> str:
    """A short text on the fitted noise model of a :class:`hiralign.noise.NoiseAnalysis` (and of one band)."""
    model = analysis.model
    a, b = analysis.pooled_ab
    units = unit_name(model.units)
    one = f"Band: var = {model.a[band]:.3g}·μ + {model.b[band]:.3g} {units}². " if band is not None else ""
    return (f"{one}All bands: {a:.3g}·μ + {b:.3g} (median σ {float(np.median(model.sigma)):.3g} {units}; "
            f"signal-dependent in {sum(model.signal_dependent)}/{model.n_bands} bands).")


class _Plots(pg.GraphicsLayoutWidget):
    """The two plots, asking for no more height than their minimum.

    Inside a scroll area that resizes its widget, a wrapped label makes the height come from
    the layout's *preferred* heights: pyqtgraph's generous size hint made the page taller than
    the tab at 1366×768 and cut the lower plot's axis off.
    """

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return self.minimumSize()


class NoiseView(QWidget):
    """σ per band, the a·μ + b fit of one band, load-time notes and the no-reference report."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.target: Target | None = None
        self.notes = QLabel(NO_TARGET, wordWrap=True)
        self.notes.setTextFormat(Qt.TextFormat.PlainText)

        # Plots stacked on the left, the fit and the report on the right: one above the other,
        # the report pushed the plots out of a 1366×768 window's tab.
        self.plots = _Plots()
        self.plots.setMinimumSize(300, 300)
        self.sigma_plot = self.plots.addPlot(row=0, col=0, title="Noise σ per band")
        self.sigma_plot.setLabel("bottom", "Wavelength", units="nm")
        self.sigma_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.sigma_plot.getAxis("left").enableAutoSIPrefix(False)
        self.sigma_plot.showGrid(x=True, y=True, alpha=0.25)
        self.level_plot = self.plots.addPlot(row=1, col=0, title="Noise variance against level")
        self.level_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.level_plot.getAxis("left").enableAutoSIPrefix(False)
        self.level_plot.showGrid(x=True, y=True, alpha=0.25)

        self.band_box = QComboBox(toolTip="The band whose level sets and a·μ + b fit the lower plot shows")
        self.band_box.setMinimumContentsLength(10)
        self.fit = QLabel(wordWrap=True)
        band_row = QHBoxLayout()
        band_row.addWidget(QLabel("Band"))
        band_row.addWidget(self.band_box, 1)

        self.report_note = QLabel(NO_REPORT, wordWrap=True)
        self.report = QTableWidget(0, 2)
        self.report.setHorizontalHeaderLabels(("quantity", "value"))
        self.report.verticalHeader().setVisible(False)
        self.report.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.report.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.report.horizontalHeader().setStretchLastSection(True)
        self.report.setWordWrap(False)
        self.report.setVisible(False)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(4, 0, 0, 0)
        side_layout.addLayout(band_row)
        side_layout.addWidget(self.fit)
        side_layout.addWidget(self.report_note)
        side_layout.addWidget(self.report)
        side_layout.addStretch(1)
        side.setMinimumWidth(300)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plots)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)

        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.notes)
        layout.addWidget(split, 1)
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
            bad = set(self.target.degraded.bad_bands)
            self.band_box.addItems([f"{w:.0f} nm (#{k}{', bad band' if k in bad else ''})" for k, w in enumerate(wl)])
            # The middle good band: a bad one (AVIRIS's water bands, zeros) has no noise to fit.
            good = [k for k in range(len(wl)) if k not in bad] or list(range(len(wl)))
            self.band_box.setCurrentIndex(good[len(good) // 2])
        self.band_box.blockSignals(False)

    def _draw_notes(self) -> None:
        target = self.target
        if target is None:
            self.notes.setText(NO_TARGET)
        elif target.analysis is None:
            self.notes.setText(WAITING.format(name=target.name))
        else:
            # The cube's name starts every note (the Messages dock needs it); here it is the tab's target.
            prefix = f"{target.name}: "
            lines = [n[len(prefix):] if n.startswith(prefix) else n for n in target.analysis.notes]
            lines = lines or ["on the model's bands and full scale; the run takes it as it is."]
            if target.analysis.noise_error:
                lines.append(f"Noise estimate failed: {target.analysis.noise_error}")
            self.notes.setText(f"How the run treats {target.name}:\n" + "\n".join(f"• {line}" for line in lines))

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
        self.level_plot.setLabel("left", f"variance ({units}²)")
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
                 coloured("all bands (- -)", POOLED_COLOUR))
        self.level_plot.setTitle(f"{self.target.wavelengths[band]:.0f} nm: " + ", ".join(names), size="10pt")
        self.fit.setText(fit_text(noise, band))

    def _draw_report(self) -> None:
        quality = self.target.quality if self.target is not None else None
        self.report.setVisible(bool(quality))
        if not quality:
            self.report_note.setText(NO_REPORT)
            return
        self.report_note.setText("No-reference report of the adapted model's restoration (report.json; "
                                 "method noise = input − restored; tooltips say what to expect):")
        rows = report_rows(quality)
        self.report.setRowCount(len(rows))
        for r, (quantity, value, expect) in enumerate(rows):
            for c, text in enumerate((quantity, value)):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{quantity}: {value}. Expected: {expect}")
                self.report.setItem(r, c, item)
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
