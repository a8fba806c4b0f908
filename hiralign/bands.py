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
    """Linearly interpolate ``cube`` onto ``wavelengths`` (nm), clamping outside its range.

    Band metadata moves with the values: each new band's fwhm is interpolated with the
    same weights, a new band is bad when a bad band contributes to it, and the no-data
    mask is the union of the contributing bands' masks. Resampling back onto the
    wavelengths a cube was resampled from restores their fwhm and bad bands exactly
    (the round trip ``match_bands`` → restore → back does this).
    """
    source = cube.wavelengths_or_default()
    target = np.asarray(wavelengths, dtype=np.float64)
    # Each new band j mixes source bands lo[j] and lo[j] + 1 with weights (1 - frac, frac).
    if len(source) > 1:
        lo = np.clip(np.searchsorted(source, target) - 1, 0, len(source) - 2)
        frac = np.clip((target - source[lo]) / (source[lo + 1] - source[lo]), 0.0, 1.0)
        hi = lo + 1
    else:
        lo = hi = np.zeros(len(target), dtype=np.int64)
        frac = np.zeros(len(target))
    f32 = frac.astype(np.float32)
    data = cube.data[:, :, lo] * (1 - f32) + cube.data[:, :, hi] * f32
    uses_lo, uses_hi = frac < 1.0, frac > 0.0
    fwhm = None
    if cube.fwhm is not None:
        fwhm = cube.fwhm[lo] * (1 - frac) + cube.fwhm[hi] * frac
    bad = np.zeros(cube.n_bands, dtype=bool)
    bad[list(cube.bad_bands)] = True
    new_bad = (bad[lo] & uses_lo) | (bad[hi] & uses_hi)
    mask = None
    if cube.mask is not None:
        if cube.mask.shape[2] == 1:
            mask = cube.mask
        else:
            mask = (cube.mask[:, :, lo] & uses_lo) | (cube.mask[:, :, hi] & uses_hi)
    metadata = dict(cube.metadata)
    origin = metadata.pop("resampled_from", None)
    if origin is not None and len(origin["wavelengths"]) == target.size and np.allclose(origin["wavelengths"], target):
        # Back onto the grid the cube came from: its own band metadata, not interpolated copies.
        fwhm = None if origin["fwhm"] is None else np.asarray(origin["fwhm"], dtype=np.float64)
        new_bad = np.zeros(target.size, dtype=bool)
        new_bad[list(origin["bad_bands"])] = True
        metadata.pop("resampled_from_bands", None)
    else:
        metadata["resampled_from_bands"] = int(cube.n_bands)
        metadata["resampled_from"] = {"wavelengths": source.tolist(),
                                      "fwhm": None if cube.fwhm is None else cube.fwhm.tolist(),
                                      "bad_bands": list(cube.bad_bands)}
    return Cube(data=data.astype(np.float32), wavelengths=target, fwhm=fwhm,
                bad_bands=tuple(int(i) for i in np.flatnonzero(new_bad)), name=cube.name, metadata=metadata,
                mask=mask)


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
