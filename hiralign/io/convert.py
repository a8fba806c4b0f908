"""From a reader's :class:`~hiralign.io.common.RawCube` to values: whole or window by window.

:func:`prepare` settles everything that does not need the data values (wavelengths and
band order, fwhm, bad bands, scaling); :func:`convert_rows` then applies the value
conventions to any window of rows — scale to float32, move bands into wavelength order,
find ``data ignore value`` samples. :func:`finish_cube` runs it over the whole cube in
windows (so a memory-mapped file is never copied twice); :class:`LazyCube` runs it on
demand, so large cubes stream through ``info`` and tiled restoration in bounded memory.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.io.common import (
    LoadOptions,
    RawCube,
    band_vector,
    cube_name,
    handle_nonfinite,
    nm_per,
    nm_per_unit,
    resolve_wavelengths,
    warn,
)
from hiralign.io.rows import AxesRows, read_rows, row_windows

#: ENVI header keys holding one value per band: they move with the bands when sorted.
PER_BAND_HEADER_KEYS = ("band names", "data gain values", "data offset values", "solar irradiance",
                        "data reflectance gain values", "data reflectance offset values")


def full_scale(dtype: np.dtype) -> float:
    """The largest value of an integer dtype (1 for bool)."""
    if dtype.kind == "b":
        return 1.0
    return float(np.iinfo(dtype).max)


def scaling_of(dtype: np.dtype, scale_factor: float | None) -> dict[str, Any] | None:
    """The division applied to stored values: the file's scale factor or the integer full scale."""
    if scale_factor is not None and scale_factor not in (0.0, 1.0) and np.isfinite(scale_factor):
        return {"divisor": float(scale_factor), "reason": "reflectance scale factor"}
    if dtype.kind in "biu":
        return {"divisor": full_scale(dtype), "reason": f"{dtype.name} full scale"}
    return None


@dataclasses.dataclass
class Prepared:
    """What :func:`prepare` settles from a raw cube before reading its values.

    Attributes:
        shape: (H, W, B) of the cube.
        dtype: the stored data type.
        wavelengths: (B,) nm in increasing order, or None.
        order: band permutation applied to the stored bands (None: file order).
        fwhm: (B,) nm in the new order, or None.
        bad_bands: 0-based indices (new order).
        scaling: the division applied ({"divisor", "reason"}) or None.
        ignore_value: stored value meaning "no data", or None.
        metadata: the cube's metadata (without the value statistics added later).
    """

    shape: tuple[int, int, int]
    dtype: np.dtype
    wavelengths: np.ndarray | None
    order: np.ndarray | None
    fwhm: np.ndarray | None
    bad_bands: tuple[int, ...]
    scaling: dict[str, Any] | None
    ignore_value: float | None
    metadata: dict[str, Any]


def prepare(raw: RawCube, path: Path, options: LoadOptions) -> Prepared:
    """Check the stored array's shape and type and settle the band metadata.

    Raises:
        InputError: not 3-D, complex or not numeric, or unusable wavelengths.
    """
    shape = tuple(int(n) for n in raw.data.shape)
    dtype = np.dtype(raw.data.dtype)
    if len(shape) != 3:
        raise InputError(f"{path}: expected a 3-D cube (H, W, bands) but found shape {shape}")
    if dtype.kind == "c":
        raise InputError(f"{path}: complex data ({dtype}) is not supported")
    if dtype.kind not in "biuf":
        raise InputError(f"{path}: data type {dtype} is not numeric")
    bands = shape[2]
    metadata: dict[str, Any] = {"source": str(path), "format": raw.format, "dtype": dtype.name, **raw.metadata}
    scaling = scaling_of(dtype, raw.scale_factor)
    metadata["scaling"] = scaling
    if raw.ignore_value is not None:
        metadata["data_ignore_value"] = raw.ignore_value
    wavelengths, order = resolve_wavelengths(raw, path, bands, options.wavelengths, metadata)
    fwhm = band_vector(raw.fwhm, bands, "fwhm", path)
    if fwhm is not None:
        fwhm = fwhm * (nm_per_unit(raw) if raw.fwhm_unit is None else nm_per(raw.fwhm_unit))
    bbl = band_vector(raw.bbl, bands, "bbl (bad-band list)", path)
    if order is not None:
        fwhm = None if fwhm is None else fwhm[order]
        bbl = None if bbl is None else bbl[order]
        position = np.argsort(order)
        if "default_bands" in metadata:
            metadata["default_bands"] = [int(position[b]) for b in metadata["default_bands"]]
        header = metadata.get("envi_header")
        if isinstance(header, dict):
            # Per-band header lists (band names...) must follow their bands, or a re-save
            # would label the 655 nm band with the 668 nm band's name.
            header = dict(header)
            for key in PER_BAND_HEADER_KEYS:
                if isinstance(header.get(key), list) and len(header[key]) == bands:
                    header[key] = [header[key][int(i)] for i in order]
            metadata["envi_header"] = header
    bad_bands = () if bbl is None else tuple(int(i) for i in np.flatnonzero(bbl == 0))
    return Prepared(shape=shape, dtype=dtype, wavelengths=wavelengths, order=order, fwhm=fwhm,
                    bad_bands=bad_bands, scaling=scaling, ignore_value=raw.ignore_value, metadata=metadata)


def convert_rows(stored: np.ndarray, prep: Prepared, private: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows of stored values → (float32 rows in wavelength order, ignored-sample mask or None).

    Ignored samples (equal to the data ignore value, compared before scaling so the value
    is never wrapped into the dtype) are set to 0 in the returned rows. ``private`` says
    ``stored`` is a copy nobody else holds (a window read from disk), so float32 rows are
    converted in place instead of copied once more.
    """
    if prep.order is not None:
        stored, private = stored[:, :, prep.order], True  # fancy indexing copies
    ignored = None
    if prep.ignore_value is not None:
        ignored = stored == prep.ignore_value
        ignored = ignored if ignored.any() else None
    if private and stored.dtype == np.float32 and stored.flags.c_contiguous and stored.flags.writeable:
        data = stored
    else:
        data = np.array(stored, dtype=np.float32, order="C")
    if prep.scaling is not None and prep.scaling["divisor"] != 1.0:
        data /= np.float32(prep.scaling["divisor"])
    if ignored is not None:
        data[ignored] = 0.0
    return data, ignored


def on_disk(raw: RawCube) -> bool:
    """Whether ``raw``'s windows are private copies read from disk (see :class:`~hiralign.io.rows.AxesRows`)."""
    return isinstance(raw.data, AxesRows)


def compact_mask(mask: np.ndarray) -> np.ndarray:
    """An (H, W, B) mask as (H, W, 1) when every band agrees (whole pixels missing)."""
    if mask.shape[2] > 1 and np.array_equal(mask.all(axis=2), mask.any(axis=2)):
        return mask[:, :, :1].copy()
    return mask


def finish_cube(raw: RawCube, path: Path, options: LoadOptions, name: str | None = None) -> Cube:
    """Apply the shared conventions to ``raw`` and build the :class:`Cube`.

    The values are converted window by window into one float32 array, so a memory-mapped
    file costs its float32 size plus one window, not a copy of the file on top.

    Raises:
        InputError: bad wavelengths, or NaN/Inf values the caller did not allow.
    """
    prep = prepare(raw, path, options)
    h, w, b = prep.shape
    data = np.empty((h, w, b), dtype=np.float32)
    mask: np.ndarray | None = None
    for start, stop in row_windows(h, w * b * 4):
        rows, ignored = convert_rows(read_rows(raw.data, start, stop), prep, private=on_disk(raw))
        data[start:stop] = rows
        if ignored is not None:
            if mask is None:
                mask = np.zeros((h, w, b), dtype=bool)
            mask[start:stop] = ignored
    metadata = prep.metadata
    _warn_if_dark(path, prep.dtype.name, data, prep.scaling)
    if prep.ignore_value is not None:
        count = 0 if mask is None else int(np.count_nonzero(mask))
        metadata["ignored_values"] = count
        if count:
            mask = compact_mask(mask)  # type: ignore[arg-type]
            warn(path, f"{count} values equal the data ignore value {prep.ignore_value:g}; kept as the cube's "
                       "mask (0 in the data) and written back on save")
    handle_nonfinite(data, path, prep.bad_bands, options, metadata)
    try:
        return Cube(data=data, wavelengths=prep.wavelengths, fwhm=prep.fwhm, bad_bands=prep.bad_bands,
                    name=name or cube_name(path), metadata=metadata, mask=mask)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _warn_if_dark(path: Path, stored_dtype: str, data: np.ndarray, scaling: dict[str, Any] | None) -> None:
    """Say so when integer data fills only a sliver of its type's range (a 10-bit sensor in uint16)."""
    if scaling is None or scaling["reason"] == "reflectance scale factor" or scaling["divisor"] <= 255:
        return
    top = float(np.max(data)) if data.size else 0.0
    if 0.0 < top < 1.0 / 16.0:
        warn(path, f"{stored_dtype} values reach only {top * scaling['divisor']:.0f} of {scaling['divisor']:.0f} "
                   f"(max {top:.4f} after scaling by the full scale); the sensor likely has fewer bits, "
                   "so the cube is dark")


class LazyCube:
    """A cube whose values stay on disk and are read (and converted) a window of rows at a time.

    Made by :func:`hiralign.io.open_cube`. Band metadata is settled on opening, exactly as
    :func:`hiralign.io.load` would; values come from :meth:`read_rows` / :meth:`windows`
    with the same conventions (scaling, band order, ignored samples → 0 plus a mask, NaN
    in bad bands → 0). For memory-mapped ENVI/NPY files and HDF5 datasets only the rows
    asked for are read; other formats were read whole by their library on opening.

    Attributes:
        path: the file.
        name: the cube name (file stem).
        shape: (H, W, B).
        wavelengths, fwhm, bad_bands, metadata: as on the loaded :class:`Cube`.
    """

    def __init__(self, raw: RawCube, path: Path, options: LoadOptions, name: str | None = None) -> None:
        self._raw = raw
        self._options = options
        self.path = path
        self.prep = prepare(raw, path, options)
        self.name = name or cube_name(path)
        self.shape = self.prep.shape
        self.wavelengths = self.prep.wavelengths
        self.fwhm = self.prep.fwhm
        self.bad_bands = self.prep.bad_bands
        self.metadata = self.prep.metadata

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def n_bands(self) -> int:
        return self.shape[2]

    @property
    def on_disk(self) -> bool:
        """Whether values are read from disk per window (False: the library read them whole)."""
        return not isinstance(self._raw.data, np.ndarray) or isinstance(self._raw.data, np.memmap)

    def read_rows(self, start: int, stop: int, *, nonfinite: str = "refuse") -> tuple[np.ndarray, np.ndarray | None]:
        """Rows ``start:stop`` as (h, W, B) float32 plus their ignored-sample mask (or None).

        Args:
            start, stop: row range.
            nonfinite: "refuse" (InputError unless only in bad bands, or the cube was
                opened with ``zero_nonfinite``), "zero" or "keep".

        Raises:
            InputError: NaN/Inf values outside bad bands with ``nonfinite="refuse"``.
        """
        rows, ignored = convert_rows(read_rows(self._raw.data, start, stop), self.prep, private=on_disk(self._raw))
        if nonfinite != "keep":
            finite = np.isfinite(rows)
            if not finite.all():
                bands = np.flatnonzero(~finite.all(axis=(0, 1)))
                only_bad = bool(self.bad_bands) and set(bands.tolist()) <= set(self.bad_bands)
                if nonfinite == "zero" or only_bad or self._options.zero_nonfinite:
                    rows[~finite] = 0.0
                else:
                    raise InputError(f"{self.path}: {int(finite.size - np.count_nonzero(finite))} NaN/Inf values "
                                     f"in rows {start}–{stop - 1} (bands {', '.join(map(str, bands[:8]))}); use "
                                     "--zero-nonfinite (zero_nonfinite=True) to replace them by 0")
        return rows, ignored

    def read_mask(self, start: int, stop: int) -> np.ndarray | None:
        """The ignored-sample mask of rows ``start:stop`` ((h, W, B) bool), or None when none is."""
        if self.prep.ignore_value is None:
            return None
        stored = read_rows(self._raw.data, start, stop)
        if self.prep.order is not None:
            stored = stored[:, :, self.prep.order]
        mask = stored == self.prep.ignore_value
        return mask if mask.any() else None

    def windows(self, budget: int | None = None) -> Iterator[tuple[int, int]]:
        """Row ranges of about ``budget`` float32 bytes each (default :data:`~hiralign.io.rows.WINDOW_BYTES`)."""
        from hiralign.io import rows

        return row_windows(self.height, self.width * self.n_bands * 4, budget or rows.WINDOW_BYTES)

    def load(self) -> Cube:
        """The whole cube in memory (what :func:`hiralign.io.load` returns, warnings included)."""
        from hiralign.io.common import collect_warnings

        with collect_warnings() as notes:
            cube = finish_cube(self._raw, self.path, self._options, self.name)
        cube.metadata["warnings"] = list(self.metadata.get("warnings", [])) + [n for n in notes]
        return cube

    def pseudo_rgb(self) -> np.ndarray:
        """Γ: the (H, W, 3) float32 image of the bands nearest 660/550/470 nm, read by windows."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a 31-band cube without wavelengths: the assumption is the Cube's
            bands = list(self.like().rgb_band_indices())
        out = np.empty((self.height, self.width, 3), dtype=np.float32)
        for start, stop in self.windows():
            rows, _ = self.read_rows(start, stop, nonfinite="zero")
            out[start:stop] = rows[:, :, bands]
        return out

    def like(self) -> Cube:
        """A 1×1 cube with this cube's band metadata, for building outputs (``Cube.with_data``)."""
        return Cube(data=np.zeros((1, 1, self.n_bands), np.float32), wavelengths=self.wavelengths, fwhm=self.fwhm,
                    bad_bands=self.bad_bands, name=self.name, metadata=dict(self.metadata))

    def __repr__(self) -> str:
        return f"LazyCube({self.name!r}, shape={self.shape}, path={str(self.path)!r})"
