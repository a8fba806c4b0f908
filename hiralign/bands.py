"""Matching a target cube's bands to a model's bands.

A restorer is trained for a fixed band set. Targets with the same band count are used
band by band (what the paper does for KAIST's 420–720 nm against ICVL's 400–700 nm), with
a warning when their wavelengths differ; targets with another band count are linearly
resampled to the model's wavelengths when the ranges overlap, restored, and resampled
back to their own wavelengths.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import InputError

log = logging.getLogger(__name__)

#: Same-count targets whose wavelengths differ more than this (nm) are resampled instead.
INDEX_WISE_TOLERANCE_NM = 40.0


def resample_bands(cube: Cube, wavelengths: np.ndarray) -> Cube:
    """Linearly interpolate ``cube`` onto ``wavelengths`` (nm), clamping outside its range."""
    source = cube.wavelengths_or_default()
    target = np.asarray(wavelengths, dtype=np.float64)
    # Interpolation weights along the band axis: a (B_new, B_old) sparse-ish matrix.
    idx = np.clip(np.searchsorted(source, target) - 1, 0, len(source) - 2) if len(source) > 1 else None
    if idx is None:
        data = np.repeat(cube.data, len(target), axis=2)
    else:
        left, right = source[idx], source[idx + 1]
        frac = np.clip((target - left) / (right - left), 0.0, 1.0).astype(np.float32)
        data = cube.data[:, :, idx] * (1 - frac) + cube.data[:, :, idx + 1] * frac
    out = Cube(data=data.astype(np.float32), wavelengths=target, name=cube.name, metadata=dict(cube.metadata))
    out.metadata["resampled_from_bands"] = int(cube.n_bands)
    return out


def match_bands(cube: Cube, bands: int, wavelengths: np.ndarray | None) -> tuple[Cube, bool]:
    """Bring ``cube`` onto a model's band set.

    Args:
        cube: the target cube.
        bands: the model's band count.
        wavelengths: the model's wavelengths (nm) or None when it has none.

    Returns:
        (cube on the model's bands, whether it was resampled and must be mapped back).

    Raises:
        InputError: band counts differ and wavelengths are missing or do not overlap.
    """
    model_wl = None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)
    if cube.n_bands == bands:
        if model_wl is not None and cube.wavelengths is not None:
            shift = float(np.max(np.abs(cube.wavelengths - model_wl)))
            if shift > INDEX_WISE_TOLERANCE_NM:
                return _resample_checked(cube, model_wl), True
            if shift > 1.0:
                warnings.warn(f"{cube.name}: bands used index by index although its wavelengths differ from "
                              f"the model's by up to {shift:.0f} nm", stacklevel=2)
        return cube, False
    if model_wl is None or cube.wavelengths is None:
        raise InputError(f"{cube.name}: has {cube.n_bands} bands but the model expects {bands}; "
                         "without wavelengths on both sides it cannot be resampled")
    return _resample_checked(cube, model_wl), True


def _resample_checked(cube: Cube, model_wl: np.ndarray) -> Cube:
    wl = cube.wavelengths
    assert wl is not None
    overlap = min(wl[-1], model_wl[-1]) - max(wl[0], model_wl[0])
    span = model_wl[-1] - model_wl[0]
    if overlap <= 0 or (span > 0 and overlap < 0.5 * span):
        raise InputError(f"{cube.name}: its wavelengths {wl[0]:.0f}–{wl[-1]:.0f} nm do not cover the model's "
                         f"{model_wl[0]:.0f}–{model_wl[-1]:.0f} nm well enough to resample")
    log.warning("%s: resampling %d bands (%.0f–%.0f nm) to the model's %d bands (%.0f–%.0f nm)", cube.name,
                cube.n_bands, wl[0], wl[-1], model_wl.size, model_wl[0], model_wl[-1])
    return resample_bands(cube, model_wl)
