"""The compare view: proxy RGB r_i vs generated guide g_ij vs transported RGB r̃_ij = T_ij r_i.

Modes (as in silx's CompareImages): side by side with linked zoom/pan, a swipe between two
images with a draggable divider, and the absolute difference of two images. A gallery
underneath shows every guide of the current proxy; clicking one selects it. All three RGB
images share one 2–98 % display stretch taken from the proxy, so brightness differences
are real, not display artefacts.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.session import Target
from app.views import rgb_pixmap, stretch_levels

MODES = ("Side by side", "Swipe", "Difference")
IMAGES = ("proxy r", "guide g", "transported r̃")


class CompareView(QWidget):
    """Shows a target's proxy RGB, its guides and their transported RGBs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.target: Target | None = None
        self.mode_box = QComboBox(toolTip="How to compare the images")
        self.mode_box.addItems(MODES)
        self.guide_box = QComboBox(toolTip="Generated guide to compare")
        self.a_box, self.b_box = QComboBox(), QComboBox()
        for box, default in ((self.a_box, 0), (self.b_box, 1)):
            box.addItems(IMAGES)
            box.setCurrentIndex(default)
            box.setToolTip("Images compared in swipe and difference modes")
        self.info = QLabel(wordWrap=True)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # Two rows: in one, the four boxes needed 550 px and squeezed the docks at 1024 px.
        controls = QHBoxLayout()
        for widget in (QLabel("Mode"), self.mode_box, QLabel("Guide"), self.guide_box):
            controls.addWidget(widget)
        controls.addStretch(1)
        self.pair_row = QWidget()  # A and B matter in swipe and difference modes only
        pair = QHBoxLayout(self.pair_row)
        pair.setContentsMargins(0, 0, 0, 0)
        for widget in (QLabel("A"), self.a_box, QLabel("B"), self.b_box):
            pair.addWidget(widget)
        pair.addStretch(1)
        self.pair_row.hide()

        self.graphics = pg.GraphicsLayoutWidget()
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListWidget.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(96, 96))
        self.gallery.setFixedHeight(130)
        self.gallery.setFlow(QListWidget.Flow.LeftToRight)
        self.gallery.setWrapping(False)
        self.gallery.setToolTip("All guides of this proxy; click one to compare it")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(controls)
        layout.addWidget(self.pair_row)
        layout.addWidget(self.info)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.gallery)

        self.view_boxes: list[pg.ViewBox] = []
        self.images: list[pg.ImageItem] = []
        self.swipe_line: pg.InfiniteLine | None = None
        self._levels = np.array([[0.0, 1.0]] * 3)
        self.mode_box.currentIndexChanged.connect(self.redraw)
        self.guide_box.currentIndexChanged.connect(self._on_guide_changed)
        self.a_box.currentIndexChanged.connect(self.redraw)
        self.b_box.currentIndexChanged.connect(self.redraw)
        self.gallery.currentRowChanged.connect(self._on_gallery_row)
        self.crosshairs: list[pg.ScatterPlotItem] = []
        self._hover_proxy = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30,
                                           slot=lambda args: self._sync_crosshair(args[0]))

    # -- inputs ------------------------------------------------------------------------
    def set_target(self, target: Target | None) -> None:
        keep = self.guide_box.currentIndex()
        self.target = target
        self.guide_box.blockSignals(True)
        self.guide_box.clear()
        guides = target.guides if target is not None else []
        self.guide_box.addItems([f"guide {j + 1}" for j in range(len(guides))])
        self.guide_box.setCurrentIndex(min(max(keep, 0), len(guides) - 1) if guides else -1)
        self.guide_box.blockSignals(False)
        if target is not None and target.proxy is not None:
            self._levels = stretch_levels(target.proxy.pseudo_rgb())
        self._fill_gallery()
        self.redraw()

    def rgb(self, which: str) -> np.ndarray | None:
        """The (H, W, 3) image named in :data:`IMAGES` for the selected guide, or None."""
        target, j = self.target, self.guide_box.currentIndex()
        if target is None or target.proxy is None:
            return None
        if which == IMAGES[0]:
            return target.proxy.pseudo_rgb()
        if which == IMAGES[1]:
            return target.guides[j] if 0 <= j < len(target.guides) else None
        return np.asarray(target.warps[j].transported_rgb) if 0 <= j < len(target.warps) else None

    # -- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        self.graphics.clear()
        self.view_boxes, self.images, self.swipe_line, self.crosshairs = [], [], None, []
        mode = self.mode_box.currentText()
        self.pair_row.setVisible(mode != MODES[0])
        if self.target is None or self.target.proxy is None:
            self.info.setText("Run the Proxy stage to compare proxy and guide RGBs.")
            self.info.show()
            return
        self.info.setText("" if self.target.guides else "No guides yet: run the Generate stage.")
        self.info.setVisible(bool(self.info.text()))  # an empty line would only push the images down
        if mode == MODES[0]:
            for col, which in enumerate(IMAGES):
                self._add_image(col, which, self.rgb(which))
        elif mode == MODES[1]:
            self._draw_swipe()
        else:
            self._draw_difference()
        for vb in self.view_boxes[1:]:
            vb.setXLink(self.view_boxes[0])
            vb.setYLink(self.view_boxes[0])
        shown = [vb for vb, item in zip(self.view_boxes, self.images) if item.image is not None]
        if shown:
            shown[0].autoRange(padding=0.0)

    def _new_view_box(self, col: int, title: str) -> pg.ViewBox:
        self.graphics.addLabel(title, row=0, col=col, size="11pt")
        vb = self.graphics.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMenu=False)
        crosshair = pg.ScatterPlotItem(size=17, symbol="+", pen=pg.mkPen("#00e5ff", width=1.5))
        crosshair.setZValue(20)
        vb.addItem(crosshair)
        self.view_boxes.append(vb)
        self.crosshairs.append(crosshair)
        return vb

    def _sync_crosshair(self, scene_pos) -> None:
        """Hovering one panel draws a crosshair at the same pixel in every panel."""
        inside = [vb for vb in self.view_boxes if vb.sceneBoundingRect().contains(scene_pos)]
        if not inside:
            for crosshair in self.crosshairs:
                crosshair.setData([], [])
            return
        point = inside[0].mapSceneToView(scene_pos)
        for crosshair in self.crosshairs:
            crosshair.setData([point.x()], [point.y()])

    def _on_gallery_row(self, row: int) -> None:
        if row >= 0:
            self.guide_box.setCurrentIndex(row)

    def _add_image(self, col: int, title: str, rgb: np.ndarray | None,
                   mark_missing: bool = True) -> tuple[pg.ViewBox, pg.ImageItem]:
        vb = self._new_view_box(col, f"{title} (not computed)" if rgb is None and mark_missing else title)
        item = pg.ImageItem(axisOrder="row-major")
        if rgb is not None:
            item.setImage(rgb, levels=self._levels)
        vb.addItem(item)
        self.images.append(item)
        return vb, item

    def _pair(self, title: str) -> tuple[np.ndarray | None, np.ndarray | None, pg.ViewBox, pg.ImageItem]:
        """The A and B images (None when missing or of different shapes) and one empty panel."""
        a_name, b_name = self.a_box.currentText(), self.b_box.currentText()
        a, b = self.rgb(a_name), self.rgb(b_name)
        vb, item = self._add_image(0, title.format(a=a_name, b=b_name), None, mark_missing=False)
        if a is None or b is None or a.shape != b.shape:
            return None, None, vb, item
        return a, b, vb, item

    def _draw_swipe(self) -> None:
        a, b, vb, item = self._pair("swipe: {a} (left) | {b} (right)")
        if a is None or b is None:
            return
        line = pg.InfiniteLine(pos=a.shape[1] / 2, angle=90, movable=True, pen=pg.mkPen("#ffff00", width=2))
        vb.addItem(line)
        self.swipe_line = line

        def update() -> None:
            split = int(np.clip(round(line.value()), 0, a.shape[1]))
            item.setImage(np.concatenate([a[:, :split], b[:, split:]], axis=1), levels=self._levels)

        line.sigPositionChanged.connect(update)
        update()

    def _draw_difference(self) -> None:
        a, b, _vb, item = self._pair("|{a} − {b}| (mean over R, G, B)")
        if a is None or b is None:
            return
        diff = np.abs(a - b).mean(axis=2)
        high = float(np.percentile(diff, 99.5)) or 1e-6
        item.setImage(diff, levels=(0.0, high))
        bar = pg.ColorBarItem(values=(0.0, high), colorMap=pg.colormap.get("inferno"), label="|difference|",
                              interactive=False)
        bar.setImageItem(item, insert_in=None)
        self.graphics.addItem(bar, row=1, col=1)

    def _fill_gallery(self) -> None:
        self.gallery.blockSignals(True)
        self.gallery.clear()
        for j, guide in enumerate(self.target.guides if self.target is not None else []):
            shown = np.clip((guide - self._levels[:, 0]) / (self._levels[:, 1] - self._levels[:, 0]), 0, 1)
            pixmap = rgb_pixmap(shown, 96)
            warped = "warped" if j < len(self.target.warps) else "not warped"
            self.gallery.addItem(QListWidgetItem(QIcon(pixmap), f"guide {j + 1}\n{warped}"))
        self.gallery.setCurrentRow(self.guide_box.currentIndex())
        self.gallery.blockSignals(False)

    def _on_guide_changed(self, index: int) -> None:
        self.gallery.blockSignals(True)
        self.gallery.setCurrentRow(index)
        self.gallery.blockSignals(False)
        self.redraw()
