"""Checking and normalising what :func:`hiralign.warp.warp` is given."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.warp.config import WarpConfig

log = logging.getLogger(__name__)

#: Guide values may overshoot [0, 1] by this much (resampling ringing) and are clipped.
RANGE_SLACK = 1e-3


@dataclasses.dataclass
class WarpInputs:
    """Validated inputs: proxy (H, W, B), proxy RGB r and guide g (H, W, 3), all float32."""

    proxy: np.ndarray
    proxy_rgb: np.ndarray
    guide: np.ndarray
    like: Cube | None
    notes: list[str]


def prepare_inputs(proxy: Any, guide_rgb: Any, proxy_rgb: Any, wavelengths: Any,
                   config: WarpConfig) -> WarpInputs:
    """Validate and convert the warp inputs.

    Raises:
        InputError: wrong shapes, non-finite values, constant images, images smaller
            than the stencil, a guide outside [0, 1] or of another size (when
            ``config.resize_guide`` is False), a bare proxy array without RGB or wavelengths.
    """
    notes: list[str] = []
    like = proxy if isinstance(proxy, Cube) else None
    if like is not None:
        data = like.data
        name = f"proxy {like.name!r}"
    else:
        data = np.asarray(proxy)
        name = "proxy"
        if data.ndim != 3:
            raise InputError(f"{name} must be an (H, W, B) cube, got shape {data.shape}")
        if not np.issubdtype(data.dtype, np.number):
            raise InputError(f"{name} must be numeric, not {data.dtype}")
        data = np.asarray(data, dtype=np.float32)
    height, width, bands = data.shape
    smallest = max(config.stencil, config.patch_size, 2 * config.radius + 1)
    if height < smallest or width < smallest:
        raise InputError(f"{name} is {height}×{width}: the warp needs at least {smallest}×{smallest} "
                         f"pixels (stencil s={config.stencil}, descriptor patch s_m={config.patch_size})")
    if height * width < config.seeds:
        raise InputError(f"{name} has {height * width} pixels, fewer than the {config.seeds} seeds asked for")
    if not np.all(np.isfinite(data)):
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise InputError(f"{name} holds {bad} NaN/Inf values; clean it first (e.g. --zero-nonfinite)")

    rgb = _proxy_rgb(like, data, proxy_rgb, wavelengths, name)
    guide = _guide(guide_rgb, height, width, config, notes)
    for label, image in (("proxy RGB", rgb), ("guide RGB", guide)):
        if float(np.ptp(image)) < 1e-6:
            raise InputError(f"the {label} is constant: there is no structure to align")
    if rgb.min() < -0.05 or rgb.max() > 1.05:
        notes.append(f"proxy RGB spans [{rgb.min():.3g}, {rgb.max():.3g}], outside [0, 1]; "
                     "descriptors and the MI histogram assume [0, 1]")
    return WarpInputs(proxy=np.ascontiguousarray(data, dtype=np.float32), proxy_rgb=rgb, guide=guide,
                      like=like, notes=notes)


def _proxy_rgb(like: Cube | None, data: np.ndarray, proxy_rgb: Any, wavelengths: Any,
               name: str) -> np.ndarray:
    height, width = data.shape[:2]
    if proxy_rgb is None:
        if like is None:
            if wavelengths is None:
                raise InputError(f"{name} is a bare array: give proxy_rgb or its wavelengths so the "
                                 "pseudo-RGB Γ can be formed")
            like = Cube(data=data, wavelengths=wavelengths, name="proxy")
        rgb = like.pseudo_rgb()
    else:
        rgb = np.asarray(proxy_rgb)
        if rgb.shape != (height, width, 3):
            raise InputError(f"proxy_rgb must have shape ({height}, {width}, 3) like the proxy, got {rgb.shape}")
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    if not np.all(np.isfinite(rgb)):
        raise InputError("the proxy RGB holds NaN/Inf values")
    return rgb


def _guide(guide_rgb: Any, height: int, width: int, config: WarpConfig, notes: list[str]) -> np.ndarray:
    guide = np.asarray(guide_rgb)
    if guide.ndim != 3 or guide.shape[2] != 3:
        raise InputError(f"the guide must be an RGB image of shape (H, W, 3), got {guide.shape}")
    if not np.issubdtype(guide.dtype, np.floating):
        raise InputError(f"the guide must be float RGB in [0, 1], got {guide.dtype} "
                         "(hiralign.io.load_rgb converts image files)")
    guide = guide.astype(np.float32)
    if not np.all(np.isfinite(guide)):
        raise InputError("the guide RGB holds NaN/Inf values")
    low, high = float(guide.min()), float(guide.max())
    if low < -RANGE_SLACK or high > 1.0 + RANGE_SLACK:
        raise InputError(f"guide values must lie in [0, 1], found [{low:.4g}, {high:.4g}]")
    guide = np.clip(guide, 0.0, 1.0)
    if guide.shape[:2] != (height, width):
        message = f"guide is {guide.shape[0]}×{guide.shape[1]} but the proxy is {height}×{width}"
        if not config.resize_guide:
            raise InputError(f"{message}; resize it or allow resize_guide")
        from skimage.transform import resize

        shrink = guide.shape[0] > height or guide.shape[1] > width
        guide = resize(guide, (height, width, 3), order=1, anti_aliasing=shrink,
                       preserve_range=True).astype(np.float32)
        guide = np.clip(guide, 0.0, 1.0)
        log.warning("%s: resized the guide to %d×%d", message, height, width)
        notes.append(f"{message}: the guide was resized to {height}×{width}")
    return np.ascontiguousarray(guide)
