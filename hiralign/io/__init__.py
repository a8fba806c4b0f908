"""Read and write hyperspectral cubes and RGB images, choosing the format by suffix.

>>> cube = load("scene.hdr")                       # ENVI (.hdr or its .img/.raw/.dat/.hyspex...)
>>> cube = load("scene.mat", var="cube")           # MAT v5 or v7.3 (HDF5)
>>> cube = load("cloth_ms")                        # CAVE folder of *_ms_01.png … *_ms_31.png
>>> cube = load("x.npy", wavelengths="420:720:10") # .npy/.npz, .tif/.tiff (GeoTIFF), .h5/.nc, .lan, .rfl
>>> save(cube, "out.hdr")                          # .hdr/.img, .mat, .npy, .npz, .tif, .h5, .nc
>>> save(cube, "counts.hdr", dtype="input")        # back in the file's own dtype (e.g. uint16)
>>> big = open_cube("huge.hdr")                    # stays on disk; big.read_rows(y0, y1)

Every problem with a file raises a :class:`~hiralign.errors.HiralignError` naming it;
repairs (skipped header keys, zeroed NaN in bad bands...) are logged as warnings on the
``hiralign.io`` logger and listed in ``cube.metadata["warnings"]``. Conventions: docs/formats.md.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import HiralignError, InputError, MissingFileError
from hiralign.io.common import LoadOptions, RawCube, collect_warnings, warn
from hiralign.io.convert import LazyCube, finish_cube
from hiralign.io.variables import Variable

__all__ = ["load", "save", "would_replace", "open_cube", "load_rgb", "save_rgb", "list_variables", "format_of",
           "CUBE_SUFFIXES", "SAVE_SUFFIXES", "Variable", "LazyCube"]

#: ENVI data-file suffixes accepted in place of the header.
ENVI_DATA_SUFFIXES = (".img", ".raw", ".dat", ".bsq", ".bil", ".bip", ".hyspex", ".bin")
#: HDF5 / NetCDF suffixes (generic cubes; MAT v7.3 files are HDF5 too but keep .mat).
HDF_SUFFIXES = (".h5", ".hdf5", ".he5", ".nc", ".nc4", ".cdf")
#: Suffix -> format key, for reading.
_READ_FORMATS = {".hdr": "envi", **{s: "envi" for s in ENVI_DATA_SUFFIXES}, ".mat": "mat",
                 ".npy": "npy", ".npz": "npz", ".tif": "tiff", ".tiff": "tiff",
                 **{s: "hdf" for s in HDF_SUFFIXES}, ".lan": "spectral", ".gis": "spectral", ".rfl": "spectral"}
#: Suffixes :func:`load` understands (plus folders of CAVE band PNGs).
CUBE_SUFFIXES: tuple[str, ...] = tuple(_READ_FORMATS)
#: Suffixes :func:`save` writes.
SAVE_SUFFIXES: tuple[str, ...] = (".hdr", ".img", ".mat", ".npy", ".npz", ".tif", ".tiff", ".h5", ".hdf5",
                                  ".he5", ".nc", ".nc4")
_FORMAT_NAMES = {"envi": "an ENVI cube", "mat": "a MAT file", "npy": "a .npy array", "npz": "a .npz archive",
                 "tiff": "a TIFF", "folder": "a folder of band PNGs", "hdf": "an HDF5/NetCDF file",
                 "spectral": "an ERDAS/AVIRIS file"}


def format_of(path: str | os.PathLike) -> str:
    """The format key of ``path``: "envi", "mat", "npy", "npz", "tiff", "hdf", "spectral" or "folder".

    Raises:
        InputError: the suffix is not one of :data:`CUBE_SUFFIXES`.
    """
    p = Path(path)
    if p.is_dir():
        return "folder"
    fmt = _READ_FORMATS.get(p.suffix.lower())
    if fmt is None and Path(f"{p}.hdr").is_file():
        return "envi"  # an ENVI data file without suffix, header beside it
    if fmt is None:
        raise InputError(f"{p}: unknown file type {p.suffix or '(no suffix)'!r}; hyperspectral cubes are read "
                         f"from {', '.join(CUBE_SUFFIXES)} files or a folder of band PNGs")
    return fmt


def _readers() -> dict[str, Callable[[Path, LoadOptions], RawCube]]:
    from hiralign.io import arrays, envi, folder, hdf, matlab, spyformats, tiff

    return {
        "hdf": lambda p, o: hdf.read_hdf(p, o.var),
        "spectral": lambda p, o: spyformats.read_spectral(p),
        "envi": lambda p, o: envi.read_envi(p),
        "mat": lambda p, o: matlab.read_mat(p, o.var),
        "npy": lambda p, o: arrays.read_npy(p),
        "npz": lambda p, o: arrays.read_npz(p, o.var),
        "tiff": lambda p, o: tiff.read_tiff(p),
        "folder": lambda p, o: folder.read_folder(p),
    }


def load(path: str | os.PathLike, *, var: str | None = None,
         wavelengths: np.ndarray | Sequence[float] | str | None = None,
         zero_nonfinite: bool = False, keep_nonfinite: bool = False) -> Cube:
    """Load a hyperspectral cube, choosing the reader by suffix.

    Args:
        path: an ENVI header or data file, a .mat/.npy/.npz/.tif/.h5/.nc/.lan/.rfl file,
            or a CAVE folder (suffixes: :data:`CUBE_SUFFIXES`).
        var: MAT/NPZ/HDF5/NetCDF only: the variable (HDF5: dataset path) holding the cube,
            when the file has several.
        wavelengths: (B,) band centres (nm, or µm if all < 30) or a string such as
            "420:720:10"; used when the file has none (or invalid ones).
        zero_nonfinite: replace NaN/Inf values by 0 (with a warning) instead of refusing.
        keep_nonfinite: keep NaN/Inf values as they are (for inspection, e.g. ``info``).

    Returns:
        The cube: (H, W, B) float32, integer data divided by its full scale (or the
        file's scale factor), wavelengths in nm, ``mask`` marking the data-ignore-value
        samples (0 in ``data``); ``metadata`` records the format, dtype on disk and scaling.

    Raises:
        MissingFileError: the path (or an ENVI partner file) does not exist.
        InputError: the file is unreadable, truncated, not a cube, or inconsistent.
    """
    with collect_warnings() as notes:
        raw, p, options = _read_raw(path, var, wavelengths, zero_nonfinite, keep_nonfinite)
        cube = finish_cube(raw, p, options)
    cube.metadata["warnings"] = list(notes)
    return cube


def open_cube(path: str | os.PathLike, *, var: str | None = None,
              wavelengths: np.ndarray | Sequence[float] | str | None = None,
              zero_nonfinite: bool = False) -> LazyCube:
    """Open a cube without reading its values: band metadata now, rows on demand.

    ENVI (and ERDAS/AVIRIS) and .npy files are memory-mapped and HDF5/NetCDF datasets read
    by chunks, so ``read_rows`` touches only the rows asked for and memory stays bounded
    whatever the file size; other formats are read whole by their library (as ``load``
    would) and then served by rows. Values follow :func:`load`'s conventions exactly.

    Raises:
        MissingFileError, InputError: as :func:`load`.
    """
    with collect_warnings() as notes:
        raw, p, options = _read_raw(path, var, wavelengths, zero_nonfinite, False)
        lazy = LazyCube(raw, p, options)
    lazy.metadata["warnings"] = list(notes)
    return lazy


def _read_raw(path: str | os.PathLike, var: str | None, wavelengths: np.ndarray | Sequence[float] | str | None,
              zero_nonfinite: bool, keep_nonfinite: bool) -> tuple[RawCube, Path, LoadOptions]:
    """Parse ``path`` with its format's reader (warnings go to the caller's collector)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise MissingFileError(f"{p}: no such file or folder")
    fmt = format_of(p)
    options = LoadOptions.make(var, wavelengths, zero_nonfinite, keep_nonfinite)
    if var is not None and fmt not in ("mat", "npz", "hdf"):
        warn(p, f"--var {var!r} applies to MAT, NPZ and HDF5/NetCDF files only; ignored")
    try:
        return _readers()[fmt](p, options), p, options
    except (HiralignError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - a library failing on a user's file is bad input
        raise InputError(f"{p}: cannot read {_FORMAT_NAMES[fmt]}: {type(exc).__name__}: {exc}") from exc


def list_variables(path: str | os.PathLike) -> list[Variable]:
    """The arrays in a MAT, NPZ or HDF5/NetCDF file (name, shape, type), for choosing ``var``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingFileError(f"{p}: no such file")
    fmt = format_of(p)
    try:
        if fmt == "mat":
            from hiralign.io.matlab import mat_variables

            return mat_variables(p)
        if fmt == "npz":
            from hiralign.io.arrays import npz_variables

            return npz_variables(p)
        if fmt == "hdf":
            from hiralign.io.hdf import hdf_variables

            return hdf_variables(p)
    except HiralignError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{p}: cannot read {_FORMAT_NAMES[fmt]}: {type(exc).__name__}: {exc}") from exc
    raise InputError(f"{p}: only MAT, NPZ and HDF5/NetCDF files hold named variables")


def would_replace(existing: str | os.PathLike, target: str | os.PathLike) -> bool:
    """Whether writing ``target`` would replace the file ``existing`` (an ENVI header and its data count as one)."""
    a, b = Path(existing).expanduser().resolve(), Path(target).expanduser().resolve()
    envi = {".hdr", *ENVI_DATA_SUFFIXES}
    if a.suffix.lower() in envi and b.suffix.lower() in envi:
        return a.with_suffix("") == b.with_suffix("")
    return a == b


def save(cube: Cube, path: str | os.PathLike, *, compress: bool = False, dtype: str | None = None) -> Path:
    """Write ``cube`` in the format its suffix names, atomically.

    ``.hdr``/``.img``: ENVI BSQ (header with wavelength, fwhm, bbl, default bands and, for a
    cube read from ENVI, its description, band names, map info...); ``.mat``: MAT v5
    (v7.3 above 2 GB) with ``cube`` and ``wavelengths``; ``.npz`` with ``cube``,
    ``wavelengths``, ``fwhm``, ``bbl``; ``.npy`` (array only); ``.tif`` (a GeoTIFF again
    when read from one); ``.h5``/``.nc``: NetCDF-4 compatible HDF5. Masked samples
    (``cube.mask``) are written as the ``data ignore value``.

    Args:
        cube: the cube.
        path: the target; its suffix picks the format.
        compress: deflate .mat/.npz/.tif/.h5 data (smaller, much slower; docs/formats.md).
        dtype: None (float32, lossless), "input" (the dtype the cube was read from, e.g.
            uint16 counts, with its scale factor) or a numpy dtype name.

    Returns:
        The path written (for ENVI, the header).

    Raises:
        InputError: unknown suffix, not a cube, or an impossible dtype.
        HiralignError: the file cannot be written (permissions, disk full).
    """
    from hiralign.io import arrays, envi_write, hdf, matlab, tiff

    if not isinstance(cube, Cube):
        raise InputError(f"{path}: save() needs a Cube, not {type(cube).__name__}")
    p = Path(path).expanduser()
    writers = {".hdr": envi_write.write_envi, ".img": envi_write.write_envi, ".mat": matlab.write_mat,
               ".npy": arrays.write_npy, ".npz": arrays.write_npz, ".tif": tiff.write_tiff,
               ".tiff": tiff.write_tiff, **{s: hdf.write_hdf for s in (".h5", ".hdf5", ".he5", ".nc", ".nc4")}}
    writer = writers.get(p.suffix.lower())
    if writer is None:
        raise InputError(f"{p}: cannot save a cube as {p.suffix or '(no suffix)'!r}; use one of "
                         f"{', '.join(SAVE_SUFFIXES)}")
    try:
        return writer(cube, p, compress=compress, dtype=dtype)
    except OSError as exc:
        raise HiralignError(f"{p}: cannot write: {exc.strerror or exc}") from exc


def load_rgb(path: str | os.PathLike, **load_options: object) -> np.ndarray:
    """An (H, W, 3) float32 RGB image in [0, 1] from a picture or a cube (its Γ, Eq. 4).

    PNG/JPEG/BMP are read as pictures; TIFF and cube formats are loaded as cubes (a
    3-band TIFF without wavelengths is its own RGB) and projected on the bands nearest
    660/550/470 nm, clipped to [0, 1].
    """
    from hiralign.io.images import IMAGE_SUFFIXES, read_image

    p = Path(path).expanduser()
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(p)
    cube = load(p, **load_options)  # type: ignore[arg-type]
    return np.clip(cube.pseudo_rgb(), 0.0, 1.0)


def save_rgb(rgb: np.ndarray, path: str | os.PathLike, bits: int = 8) -> Path:
    """Write an (H, W, 3) image in [0, 1] atomically as PNG (8 or 16 bits) or JPEG."""
    from hiralign.io.images import write_image

    p = Path(path).expanduser()
    try:
        return write_image(rgb, p, bits=bits)
    except OSError as exc:
        raise HiralignError(f"{p}: cannot write: {exc.strerror or exc}") from exc
