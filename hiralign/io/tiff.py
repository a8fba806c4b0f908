"""Multi-page TIFF cubes (tifffile).

Reading: a series whose last axis is samples (``...YXS``, e.g. a 4-channel image) is
already (H, W, B); any other 3-D series (pages ``IYX``/``QYX``/``CYX``/``ZYX``) has the
bands first and is moved to last. A 2-D TIFF is a single image, not a cube. Wavelengths,
fwhm and bad bands come from the JSON description tifffile writes (:func:`write_tiff`).

Writing: one float32 page per band, ``axes = "CYX"``, with the band metadata in that
JSON description, so a cube round-trips exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hiralign.atomic import atomic_path
from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.io.common import RawCube, good_band_list
from hiralign.io.variables import band_info


def read_tiff(path: Path) -> RawCube:
    """Read a multi-page or multi-sample TIFF as an (H, W, B) cube in its own dtype."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise InputError(f"{path}: the TIFF holds no image")
        series = tif.series[0]
        axes = series.axes
        data = series.asarray()
        described: dict[str, Any] = {}
        for meta in tif.shaped_metadata or ():
            described.update(meta)
    squeeze = tuple(i for i, n in enumerate(data.shape) if n == 1 and data.ndim > 3)
    if squeeze:
        data = data.squeeze(axis=squeeze)
        axes = "".join(a for i, a in enumerate(axes) if i not in squeeze)
    if data.ndim == 2:
        raise InputError(f"{path}: a single 2-D image of shape {data.shape}, not a cube; "
                         "a cube TIFF has one page per band")
    if data.ndim != 3:
        raise InputError(f"{path}: TIFF series of shape {data.shape} (axes {axes}); expected 3-D")
    if not axes.endswith("S"):
        data = np.moveaxis(data, 0, 2)
    extra = {k: v for k, v in described.items() if k in ("wavelengths", "fwhm", "bbl", "wavelength_units")}
    metadata = {"axes": axes}
    if isinstance(described.get("name"), str):
        metadata["stored_name"] = described["name"]
    return RawCube(data=data, format="TIFF", metadata=metadata, **band_info([extra], data.shape[2]))


def write_tiff(cube: Cube, path: Path, compress: bool = False) -> Path:
    """Write ``cube`` as a float32 multi-page TIFF (one page per band) with band metadata.

    ``compress`` uses lossless zlib (deflate) pages.
    """
    import tifffile

    described: dict[str, Any] = {"axes": "CYX", "name": cube.name}
    if cube.wavelengths is not None:
        described["wavelengths"] = cube.wavelengths.tolist()
        described["wavelength_units"] = "nm"
    if cube.fwhm is not None:
        described["fwhm"] = cube.fwhm.tolist()
    if cube.bad_bands:
        described["bbl"] = good_band_list(cube).tolist()
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.ascontiguousarray(cube.data.transpose(2, 0, 1)),
                         photometric="minisblack", metadata=described, compression="zlib" if compress else None)
    return path
