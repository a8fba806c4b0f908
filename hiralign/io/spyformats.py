"""The other formats ``spectral`` reads: ERDAS/Lan (.lan, .gis) and classic AVIRIS (.rfl).

``spectral`` parses the header (ERDAS: the 128-byte Lan header; AVIRIS: fixed 614
samples × 224 bands of big-endian int16, BIP, scale factor 10000, wavelengths and fwhm
from a ``.spc`` calibration file beside it); the data is then memory-mapped with numpy
from the parameters spectral found, so it streams like an ENVI file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hiralign.io.common import RawCube, warn
from hiralign.io.rows import AxesRows

#: Suffix -> reader name.
SPECTRAL_SUFFIXES = {".lan": "erdas", ".gis": "erdas", ".rfl": "aviris"}


def _rows_of(img: Any) -> AxesRows:
    """Memory-map a spectral SpyFile's data in its own interleave, as (H, W, B) rows."""
    from spectral.io.bilfile import BilFile
    from spectral.io.bipfile import BipFile

    rows, cols, bands = int(img.nrows), int(img.ncols), int(img.nbands)
    if isinstance(img, BipFile):
        shape, axes = (rows, cols, bands), (0, 1, 2)
    elif isinstance(img, BilFile):
        shape, axes = (rows, bands, cols), (0, 2, 1)
    else:
        shape, axes = (bands, rows, cols), (1, 2, 0)
    mapped = np.memmap(img.filename, dtype=np.dtype(img.dtype), mode="r", offset=int(img.offset), shape=shape)
    return AxesRows(mapped, axes)


def read_spectral(path: Path) -> RawCube:
    """Read an ERDAS/Lan or AVIRIS file through spectral's header parsing."""
    kind = SPECTRAL_SUFFIXES[path.suffix.lower()]
    if kind == "erdas":
        from spectral.io import erdas

        img = erdas.open(os.fspath(path))
        return RawCube(data=_rows_of(img), format="ERDAS/Lan", metadata={"interleave": "bil"})
    from spectral.io import aviris

    calibration = next((p for p in (path.with_suffix(".spc"), path.with_suffix(".SPC")) if p.is_file()), None)
    img = aviris.open(os.fspath(path), os.fspath(calibration) if calibration else None)
    wavelengths = fwhm = None
    if calibration is not None and img.bands.centers:
        wavelengths, fwhm = np.asarray(img.bands.centers), np.asarray(img.bands.bandwidths)
    else:
        warn(path, f"no AVIRIS calibration file {path.with_suffix('.spc').name} beside it; no wavelengths")
    return RawCube(data=_rows_of(img), format="AVIRIS", wavelengths=wavelengths, wavelength_unit="nm",
                   fwhm=fwhm, fwhm_unit="nm", scale_factor=float(img.scale_factor),
                   metadata={"interleave": "bip", **({"calibration": str(calibration)} if calibration else {})})
