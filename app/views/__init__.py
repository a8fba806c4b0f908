"""The application's views (one module each) and the display helpers they share.

Importing this package sets pyqtgraph's global options once: row-major images (so a
(H, W[, C]) array shows row 0 at the top, as in every array library) and a white
background with black text for plots that read like figures.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="k", antialias=True)

#: Colours of the per-layer spectra (matplotlib's tab10 where it fits).
LAYER_COLOURS = {
    "degraded": "#7f7f7f",
    "proxy": "#1f77b4",
    "synth": "#ff7f0e",
    "restored": "#2ca02c",
    "clean": "#000000",
}

#: Colours given to pinned pixels, in order (distinct from the layer colours).
PIN_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def layer_colour(label: str) -> str:
    """Colour of a layer label such as ``"proxy"`` or ``"synth 2"``."""
    return LAYER_COLOURS.get(label.split()[0], "#444444")


def stretch_levels(image: np.ndarray, low: float = 2.0, high: float = 98.0,
                   max_samples: int = 262144) -> np.ndarray:
    """Per-channel ``low``–``high`` percentile levels of an (H, W[, C]) image.

    Returns:
        (C, 2) array of (min, max) levels (C = 1 for a 2-D image); a flat channel gets a
        unit-wide window so the display never divides by zero.
    """
    arr = image if image.ndim == 3 else image[..., None]
    step = max(1, int(np.sqrt(arr.shape[0] * arr.shape[1] / max_samples)))
    sample = arr[::step, ::step].reshape(-1, arr.shape[2])
    levels = np.empty((arr.shape[2], 2), dtype=np.float64)
    for c in range(arr.shape[2]):
        finite = sample[:, c][np.isfinite(sample[:, c])]
        lo, hi = (np.percentile(finite, [low, high]) if finite.size else (0.0, 1.0))
        if not hi > lo:
            hi = lo + (abs(lo) * 1e-3 or 1.0)
        levels[c] = (lo, hi)
    return levels


def to_display_rgb(image: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """An (H, W, 3) float image stretched per channel to [0, 1] (for thumbnails and figures)."""
    levels = stretch_levels(image, low, high)
    out = (image - levels[:, 0]) / (levels[:, 1] - levels[:, 0])
    return np.clip(np.nan_to_num(out), 0.0, 1.0).astype(np.float32)


def colour_wheel(displacement: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Optical-flow colour coding of an (H, W, 2) field (dy, dx) as an (H, W, 3) RGB image.

    Hue is the direction (0° = +x, to the right, counter-clockwise on screen), saturation
    the magnitude relative to ``max_magnitude`` (default: the 99th percentile), value 1.
    A zero displacement is white.
    """
    dy, dx = displacement[..., 0], displacement[..., 1]
    magnitude = np.hypot(dx, dy)
    scale = max_magnitude if max_magnitude else float(np.percentile(magnitude, 99) or 1.0)
    hue = (np.arctan2(-dy, dx) / (2 * np.pi)) % 1.0  # screen y points down
    sat = np.clip(magnitude / max(scale, 1e-9), 0.0, 1.0)
    return _hsv_to_rgb(hue, sat, np.ones_like(sat))


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6.0).astype(int) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(h.shape + (3,), dtype=np.float32)
    for k, (r, g, b) in enumerate(choices):
        mask = i == k
        out[mask] = np.stack([r[mask], g[mask], b[mask]], axis=-1)
    return out


def rgb_pixmap(rgb: np.ndarray, size: int) -> QPixmap:  # noqa: F821
    """A ``size``-px thumbnail of an (H, W, 3) image already scaled to [0, 1]."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPixmap

    step = max(1, max(rgb.shape[:2]) // (2 * size))
    small = np.ascontiguousarray((np.clip(rgb[::step, ::step], 0.0, 1.0) * 255).astype(np.uint8))
    image = QImage(small.data, small.shape[1], small.shape[0], small.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy()).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation)
