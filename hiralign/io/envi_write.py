"""Writing ENVI cubes: whole (:func:`write_envi`) or row window by row window (:class:`EnviWriter`).

Data: BSQ, little-endian, float32 by default or the dtype a :class:`~hiralign.io.store.StorePlan`
names (``save(..., dtype="input")``). Header: written by ``spectral.envi.write_envi_header``
with wavelength (nm), fwhm, bbl, default bands, the scale factor and ``data ignore value``
of the plan, and — for a cube read from ENVI — its ``description`` and the keys in
:data:`PASSTHROUGH_KEYS` (band names in the cube's band order). Both files are written
through temporary siblings and renamed, data first, so a header never describes a
partial file. :class:`EnviWriter` writes rows into the temporary data file with
``os.pwrite`` (never a writable memory map, whose dirty pages would count as the
process's memory), so an output of any size streams in bounded memory.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from hiralign.atomic import atomic_path
from hiralign.cube import Cube
from hiralign.io.common import good_band_list, warn
from hiralign.io.rows import row_windows
from hiralign.io.store import StorePlan, header_values, report_clipped, store_plan, to_stored

#: Numpy dtype name -> ENVI ``data type`` code.
ENVI_CODES = {"uint8": 1, "int16": 2, "int32": 3, "float32": 4, "float64": 5, "uint16": 12, "uint32": 13,
              "int64": 14, "uint64": 15}
#: Header keys copied from a loaded cube's header when it is saved again.
PASSTHROUGH_KEYS = ("sensor type", "acquisition date", "acquisition time", "map info", "projection info",
                    "coordinate system string", "x start", "y start", "pixel size", "band names",
                    "data gain values", "data offset values", "solar irradiance")
_PER_BAND = ("band names", "data gain values", "data offset values", "solar irradiance")


def envi_paths(path: Path) -> tuple[Path, Path]:
    """The (header, data) paths ``save`` writes for a target named ``path``."""
    if path.suffix.lower() == ".hdr":
        return path, path.with_suffix(".img")
    return path.with_suffix(".hdr"), path


def envi_header(like: Cube, shape: tuple[int, int, int], plan: StorePlan) -> dict[str, Any]:
    """The header dict for data of ``shape`` stored under ``plan`` with ``like``'s band metadata."""
    h, w, b = shape
    old = like.metadata.get("envi_header") or {}
    description = old.get("description") if isinstance(old.get("description"), str) else None
    meta: dict[str, Any] = {
        "description": description or f"hiralign cube {like.name}",
        "samples": w, "lines": h, "bands": b, "header offset": 0, "file type": "ENVI Standard",
        "data type": ENVI_CODES[plan.dtype.name], "interleave": "bsq", "byte order": 0,
    }
    for key in PASSTHROUGH_KEYS:
        if key in old and not (key in _PER_BAND and (not isinstance(old[key], list) or len(old[key]) != b)):
            meta[key] = old[key]
    if like.wavelengths is not None:
        meta["wavelength units"] = "Nanometers"
        meta["wavelength"] = [repr(float(v)) for v in like.wavelengths]
    if like.fwhm is not None:
        meta["fwhm"] = [repr(float(v)) for v in like.fwhm]
    if like.bad_bands:
        meta["bbl"] = good_band_list(like).tolist()
    default_bands = like.metadata.get("default_bands")
    if default_bands and all(0 <= int(i) < b for i in default_bands):
        meta["default bands"] = [int(i) + 1 for i in default_bands]
    for key, value in header_values(plan).items():
        meta[key] = repr(float(value)) if not float(value).is_integer() else str(int(value))
    return meta


class EnviWriter:
    """An ENVI BSQ cube written row window by row window, atomically.

    >>> with EnviWriter(path, (H, W, B), like=cube) as out:
    ...     for start, stop in windows:
    ...         out.write_rows(start, rows_float32, mask_rows)

    Nothing appears at ``path`` until the ``with`` block ends without an exception; then
    the data file and its header are renamed into place (data first).

    Args:
        path: the target (.hdr or data file).
        shape: (H, W, B) of the output.
        like: the cube whose band metadata, header keys and dtype/scaling the output takes.
        dtype: as for :func:`hiralign.io.save` (None: float32; "input"; a dtype name).
    """

    def __init__(self, path: Path, shape: tuple[int, int, int], like: Cube, dtype: str | None = None) -> None:
        self.path = Path(path)
        self.header, self.data_file = envi_paths(self.path)
        self.shape = tuple(int(n) for n in shape)
        self.like = like
        self.plan = store_plan(like, dtype, self.path)
        self._stack = contextlib.ExitStack()
        self._fd: int | None = None
        self._rows_done = 0
        self._clipped: list[int] = []

    def __enter__(self) -> EnviWriter:
        tmp_header = self._stack.enter_context(atomic_path(self.header))
        self._tmp_header = tmp_header
        tmp_data = self._stack.enter_context(atomic_path(self.data_file))
        self._fd = os.open(tmp_data, os.O_WRONLY | os.O_TRUNC)
        self._stack.callback(os.close, self._fd)
        h, w, b = self.shape
        os.ftruncate(self._fd, h * w * b * self.plan.dtype.itemsize)  # sparse until written
        return self

    def write_rows(self, start: int, rows: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Write (h, W, B) float32 ``rows`` at row ``start`` (mask: (h, W, B|1) no-data samples)."""
        assert self._fd is not None, "use EnviWriter in a with block"
        h, w, b = self.shape
        if rows.shape[1:] != (w, b) or start < 0 or start + rows.shape[0] > h:
            raise ValueError(f"rows of shape {rows.shape} at {start} do not fit an output of shape {self.shape}")
        stored = to_stored(rows, mask, self.plan, self.path, self._clipped)
        item = self.plan.dtype.itemsize
        for band in range(b):
            chunk = np.ascontiguousarray(stored[:, :, band]).tobytes()
            offset = (band * h * w + start * w) * item
            written = 0
            while written < len(chunk):  # pwrite may write less than asked
                written += os.pwrite(self._fd, chunk[written:], offset + written)
        self._rows_done += rows.shape[0]

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            from spectral.io import envi

            try:
                report_clipped(self.path, self._clipped, self.plan)
                envi.write_envi_header(os.fspath(self._tmp_header), envi_header(self.like, self.shape, self.plan))
            except BaseException as exc:  # a failed header (disk full...) must still remove both temporaries
                self._stack.__exit__(type(exc), exc, exc.__traceback__)
                raise
        # Closing the stack renames data then header on success; removes both on error. The
        # data file's atomic_path was entered last, so it is renamed first.
        self._stack.__exit__(kind, value, traceback)


def write_envi(cube: Cube, path: Path, compress: bool = False, dtype: str | None = None) -> Path:
    """Write ``cube`` as ENVI BSQ (float32 unless ``dtype`` says otherwise) and return the header path.

    ENVI data files are never compressed; ``compress`` is accepted and warned about.
    """
    if compress:
        warn(path, "ENVI data files are stored uncompressed")
    h, w, b = cube.shape
    with EnviWriter(path, cube.shape, cube, dtype) as out:
        for start, stop in row_windows(h, w * b * 8):
            mask = None if cube.mask is None else cube.mask[start:stop]
            out.write_rows(start, cube.data[start:stop], mask)
    return out.header
