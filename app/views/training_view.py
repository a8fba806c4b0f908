"""The training view: the finetuning loss curve and, with clean references, proxy vs
adapted metrics.

- Loss against step (log scale), streamed live while the Finetune stage runs.
- A table of PSNR (dB) / SSIM / SAM (°) of the stage-1 proxy p_i (the source model's or the
  classical denoiser's restoration) and of the adapted restoration (``restored/``, the proxy
  fused with the finetuned network) for every target with a clean reference, with
  the mean and the difference.
- For the selected target: per-band PSNR (dB against wavelength in nm) of both models and
  their SAM maps (degrees) on one colour scale.

The table spans the view's width above the plots and is as tall as its rows (it was
clipped beside the loss plot); the per-band curves are named in the plot's title in
their colours (a legend covered the low-PSNR band ends); bad bands are gaps.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.session import Session
from app.views import LAYER_COLOURS

#: Height below which the view scrolls, px (table + note + plots that stay readable).
MIN_CONTENT_HEIGHT = 440
METRIC_COLUMNS = ("image", "PSNR (dB)\nproxy", "PSNR (dB)\nadapted", "ΔPSNR\n(dB)", "SSIM\nproxy",
                  "SSIM\nadapted", "SAM (°)\nproxy", "SAM (°)\nadapted")


def band_title(name: str) -> str:
    """The per-band plot's title naming both curves in their colours (HTML)."""
    return (f"PSNR per band, {name}<br><span style='color:{LAYER_COLOURS['proxy']}'>proxy</span> vs "
            f"<span style='color:{LAYER_COLOURS['restored']}'>adapted</span>")


class TrainingView(QWidget):
    """Loss curve, metric table, per-band PSNR and SAM maps."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.loss_plot = pg.PlotWidget(title="Finetuning loss")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.setLabel("left", "loss (L1)")
        self.loss_plot.getAxis("left").enableAutoSIPrefix(False)
        self.loss_plot.showGrid(x=True, y=True, alpha=0.25)
        self.loss_plot.addLegend(offset=(-5, 5), labelTextSize="9pt", brush=(255, 255, 255, 200))
        self.loss_raw = self.loss_plot.plot([], [], pen=pg.mkPen((214, 39, 40, 90), width=1), name="per step")
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#d62728", width=2), name="running mean")

        self.table = QTableWidget(0, len(METRIC_COLUMNS))
        self.table.setHorizontalHeaderLabels(METRIC_COLUMNS)
        # Sized once per refresh (resizeColumnsToContents): in ResizeToContents mode every
        # setItem re-measured the whole table, 60–70 ms per result on the GUI thread.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.note = QLabel()
        self.note.setWordWrap(True)

        self.detail = pg.GraphicsLayoutWidget()
        self.band_plot = self.detail.addPlot(row=0, col=0, rowspan=2, title="PSNR per band")
        self.band_plot.setLabel("bottom", "Wavelength", units="nm")
        self.band_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.band_plot.setLabel("left", "PSNR (dB)")
        self.band_plot.showGrid(x=True, y=True, alpha=0.25)
        self.band_plot.setXRange(400, 700)
        self.sam_boxes, self.sam_images = [], []
        for col, title in ((1, "SAM, proxy (°)"), (2, "SAM, adapted (°)")):
            self.detail.addLabel(title, row=0, col=col, size="9pt")
            vb = self.detail.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMenu=False)
            image = pg.ImageItem(axisOrder="row-major")
            vb.addItem(image)
            self.sam_boxes.append(vb)
            self.sam_images.append(image)
        for col, stretch in enumerate((3, 4, 4, 1)):  # room for the maps, not just the band plot
            self.detail.ci.layout.setColumnStretchFactor(col, stretch)
        self.sam_boxes[1].setXLink(self.sam_boxes[0])
        self.sam_boxes[1].setYLink(self.sam_boxes[0])
        self.sam_bar = pg.ColorBarItem(values=(0, 10), colorMap=pg.colormap.get("magma"), label="SAM (°)",
                                       interactive=False)
        self.sam_bar.setImageItem(self.sam_images, insert_in=None)
        self.detail.addItem(self.sam_bar, row=1, col=3)

        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addWidget(self.table)
        table_layout.addWidget(self.note)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.loss_plot)
        bottom.addWidget(self.detail)
        bottom.setStretchFactor(0, 1)
        bottom.setStretchFactor(1, 3)
        self.loss_plot.setMinimumWidth(180)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(table_box)
        split.addWidget(bottom)
        split.setStretchFactor(1, 1)
        self.split, self._table_box = split, table_box
        # Below MIN_CONTENT_HEIGHT the view scrolls instead of squashing the plots (1024×700).
        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        inner_layout.setContentsMargins(0, 0, 0, 0)
        inner_layout.addWidget(split)
        inner.setMinimumHeight(MIN_CONTENT_HEIGHT)
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.scroll)

        self._rows: list[int] = []
        self._detail: tuple[int, dict | None] | None = None
        self._stale = False
        self.table.currentCellChanged.connect(lambda row, *_: self._show_detail(row))
        session.training_updated.connect(self.refresh)
        session.target_updated.connect(lambda _i: self.refresh_metrics())
        session.targets_changed.connect(self.refresh)

    # -- inputs ------------------------------------------------------------------------
    def refresh(self) -> None:
        self.set_loss(self.session.loss_history, smoothed=False)
        self.refresh_metrics()

    def set_loss(self, history: list[tuple[int, float]], smoothed: bool = True) -> None:
        """Plot (step, loss) pairs: already smoothed live points, or per-step losses.

        Per-step losses are drawn thin with their running mean (weight 0.05 per step, as
        the training loop reports it) on top.
        """
        if not history:
            self.loss_raw.setData([], [])
            self.loss_curve.setData([], [])
            return
        steps, losses = (np.asarray(v, dtype=np.float64) for v in zip(*history))
        if smoothed:
            self.loss_raw.setData([], [])
            self.loss_curve.setData(steps, losses)
            return
        running = np.empty_like(losses)
        running[0] = losses[0]
        for i in range(1, losses.size):
            running[i] = 0.95 * running[i - 1] + 0.05 * losses[i]
        self.loss_raw.setData(steps, losses)
        self.loss_curve.setData(steps, running)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self._stale:
            self.refresh_metrics()

    def refresh_metrics(self) -> None:
        """Redraw the metrics now when visible, else when next shown (results stream in often)."""
        self._stale = not self.isVisible()
        if self._stale:
            return
        scored = [(i, t) for i, t in enumerate(self.session.targets) if t.metrics]
        self._rows = [i for i, _ in scored]
        self.table.setRowCount(len(scored) + (1 if scored else 0))
        for row, (_, target) in enumerate(scored):
            self._fill_row(row, target.name, target.metrics["source"], target.metrics["adapted"])
        if scored:
            mean = {side: {k: float(np.mean([t.metrics[side][k] for _, t in scored])) for k in ("psnr", "ssim", "sam")}
                    for side in ("source", "adapted")}
            self._fill_row(len(scored), "mean", mean["source"], mean["adapted"], bold=True)
        self.table.resizeColumnsToContents()
        if not self.session.has_clean_references():
            self.note.setText("Metrics need clean references: the demo has them; for your own files, "
                              "right-click a target → Attach clean reference.")
        elif not scored:
            self.note.setText("Run Evaluate to score the proxies and the adapted restoration.")
        else:
            self.note.setText("Proxy = stage 1's restoration p_i (the source model's, or the classical denoiser's); "
                              "adapted = restored/ (proxy and finetuned network fused by --fuse-proxies: the proxy "
                              "itself at 1, the default with a denoiser). SAM: mean spectral angle, lower is better.")
        self._fit_table_height()
        current = self.session.current
        row = self._rows.index(current) if current in self._rows else (0 if self._rows else -1)
        # Results of other targets stream in one by one: redraw the detail only when its own changed.
        target = self.session.targets[self._rows[row]] if row >= 0 else None
        if target is None or self._detail is None or self._detail[0] != target.uid \
                or self._detail[1] is not target.metrics:
            self._show_detail(row)

    def _fit_table_height(self, max_rows: int = 8) -> None:
        """As tall as the header and up to ``max_rows`` rows: every score visible without scrolling."""
        self.table.resizeRowsToContents()
        rows = min(self.table.rowCount(), max_rows)
        height = self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(r) for r in range(rows)) or self.table.verticalHeader().defaultSectionSize()
        height += self.table.horizontalScrollBar().sizeHint().height()  # room for it at narrow widths
        self.table.setFixedHeight(height)
        # The table pane as tall as table and note, the plots get the rest (the splitter
        # would otherwise split by size hints and leave white space under the rows).
        needed = self._table_box.sizeHint().height()
        total = sum(self.split.sizes())
        if total > needed:
            self.split.setSizes([needed, total - needed])

    # -- drawing -----------------------------------------------------------------------
    def _fill_row(self, row: int, name: str, source: dict, adapted: dict, bold: bool = False) -> None:
        values = [name, f"{source['psnr']:.2f}", f"{adapted['psnr']:.2f}", f"{adapted['psnr'] - source['psnr']:+.2f}",
                  f"{source['ssim']:.4f}", f"{adapted['ssim']:.4f}", f"{source['sam']:.2f}", f"{adapted['sam']:.2f}"]
        for col, text in enumerate(values):
            item = QTableWidgetItem(text)
            if col:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if bold:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.table.setItem(row, col, item)

    def _show_detail(self, row: int) -> None:
        target = self.session.targets[self._rows[row]] if 0 <= row < len(self._rows) else None
        # The metrics object itself is kept (not its id, which a new dict could reuse).
        self._detail = (target.uid, target.metrics) if target is not None else None
        self.band_plot.clear()
        self.band_plot.setTitle("PSNR per band", size="10pt")
        for image in self.sam_images:
            image.clear()
        if not 0 <= row < len(self._rows):
            return
        target = self.session.targets[self._rows[row]]
        metrics = target.metrics
        wl = target.wavelengths
        bad = list(target.degraded.bad_bands)
        for side, colour in (("source", LAYER_COLOURS["proxy"]), ("adapted", LAYER_COLOURS["restored"])):
            psnr = np.array(metrics[side]["psnr_per_band"], dtype=np.float64)
            psnr[bad] = np.nan  # bad bands are gaps, not drops
            self.band_plot.plot(wl, psnr, pen=pg.mkPen(colour, width=2), connect="finite")
        # The two curves are named in the title, in their colours: a legend inside the axes
        # covered the low-PSNR band ends, one below them cost the plot its height.
        self.band_plot.setTitle(band_title(target.name), size="10pt")
        self.band_plot.enableAutoRange()
        maps = [np.asarray(metrics[side]["sam_map"], dtype=np.float32) for side in ("source", "adapted")]
        high = float(max(np.percentile(m, 99) for m in maps)) or 1.0
        for image, sam_map in zip(self.sam_images, maps):
            image.setImage(sam_map)
        self.sam_bar.setLevels((0.0, high))
        for vb in self.sam_boxes:
            vb.autoRange(padding=0.0)
