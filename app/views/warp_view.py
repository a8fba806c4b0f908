"""The warp view: the displacement field d_ij (paper Eq. 18) of one guide and where the
spectra of the synthesized HSI came from.

Top row, with linked zoom: the field as a colour-wheel image (hue = direction, saturation
= magnitude) with decimated arrows, the guide RGB g_ij (click a pixel), and the proxy RGB
r_i with the clicked pixel's candidate source pixels drawn with size and colour by weight.
Bottom: the histogram of |d| in pixels, the colour-wheel legend, and the warp diagnostics
(alignment PSNR, κ, non-zeros per row, ...) with the candidate list of the clicked pixel.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.session import Target
from app.views import colour_wheel, stretch_levels

WHEEL_SIZE = 65
#: Panel captions (two short lines each) and their tooltips.
CAPTIONS = (
    ("displacement<br>d = c(u) − u", "The displacement field d(u) = c(u) − u (Eq. 18) as a colour wheel, with arrows "
     "from u to c(u)"),
    ("guide g<br>(click a pixel)", "The generated guide RGB g; click a pixel to see where its spectrum came from"),
    ("proxy r:<br>candidate sources", "The proxy RGB r with the clicked guide pixel's source pixels, sized and "
     "coloured by weight T_uv"),
)


def arrow_segments(displacement: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Line segments (x, y pairs) for arrows every ``step`` px, from u to c(u) = u + d(u).

    Returns:
        x, y arrays of length 2·n for ``PlotCurveItem(connect="pairs")``, in image
        coordinates (pixel centres at +0.5).
    """
    rows = np.arange(step // 2, displacement.shape[0], step)
    cols = np.arange(step // 2, displacement.shape[1], step)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    d = displacement[rr, cc]
    x0, y0 = cc.ravel() + 0.5, rr.ravel() + 0.5
    x1, y1 = x0 + d[..., 1].ravel(), y0 + d[..., 0].ravel()
    return np.stack([x0, x1], 1).ravel(), np.stack([y0, y1], 1).ravel()


class WarpView(QWidget):
    """Displacement field, magnitude histogram, diagnostics and source lookup of one warp.

    Signals:
        guide_pixel_clicked(row, col): a pixel of the guide was clicked.
    """

    guide_pixel_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.target: Target | None = None
        self.selected: tuple[int, int] | None = None
        self.guide_box = QComboBox(toolTip="Guide whose warp is shown")
        self.arrow_check = QCheckBox("Arrows", checked=True)
        self.step_spin = QSpinBox(minimum=4, maximum=64, value=16, suffix=" px",
                                  toolTip="Spacing of the displacement arrows")
        # The clicked pixel's summary is long: it wraps on its own row (unwrapped in the
        # controls row it widened the view until the docks collapsed).
        self.info = QLabel(wordWrap=True)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        controls = QHBoxLayout()
        for widget in (QLabel("Guide"), self.guide_box, self.arrow_check, QLabel("every"), self.step_spin):
            controls.addWidget(widget)
        controls.addStretch(1)

        self.graphics = pg.GraphicsLayoutWidget()
        self.view_boxes = []
        for col, (title, tip) in enumerate(CAPTIONS):
            # Short captions on two lines: the three columns are narrow at laptop sizes.
            caption = self.graphics.addLabel(title, row=0, col=col, size="9pt")
            caption.setToolTip(tip)
            vb = self.graphics.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMenu=False)
            self.view_boxes.append(vb)
        for vb in self.view_boxes[1:]:
            vb.setXLink(self.view_boxes[0])
            vb.setYLink(self.view_boxes[0])
        self.flow_image, self.guide_image, self.proxy_image = (pg.ImageItem(axisOrder="row-major") for _ in range(3))
        for vb, item in zip(self.view_boxes, (self.flow_image, self.guide_image, self.proxy_image)):
            vb.addItem(item)
        self.arrows = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen((20, 20, 20, 200), width=1))
        self.arrow_tips = pg.ScatterPlotItem(size=3, brush=pg.mkBrush(20, 20, 20, 220), pen=None)
        self.view_boxes[0].addItem(self.arrows)
        self.view_boxes[0].addItem(self.arrow_tips)
        self.guide_marker = pg.ScatterPlotItem(size=14, symbol="+", pen=pg.mkPen("#ff00ff", width=2))
        self.view_boxes[1].addItem(self.guide_marker)
        self.candidates = pg.ScatterPlotItem(pen=pg.mkPen("w", width=1))
        self.view_boxes[2].addItem(self.candidates)
        self.weight_map = pg.colormap.get("plasma")
        #: Sources lighter than this share of the heaviest are left off the proxy panel
        #: (a row of T has up to K·s² = 784 entries, most of them tiny).
        self.min_relative_weight = 0.02

        self.histogram = self.graphics.addPlot(row=2, col=0, colspan=2)
        self.histogram.setLabel("bottom", "|d|", units="px")
        self.histogram.getAxis("bottom").enableAutoSIPrefix(False)
        self.histogram.setLabel("left", "pixels")
        self.histogram.setMaximumHeight(200)
        legend = self.graphics.addLayout(row=2, col=2)
        self.wheel_box = legend.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.wheel_box.setMaximumHeight(170)
        self.wheel_image = pg.ImageItem(axisOrder="row-major")
        self.wheel_box.addItem(self.wheel_image)
        wheel_caption = legend.addLabel("colour wheel:<br>hue = direction of d,<br>saturation = |d|", row=1,
                                        col=0, size="9pt")
        wheel_caption.setToolTip("Hue gives the direction of the displacement d, saturation its magnitude "
                                 "(full saturation at the 99th percentile of |d|); white = no displacement")
        self.weight_bar = pg.ColorBarItem(values=(0, 1), colorMap=self.weight_map, label="source weight T_uv",
                                          interactive=False, orientation="horizontal")
        self.weight_bar.axis.enableAutoSIPrefix(False)
        legend.addItem(self.weight_bar, row=2, col=0)

        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["diagnostic", "value"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumWidth(260)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.graphics)
        splitter.addWidget(self.table)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([700, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(controls)
        layout.addWidget(self.info)
        layout.addWidget(splitter, 1)

        self._draw_wheel_legend()
        self.guide_box.currentIndexChanged.connect(self.redraw)
        self.arrow_check.toggled.connect(self.redraw)
        self.step_spin.valueChanged.connect(self.redraw)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)

    # -- inputs ------------------------------------------------------------------------
    def set_target(self, target: Target | None) -> None:
        keep = self.guide_box.currentIndex()
        if target is not self.target:
            self.selected = None
        self.target = target
        n = len(target.warps) if target is not None else 0
        self.guide_box.blockSignals(True)
        self.guide_box.clear()
        self.guide_box.addItems([f"guide {j + 1}" for j in range(n)])
        self.guide_box.setCurrentIndex(min(max(keep, 0), n - 1) if n else -1)
        self.guide_box.blockSignals(False)
        self.redraw()

    @property
    def warp(self):
        j = self.guide_box.currentIndex()
        return self.target.warps[j] if self.target is not None and 0 <= j < len(self.target.warps) else None

    def select_guide_pixel(self, row: int, col: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Show the candidate sources of guide pixel (row, col); returns (rows, cols, weights)."""
        warp = self.warp
        if warp is None:
            return None
        self.selected = (row, col)
        rows, cols, weights = (np.asarray(a) for a in warp.sources_of(row, col))
        self.guide_marker.setData([col + 0.5], [row + 0.5])
        top = float(weights.max()) if weights.size else 1.0
        shown = weights >= self.min_relative_weight * top
        self.candidates.setData(cols[shown] + 0.5, rows[shown] + 0.5, size=5 + 14 * np.sqrt(weights[shown] / top),
                                brush=[pg.mkBrush(self.weight_map.map(w / top, mode="qcolor"))
                                       for w in weights[shown]])
        self.weight_bar.setLevels((0.0, top))
        self.info.setText(f"guide pixel ({row}, {col}): {weights.size} proxy sources, {int(shown.sum())} drawn "
                          f"(weight ≥ {self.min_relative_weight:.0%} of the heaviest, {top:.3f}); "
                          f"they hold {weights[shown].sum():.0%} of the weight")
        self._fill_table(warp, (rows, cols, weights))
        self.guide_pixel_clicked.emit(row, col)
        return rows, cols, weights

    # -- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        warp, target = self.warp, self.target
        for item in (self.flow_image, self.guide_image, self.proxy_image):
            item.clear()
        self.arrows.setData([], [])
        self.arrow_tips.setData([], [])
        self.histogram.clear()
        self.guide_marker.setData([], [])
        self.candidates.setData([], [])
        if warp is None or target is None or target.proxy is None:
            self.info.setText("No warp yet: run the Warp stage." if target is not None else "")
            self.table.setRowCount(0)
            return
        j = self.guide_box.currentIndex()
        d = np.asarray(warp.displacement, dtype=np.float32)
        magnitude = np.hypot(d[..., 0], d[..., 1])
        scale = float(np.percentile(magnitude, 99)) or 1.0
        self.flow_image.setImage(colour_wheel(d, scale), levels=(0.0, 1.0))
        proxy_rgb = target.proxy.pseudo_rgb()
        levels = stretch_levels(proxy_rgb)
        self.guide_image.setImage(target.guides[j], levels=levels)
        self.proxy_image.setImage(proxy_rgb, levels=levels)
        if self.arrow_check.isChecked():
            x, y = arrow_segments(d, self.step_spin.value())
            self.arrows.setData(x, y)
            self.arrow_tips.setData(x[1::2], y[1::2])
        counts, edges = np.histogram(magnitude, bins=60)
        self.histogram.plot(edges, counts, stepMode="center", fillLevel=0, brush=(31, 119, 180, 120),
                            pen=pg.mkPen("#1f77b4"))
        self.info.setText(f"median |d| = {np.median(magnitude):.2f} px, 99th percentile {scale:.2f} px "
                          "(colour saturation full at the 99th percentile)")
        self.view_boxes[0].autoRange(padding=0.0)
        if self.selected is not None:
            self.select_guide_pixel(*self.selected)
        else:
            self._fill_table(warp, None)

    def _fill_table(self, warp, sources) -> None:
        rows = [(key, _format(value)) for key, value in _flatten(dict(warp.diagnostics))]
        if sources is not None:
            r, c = self.selected
            rows.append(("clicked guide pixel", f"row {r}, col {c}"))
            order = np.argsort(-sources[2])
            for k in order:
                rows.append((f"  source ({int(sources[0][k])}, {int(sources[1][k])})", f"weight {sources[2][k]:.3f}"))
        self.table.setRowCount(len(rows))
        for i, (key, value) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(str(key)))
            self.table.setItem(i, 1, QTableWidgetItem(value))

    def _draw_wheel_legend(self) -> None:
        half = WHEEL_SIZE // 2
        yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
        wheel = colour_wheel(np.stack([yy, xx], axis=-1), max_magnitude=half)
        wheel[np.hypot(xx, yy) > half] = 1.0
        self.wheel_image.setImage(wheel, levels=(0.0, 1.0))

    def _on_click(self, event) -> None:
        vb = self.view_boxes[1]
        if event.button() != Qt.MouseButton.LeftButton or not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        point = vb.mapSceneToView(event.scenePos())
        warp = self.warp
        if warp is None:
            return
        row, col = math.floor(point.y()), math.floor(point.x())
        height, width = np.asarray(warp.displacement).shape[:2]
        if 0 <= row < height and 0 <= col < width:
            self.select_guide_pixel(row, col)


def _flatten(values: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested diagnostics (loss terms, timings) as "loss.l1"-style rows."""
    rows: list[tuple[str, object]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], float):
        return ", ".join(f"{v:.3g}" for v in value[:6]) + (" …" if len(value) > 6 else "")
    return str(value)
