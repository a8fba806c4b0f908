"""MATLAB cubes: v4/v5/v7 files through scipy, v7.3 (HDF5) files through h5py.

MATLAB stores arrays column-major; HDF5 (v7.3) keeps that memory order but lists the axes
reversed, so h5py returns an (H, W, B) MATLAB cube as (B, W, H) and it is transposed back
with ``.T``. The cube variable is chosen by :func:`~hiralign.io.common.pick_cube_variable`
from a listing of names, shapes and classes, read without loading the data; wavelengths,
fwhm and bad-band lists come from variables with the usual names (``wl``, ``wavelengths``,
``lambda``, ``fwhm``, ``bbl``...), at the top level or inside a 1×1 struct such as the
``params`` of an ENVI export.
"""
from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from hiralign.atomic import atomic_path
from hiralign.cube import Cube
from hiralign.io.common import RawCube, good_band_list
from hiralign.io.rows import AxesRows
from hiralign.io.variables import (
    BBL_NAMES,
    FWHM_NAMES,
    IGNORE_NAMES,
    SCALE_NAMES,
    UNIT_NAMES,
    WAVELENGTH_NAMES,
    Variable,
    band_info,
    pick_cube_variable,
)

#: MATLAB classes that hold numbers a cube can be made of.
NUMERIC_CLASSES = frozenset({"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                             "int64", "uint64"})
_METADATA_NAMES = frozenset(WAVELENGTH_NAMES + FWHM_NAMES + BBL_NAMES + UNIT_NAMES + SCALE_NAMES + IGNORE_NAMES)
#: Above this many bytes a variable does not fit a v5 file (32-bit sizes); v7.3 is written.
V5_LIMIT_BYTES = 2**31 - 1024
_V73_USERBLOCK = 512


def is_hdf5(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file (a MAT v7.3 file is one)."""
    import h5py

    try:
        return bool(h5py.is_hdf5(os.fspath(path)))
    except OSError:
        return False


def mat_variables(path: Path) -> list[Variable]:
    """Name, shape (as MATLAB sees it) and class of each variable, without reading data."""
    if is_hdf5(path):
        import h5py

        with h5py.File(path, "r") as f:
            return [_h5_variable(name, obj) for name, obj in f.items() if not name.startswith("#")]
    from scipy.io import whosmat

    return [Variable(name, tuple(int(s) for s in shape), cls, cls in NUMERIC_CLASSES)
            for name, shape, cls in whosmat(path)]


def read_mat(path: Path, var: str | None) -> RawCube:
    """Read the cube (and band metadata) from a MAT file of any version."""
    variables = mat_variables(path)
    chosen = pick_cube_variable(variables, path, var)
    if is_hdf5(path):
        data, namespaces, version = _read_v73(path, chosen.name, variables)
    else:
        data, namespaces, version = _read_v5(path, chosen.name, variables)
    bands = data.shape[2] if data.ndim == 3 else 0
    others = [v.describe() for v in variables if v.name != chosen.name]
    return RawCube(data=data, format=f"MAT {version}",
                   metadata={"variable": chosen.name, "other_variables": others},
                   **band_info(namespaces, bands))


def _wanted_metadata(variables: list[Variable], cube_name: str) -> list[str]:
    return [v.name for v in variables if v.name != cube_name and (
        v.name.lower() in _METADATA_NAMES or (v.dtype == "struct" and int(np.prod(v.shape)) == 1))]


# --------------------------------------------------------------------------- v5
def _read_v5(path: Path, name: str, variables: list[Variable]) -> tuple[np.ndarray, list[dict[str, Any]], str]:
    from scipy.io import loadmat
    from scipy.io.matlab import matfile_version

    major, _ = matfile_version(os.fspath(path))
    data = loadmat(path, variable_names=[name])[name]
    wanted = _wanted_metadata(variables, name)
    extra = loadmat(path, variable_names=wanted, squeeze_me=True, struct_as_record=False,
                    chars_as_strings=True) if wanted else {}
    top = {k: v for k, v in extra.items() if not k.startswith("__") and not hasattr(v, "_fieldnames")}
    structs = [{f: getattr(v, f) for f in v._fieldnames} for v in extra.values() if hasattr(v, "_fieldnames")]
    return data, [top, *structs], "v4" if major == 0 else "v5"


# --------------------------------------------------------------------------- v7.3
def _h5_variable(name: str, obj: Any) -> Variable:
    import h5py

    cls = obj.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    if isinstance(obj, h5py.Group):
        return Variable(name, (1, 1), cls or "struct", False)
    if obj.attrs.get("MATLAB_empty", 0):
        return Variable(name, (0, 0), cls or "empty", False)
    shape = tuple(int(s) for s in obj.shape[::-1])
    if obj.dtype.kind not in "iuf":  # complex (compound), references, strings
        return Variable(name, shape, f"{cls or obj.dtype} ({'complex' if obj.dtype.names else 'not numbers'})",
                        False)
    if not cls:  # plain HDF5 written without MATLAB attributes: trust the dtype
        cls = {"float64": "double", "float32": "single"}.get(obj.dtype.name, obj.dtype.name)
    return Variable(name, shape, cls, cls in NUMERIC_CLASSES)


def _h5_value(obj: Any) -> Any:
    cls = obj.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    value = obj[()]
    if cls == "char":
        return "".join(chr(int(c)) for c in np.asarray(value).T.ravel())
    return np.asarray(value).T


def _read_v73(path: Path, name: str, variables: list[Variable]) -> tuple[np.ndarray, list[dict[str, Any]], str]:
    import h5py

    f = h5py.File(path, "r")  # stays open while the cube's rows are read (closed with the dataset)
    dataset = f[name]
    # HDF5 lists MATLAB's axes reversed: (B, W, H) on disk is the (H, W, B) cube, read by rows.
    data = AxesRows(dataset, (2, 1, 0)) if dataset.ndim == 3 else np.asarray(dataset[()]).T
    top: dict[str, Any] = {}
    structs: list[dict[str, Any]] = []
    try:
        for vname in _wanted_metadata(variables, name):
            obj = f[vname]
            if isinstance(obj, h5py.Group):
                structs.append({k: _h5_value(v) for k, v in obj.items() if isinstance(v, h5py.Dataset)})
            else:
                top[vname] = _h5_value(obj)
    except BaseException:
        f.close()
        raise
    return data, [top, *structs], "v7.3"


# --------------------------------------------------------------------------- writing
def write_mat(cube: Cube, path: Path, version: str = "auto", compress: bool = False,
              dtype: str | None = None) -> Path:
    """Write ``cube`` as a MAT file with variables ``cube`` (H, W, B single) and ``wavelengths``.

    Also ``fwhm`` (nm) and ``bbl`` (1 good, 0 bad) when the cube has them, and
    ``reflectance_scale_factor`` / ``data_ignore_value`` when the stored values need them
    (``dtype="input"`` writes e.g. uint16 counts).

    Args:
        cube: the cube to write.
        path: the target .mat file.
        version: "5", "7.3" or "auto" (v5 unless the cube is too large for it).
        compress: deflate the data (30–60 % smaller on real cubes, ~50× slower to write).
    """
    from hiralign.io.arrays import stored_data

    data, extra = stored_data(cube, path, dtype)
    if version == "auto":
        version = "7.3" if data.nbytes > V5_LIMIT_BYTES else "5"
    variables: dict[str, np.ndarray] = {"cube": data}
    for key, value in extra.items():
        variables[key.replace(" ", "_")] = np.asarray(value, dtype=np.float64).reshape(1, 1)
    if cube.wavelengths is not None:
        variables["wavelengths"] = cube.wavelengths.reshape(-1, 1)
    if cube.fwhm is not None:
        variables["fwhm"] = cube.fwhm.reshape(-1, 1)
    if cube.bad_bands:
        variables["bbl"] = good_band_list(cube).reshape(-1, 1)
    with atomic_path(path) as tmp:
        if version == "7.3":
            _write_v73(tmp, variables, compress)
        elif version == "5":
            from scipy.io import savemat

            savemat(tmp, variables, do_compression=compress, format="5")
        else:
            raise ValueError(f"unknown MAT version {version!r}")
    return path


_MATLAB_CLASSES = {"float64": "double", "float32": "single", "uint8": "uint8", "int8": "int8", "int16": "int16",
                   "uint16": "uint16", "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64"}


def _write_v73(target: Path, variables: dict[str, np.ndarray], compress: bool) -> None:
    """An HDF5 file laid out the way MATLAB writes v7.3 (512-byte user block + header)."""
    import h5py

    with h5py.File(target, "w", userblock_size=_V73_USERBLOCK) as f:
        for name, value in variables.items():
            arr = np.ascontiguousarray(value)
            deflate = compress and arr.ndim == 3
            ds = f.create_dataset(name, data=arr.T, chunks=deflate or None, compression="gzip" if deflate else None)
            ds.attrs["MATLAB_class"] = np.bytes_(_MATLAB_CLASSES[arr.dtype.name])
    created = datetime.datetime.now().strftime("%a %b %d %H:%M:%S %Y")
    text = f"MATLAB 7.3 MAT-file, Platform: {platform.system()}, Created on: {created} HDF5 schema 1.00 ."
    with open(target, "r+b") as fh:
        # 116 bytes of text, 8 bytes subsystem offset, version 0x0200, endian mark "IM".
        fh.write(text.encode("ascii")[:116].ljust(116) + b"\x00" * 8 + b"\x00\x02" + b"IM")
