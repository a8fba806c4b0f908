"""Read and write hyperspectral cubes and RGB images, choosing the format by suffix.

>>> cube = load("scene.hdr")                       # ENVI (.hdr or its .img/.raw/.dat/...)
>>> cube = load("scene.mat", var="cube")           # MAT v5 or v7.3 (HDF5)
>>> cube = load("cloth_ms")                        # CAVE folder of *_ms_01.png … *_ms_31.png
>>> cube = load("x.npy", wavelengths="420:720:10") # .npy/.npz, .tif/.tiff
>>> save(cube, "out.hdr")                          # .hdr/.img, .mat, .npy, .npz, .tif

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
from hiralign.io.common import LoadOptions, RawCube, collect_warnings, finish_cube, warn
from hiralign.io.variables import Variable

__all__ = ["load", "save", "load_rgb", "save_rgb", "list_variables", "format_of", "CUBE_SUFFIXES",
           "SAVE_SUFFIXES", "Variable"]

#: ENVI data-file suffixes accepted in place of the header.
ENVI_DATA_SUFFIXES = (".img", ".raw", ".dat", ".bsq", ".bil", ".bip")
#: Suffix -> format key, for reading.
_READ_FORMATS = {".hdr": "envi", **{s: "envi" for s in ENVI_DATA_SUFFIXES}, ".mat": "mat",
                 ".npy": "npy", ".npz": "npz", ".tif": "tiff", ".tiff": "tiff"}
#: Suffixes :func:`load` understands (plus folders of CAVE band PNGs).
CUBE_SUFFIXES: tuple[str, ...] = tuple(_READ_FORMATS)
#: Suffixes :func:`save` writes.
SAVE_SUFFIXES: tuple[str, ...] = (".hdr", ".img", ".mat", ".npy", ".npz", ".tif", ".tiff")
_FORMAT_NAMES = {"envi": "an ENVI cube", "mat": "a MAT file", "npy": "a .npy array", "npz": "a .npz archive",
                 "tiff": "a TIFF", "folder": "a folder of band PNGs"}


def format_of(path: str | os.PathLike) -> str:
    """The format key of ``path``: "envi", "mat", "npy", "npz", "tiff" or "folder".

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
    from hiralign.io import arrays, envi, folder, matlab, tiff

    return {
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
        path: an ENVI header or data file, a .mat/.npy/.npz/.tif file, or a CAVE folder.
        var: MAT/NPZ only: the variable holding the cube, when the file has several.
        wavelengths: (B,) band centres (nm, or µm if all < 30) or a string such as
            "420:720:10"; used when the file has none (or invalid ones).
        zero_nonfinite: replace NaN/Inf values by 0 (with a warning) instead of refusing.
        keep_nonfinite: keep NaN/Inf values as they are (for inspection, e.g. ``info``).

    Returns:
        The cube: (H, W, B) float32, integer data divided by its full scale, wavelengths
        in nm; ``metadata`` records the format, dtype on disk and scaling.

    Raises:
        MissingFileError: the path (or an ENVI partner file) does not exist.
        InputError: the file is unreadable, truncated, not a cube, or inconsistent.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise MissingFileError(f"{p}: no such file or folder")
    fmt = format_of(p)
    options = LoadOptions.make(var, wavelengths, zero_nonfinite, keep_nonfinite)
    with collect_warnings() as notes:
        if var is not None and fmt not in ("mat", "npz"):
            warn(p, f"--var {var!r} applies to MAT and NPZ files only; ignored")
        try:
            raw = _readers()[fmt](p, options)
        except (HiralignError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - a library failing on a user's file is bad input
            raise InputError(f"{p}: cannot read {_FORMAT_NAMES[fmt]}: {type(exc).__name__}: {exc}") from exc
        cube = finish_cube(raw, p, options)
    cube.metadata["warnings"] = list(notes)
    return cube


def list_variables(path: str | os.PathLike) -> list[Variable]:
    """The arrays in a MAT or NPZ file (name, shape, type), for choosing ``var``."""
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
    except HiralignError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{p}: cannot read {_FORMAT_NAMES[fmt]}: {type(exc).__name__}: {exc}") from exc
    raise InputError(f"{p}: only MAT and NPZ files hold named variables")


def save(cube: Cube, path: str | os.PathLike, *, compress: bool = False) -> Path:
    """Write ``cube`` losslessly (float32) in the format its suffix names, atomically.

    ``.hdr``/``.img``: ENVI BSQ (header with wavelength, fwhm, bbl, default bands);
    ``.mat``: MAT v5 (v7.3 above 2 GB) with ``cube`` and ``wavelengths``; ``.npz`` with
    ``cube``, ``wavelengths``, ``fwhm``, ``bbl``; ``.npy`` (array only); ``.tif``.
    ``compress`` deflates .mat/.npz/.tif data (smaller, much slower; see docs/formats.md).

    Returns:
        The path written (for ENVI, the header).

    Raises:
        InputError: unknown suffix or not a cube.
        HiralignError: the file cannot be written (permissions, disk full).
    """
    from hiralign.io import arrays, envi, matlab, tiff

    if not isinstance(cube, Cube):
        raise InputError(f"{path}: save() needs a Cube, not {type(cube).__name__}")
    p = Path(path).expanduser()
    writers = {".hdr": envi.write_envi, ".img": envi.write_envi, ".mat": matlab.write_mat,
               ".npy": arrays.write_npy, ".npz": arrays.write_npz, ".tif": tiff.write_tiff,
               ".tiff": tiff.write_tiff}
    writer = writers.get(p.suffix.lower())
    if writer is None:
        raise InputError(f"{p}: cannot save a cube as {p.suffix or '(no suffix)'!r}; use one of "
                         f"{', '.join(SAVE_SUFFIXES)}")
    try:
        return writer(cube, p, compress=compress)
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
