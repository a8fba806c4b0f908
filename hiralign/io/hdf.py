"""Generic HDF5 and NetCDF cubes (.h5, .hdf5, .he5, .nc, .nc4).

Reading: HDF5 and NetCDF-4 files with ``h5py``, classic NetCDF (CDF-1/2, e.g. written by
``scipy.io.netcdf_file`` or older GIS tools) with ``scipy.io.netcdf_file``. The cube is
the 3-D numeric dataset (``var`` names one by name or path when there are several; 3-band
previews are set aside as for MAT files). Its band axis is the dimension named like a
wavelength or band (``wavelength``, ``band``, ``lambda``...), else the axis whose length
matches a wavelength vector in the file, else the shortest; the other two are (y, x) in
stored order. Wavelengths come from the band dimension's coordinate variable (with its
``units``), or from attributes / 1-D datasets named like wavelengths on the dataset, its
group or the file; ``fwhm`` and ``bbl`` the same way. ``_FillValue`` / ``missing_value``
/ ``nodata`` become the ignore value (the cube's mask). A CF ``scale_factor`` (stored ×
factor = value) is honoured; a non-zero ``add_offset`` is refused. The dataset stays on
disk: windows of rows are read by chunks (:mod:`hiralign.io.rows`).

Writing (``save(cube, "x.h5")`` or ``"x.nc"``): NetCDF-4 compatible HDF5 written with
h5py — dataset ``cube`` (y, x, wavelength), chunked by 64×64 pixels × all bands, with
dimension scales ``y``, ``x`` and ``wavelength`` (nm, ``units`` attribute), ``fwhm`` and
``bbl`` along ``wavelength``, ``_FillValue`` when the cube has a mask and
``reflectance_scale_factor`` when stored values need dividing.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hiralign.atomic import atomic_path
from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.io.common import RawCube, good_band_list, warn
from hiralign.io.rows import AxesRows
from hiralign.io.variables import WAVELENGTH_NAMES, Variable, band_info, clean_string, pick_cube_variable

#: Dimension names read as the band axis.
BAND_DIMS = ("wavelength", "wavelengths", "band", "bands", "lambda", "wl", "spectral", "channel", "bands_nm")
_FILL_ATTRS = ("_FillValue", "missing_value", "nodata", "data_ignore_value", "fill_value")


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind == "S":
        return clean_string(np.char.decode(value, "utf-8", "replace"))
    return value


def _attrs(obj: Any) -> dict[str, Any]:
    return {k: _text(v) for k, v in obj.attrs.items()} if hasattr(obj, "attrs") else {}


def _is_netcdf3(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in (b"CDF\x01", b"CDF\x02", b"CDF\x05")


# --------------------------------------------------------------------------- listing
def hdf_variables(path: Path) -> list[Variable]:
    """Every dataset (path, shape, dtype), without reading data."""
    if _is_netcdf3(path):
        from scipy.io import netcdf_file

        with netcdf_file(path, "r", mmap=False) as f:
            return [Variable(name, tuple(int(n) for n in v.shape), str(v.data.dtype),
                             v.data.dtype.kind in "iuf") for name, v in f.variables.items()]
    import h5py

    out: list[Variable] = []
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                out.append(Variable(name, tuple(int(n) for n in obj.shape), str(obj.dtype),
                                    obj.dtype.kind in "iuf" and obj.dtype.names is None))
        f.visititems(visit)
    return out


# --------------------------------------------------------------------------- reading
def read_hdf(path: Path, var: str | None) -> RawCube:
    """Read the cube of an HDF5 / NetCDF file (kept on disk, read by row windows)."""
    variables = hdf_variables(path)
    chosen = pick_cube_variable(variables, path, var)
    if _is_netcdf3(path):
        return _read_netcdf3(path, chosen, variables)
    import h5py

    f = h5py.File(path, "r")  # stays open while the cube's rows are read (closed with the dataset)
    try:
        ds = f[chosen.name]
        dim_names = [_dim_name(ds, i) for i in range(3)]
        coords = {name: _dim_values(ds, i) for i, name in enumerate(dim_names)}
        group = ds.parent
        namespaces = [_attrs(ds), {**_small_datasets(group, ds.name), **_attrs(group)}, _attrs(f)]
        return _raw(path, ds, chosen.name, dim_names, coords, namespaces, "HDF5" if not _is_netcdf4(f) else "NetCDF-4")
    except BaseException:
        f.close()
        raise


def _is_netcdf4(f: Any) -> bool:
    return "_NCProperties" in f.attrs or any("_Netcdf4Dimid" in obj.attrs for obj in f.values()
                                             if hasattr(obj, "attrs"))


def _dim_name(ds: Any, axis: int) -> str:
    dim = ds.dims[axis]
    if len(dim):
        return os.path.basename(str(dim[0].name))
    return str(dim.label or "")


def _dim_values(ds: Any, axis: int) -> tuple[np.ndarray, dict[str, Any]] | None:
    dim = ds.dims[axis]
    if not len(dim):
        return None
    scale = dim[0]
    if scale.ndim != 1 or scale.dtype.kind not in "iuf":
        return None
    return np.asarray(scale[()]), _attrs(scale)


def _small_datasets(group: Any, skip: str) -> dict[str, Any]:
    """1-D and scalar datasets of ``group`` (candidate wavelength / fwhm / bbl vectors)."""
    import h5py

    out: dict[str, Any] = {}
    for name, obj in group.items():
        if isinstance(obj, h5py.Dataset) and obj.name != skip and obj.ndim <= 1 and obj.size <= 100_000:
            out[name] = _text(obj[()])
            units = _attrs(obj).get("units")
            if isinstance(units, str) and name.lower() in WAVELENGTH_NAMES:
                out.setdefault("wavelength_units", units)
    return out


def _read_netcdf3(path: Path, chosen: Variable, variables: list[Variable]) -> RawCube:
    from scipy.io import netcdf_file

    f = netcdf_file(path, "r", mmap=True)
    var = f.variables[chosen.name]
    dim_names = list(var.dimensions)
    coords = {}
    for name in dim_names:
        if name in f.variables and f.variables[name].data.ndim == 1:
            c = f.variables[name]
            coords[name] = (np.array(c.data), {k: _text(v) for k, v in c._attributes.items()})
        else:
            coords[name] = None
    small = {n: _text(np.array(v.data)) for n, v in f.variables.items() if v.data.ndim <= 1 and n != chosen.name}
    namespaces = [{k: _text(v) for k, v in var._attributes.items()}, small,
                  {k: _text(v) for k, v in f._attributes.items()}]
    raw = _raw(path, var.data, chosen.name, dim_names, coords, namespaces, "NetCDF-3")
    raw.data.keep = f  # type: ignore[attr-defined]  # the memory map lives as long as the rows
    return raw


def _raw(path: Path, source: Any, name: str, dim_names: list[str], coords: dict[str, Any],
         namespaces: list[dict[str, Any]], fmt: str) -> RawCube:
    """The RawCube of a 3-D dataset whose dims are ``dim_names`` (coords: values + attrs or None)."""
    shape = tuple(int(n) for n in source.shape)
    band_axis = _band_axis(dim_names, shape, namespaces)
    yx = [a for a in range(3) if a != band_axis]
    coord = coords.get(dim_names[band_axis])
    ns: list[dict[str, Any]] = []
    has_wavelengths = int(np.asarray(namespaces[-1].get("has_wavelengths", 1)).ravel()[0])
    if coord is not None and coord[0].size == shape[band_axis] and has_wavelengths:
        units = coord[1].get("units") or coord[1].get("unit")
        ns.append({"wavelengths": coord[0], **({"wavelength_units": units} if isinstance(units, str) else {})})
    ns.extend(namespaces)
    info = band_info(ns, shape[band_axis])
    attrs = namespaces[0]
    ignore = next((attrs[a] for a in _FILL_ATTRS if a in attrs), None)
    try:
        ignore = None if ignore is None else float(np.asarray(ignore).ravel()[0])
    except (TypeError, ValueError, IndexError):
        ignore = None
    if ignore is not None:
        info["ignore_value"] = ignore
    if "scale_factor" in attrs:  # CF: value = stored × scale_factor + add_offset
        offset = float(np.asarray(attrs.get("add_offset", 0.0)).ravel()[0])
        if offset != 0.0:
            raise InputError(f"{path}: {name} has add_offset = {offset:g}; offsets are not supported")
        factor = float(np.asarray(attrs["scale_factor"]).ravel()[0])
        info["scale_factor"] = 1.0 / factor if factor not in (0.0, 1.0) else None
    elif info.get("scale_factor") is not None and "reflectance_scale_factor" not in attrs:
        info.pop("scale_factor")  # a file-level scale_factor is not this dataset's
    if dim_names[band_axis].lower() not in BAND_DIMS:
        warn(path, f"no dimension named like a band; axis {band_axis} ({shape[band_axis]} values) read as bands")
    metadata = {"variable": name, "dimensions": dim_names}
    return RawCube(data=AxesRows(source, (yx[0], yx[1], band_axis)), format=fmt, metadata=metadata, **info)


def _band_axis(dim_names: list[str], shape: tuple[int, ...], namespaces: list[dict[str, Any]]) -> int:
    for i, name in enumerate(dim_names):
        if name.lower() in BAND_DIMS:
            return i
    for ns in namespaces:
        for key, value in ns.items():
            if key.lower() in WAVELENGTH_NAMES and np.ndim(value) == 1:
                matches = [i for i, n in enumerate(shape) if n == np.size(value)]
                if len(matches) == 1:
                    return matches[0]
    return int(np.argmin(shape)) if shape.count(min(shape)) == 1 else 2


# --------------------------------------------------------------------------- writing
def write_hdf(cube: Cube, path: Path, compress: bool = False, dtype: str | None = None) -> Path:
    """Write ``cube`` as NetCDF-4 compatible HDF5 (dims y, x, wavelength) with band metadata."""
    import h5py

    from hiralign.io.arrays import stored_data

    data, extra = stored_data(cube, path, dtype)
    h, w, b = data.shape
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["title"] = cube.name
            f.attrs["Conventions"] = "CF-1.8"
            f.attrs["source"] = "hiralign"
            dims = {}
            band_axis = cube.wavelengths if cube.wavelengths is not None else np.arange(1, b + 1, dtype=np.float64)
            for name, values in (("y", np.arange(h, dtype=np.float64)), ("x", np.arange(w, dtype=np.float64)),
                                 ("wavelength", band_axis)):
                d = f.create_dataset(name, data=values)
                d.make_scale(name)
                dims[name] = d
            if cube.wavelengths is not None:
                dims["wavelength"].attrs["units"] = "nm"
                dims["wavelength"].attrs["long_name"] = "band centre wavelength"
            else:
                dims["wavelength"].attrs["long_name"] = "band number (no wavelengths)"
                f.attrs["has_wavelengths"] = 0
            chunks = (min(h, 64), min(w, 64), b)
            ds = f.create_dataset("cube", data=data, chunks=chunks, compression="gzip" if compress else None,
                                  fillvalue=extra.get("data ignore value"))
            for axis, name in enumerate(("y", "x", "wavelength")):
                ds.dims[axis].attach_scale(dims[name])
            if "data ignore value" in extra:
                ds.attrs["_FillValue"] = np.asarray(extra["data ignore value"], dtype=data.dtype)
            if "reflectance scale factor" in extra:
                ds.attrs["reflectance_scale_factor"] = float(extra["reflectance scale factor"])
            if cube.fwhm is not None:
                fw = f.create_dataset("fwhm", data=cube.fwhm)
                fw.attrs["units"] = "nm"
                fw.dims[0].attach_scale(dims["wavelength"])
            if cube.bad_bands:
                bb = f.create_dataset("bbl", data=good_band_list(cube))
                bb.dims[0].attach_scale(dims["wavelength"])
    return path
