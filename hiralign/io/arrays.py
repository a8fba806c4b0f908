"""NumPy cubes: ``.npy`` (one (H, W, B) array) and ``.npz`` (named arrays).

An ``.npz`` holds the cube under any name (chosen like a MAT variable) and may hold
``wavelengths`` (nm), ``fwhm`` and ``bbl`` beside it; :func:`write_npz` writes exactly
those names. An ``.npy`` file has room for the array only: saving a cube with band
metadata to it warns that the metadata is dropped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hiralign.atomic import atomic_path
from hiralign.cube import Cube
from hiralign.io.common import RawCube, good_band_list, warn
from hiralign.io.rows import AxesRows
from hiralign.io.store import header_values, report_clipped, store_plan, to_stored
from hiralign.io.variables import Variable, band_info, pick_cube_variable


def read_npy(path: Path) -> RawCube:
    """Read an (H, W, B) ``.npy`` array (memory-mapped, read by row windows; no pickles)."""
    data = np.load(path, mmap_mode="r", allow_pickle=False)
    if data.ndim == 3 and isinstance(data, np.memmap):
        # Fortran-ordered files map as (H, W, B) views too; AxesRows copies windows out.
        return RawCube(data=AxesRows(data, (0, 1, 2)), format="NPY")
    return RawCube(data=data, format="NPY")


def npz_variables(path: Path) -> list[Variable]:
    """Names, shapes and dtypes of the arrays in an ``.npz`` file (headers only)."""
    with np.load(path, allow_pickle=False) as z:
        out = []
        for name in z.files:
            arr = z[name]
            out.append(Variable(name, tuple(arr.shape), str(arr.dtype), arr.dtype.kind in "iuf"))
        return out


def read_npz(path: Path, var: str | None) -> RawCube:
    """Read the cube and band metadata from an ``.npz`` file."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    variables = [Variable(n, tuple(a.shape), str(a.dtype), a.dtype.kind in "iuf") for n, a in arrays.items()]
    chosen = pick_cube_variable(variables, path, var)
    data = arrays.pop(chosen.name)
    return RawCube(data=data, format="NPZ", metadata={"variable": chosen.name},
                   **band_info([arrays], data.shape[2]))


def stored_data(cube: Cube, path: Path, dtype: str | None) -> tuple[np.ndarray, dict[str, float]]:
    """The cube's values as ``save(..., dtype=...)`` stores them, and the scale/ignore values to record."""
    plan = store_plan(cube, dtype, path)
    clipped: list[int] = []
    data = to_stored(cube.data, cube.mask, plan, path, clipped)
    report_clipped(path, clipped, plan)
    return data, header_values(plan)


def write_npy(cube: Cube, path: Path, compress: bool = False, dtype: str | None = None) -> Path:
    """Write the (H, W, B) data (float32 or ``dtype``); band metadata cannot be stored in ``.npy``."""
    data, extra = stored_data(cube, path, dtype)
    lost = (["wavelengths, fwhm and bad bands"] if cube.wavelengths is not None or cube.fwhm is not None
            or cube.bad_bands else []) + [k for k in extra]
    if lost:
        warn(path, f"a .npy file stores the array only; {', '.join(lost)} are not saved (use .npz, .hdr, "
                   ".mat, .tif or .h5 to keep them)")
    if compress:
        warn(path, "a .npy file cannot be compressed; use .npz")
    with atomic_path(path) as tmp:
        np.save(tmp, data, allow_pickle=False)
    return path


def write_npz(cube: Cube, path: Path, compress: bool = False, dtype: str | None = None) -> Path:
    """Write ``cube`` (H, W, B float32 or ``dtype``) with ``wavelengths``, ``fwhm``, ``bbl`` when known.

    Also ``reflectance_scale_factor`` and ``data_ignore_value`` when the stored values
    need them. ``compress`` (zip deflate) saves 30–60 % on real cubes but is ~50× slower.
    """
    data, extra = stored_data(cube, path, dtype)
    arrays: dict[str, np.ndarray] = {"cube": data}
    for key, value in extra.items():
        arrays[key.replace(" ", "_")] = np.asarray(value)
    if cube.wavelengths is not None:
        arrays["wavelengths"] = cube.wavelengths
    if cube.fwhm is not None:
        arrays["fwhm"] = cube.fwhm
    if cube.bad_bands:
        arrays["bbl"] = good_band_list(cube)
    with atomic_path(path) as tmp:
        (np.savez_compressed if compress else np.savez)(tmp, **arrays)
    return path
