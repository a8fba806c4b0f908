"""Save a grid of titled RGB images as one PNG, offscreen (the figures of the ``*_look.py`` scripts)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_image_grid(rows: list[list[tuple[np.ndarray, str]]], out: Path, size: tuple[int, int]) -> Path:
    """Render ``rows`` of (RGB (H, W, 3) in [0, 1], title) panels with pyqtgraph and save them to ``out``.

    Args:
        rows: one list of panels per grid row; values outside [0, 1] are clipped.
        out: PNG path (its folder is made).
        size: (width, height) of the figure in pixels.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")
    widget = pg.GraphicsLayoutWidget()
    widget.resize(*size)
    for r, row in enumerate(rows):
        for c, (image, title) in enumerate(row):
            plot = widget.addPlot(row=r, col=c, title=f"<span style='font-size:9pt'>{title}</span>")
            plot.hideAxis("left"), plot.hideAxis("bottom")
            plot.invertY(True)
            plot.setAspectLocked(True)
            plot.addItem(pg.ImageItem(np.clip(image, 0, 1) * 255, levels=(0, 255)))
    widget.show()
    app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    widget.grab().save(str(out))
    return out
