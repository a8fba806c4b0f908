"""Named arrays in container files (MAT, NPZ, TIFF descriptions): which one is the cube,
and which hold its wavelengths, unit, fwhm and bad-band list.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hiralign.errors import InputError
from hiralign.io.common import nm_per, nm_per_guessed

#: Variable / key names read as wavelengths (compared case-insensitively).
WAVELENGTH_NAMES = ("wavelengths", "wavelength", "wl", "wls", "lambda", "lambdas", "wave", "waves",
                    "wavelengths_nm", "wavelength_nm", "band_centers", "centers", "bands_nm")
#: Names read as the unit of the wavelengths stored beside them.
UNIT_NAMES = ("wavelength_units", "wavelength_unit", "wavelengthunits", "wl_units", "units")
#: Names read as band widths (nm, same unit as the wavelengths).
FWHM_NAMES = ("fwhm", "bandwidths", "band_widths")
#: Names read as an ENVI-style bad-band list (1 = good, 0 = bad), one value per band.
BBL_NAMES = ("bbl", "bad_band_list", "goodbands", "good_bands")
#: Names read as the divisor of stored values (ENVI's ``reflectance scale factor``).
SCALE_NAMES = ("reflectance_scale_factor", "scale_factor")
#: Names read as the stored value meaning "no data" (ENVI's ``data ignore value``).
IGNORE_NAMES = ("data_ignore_value", "nodata", "_fillvalue", "fill_value", "missing_value")


@dataclasses.dataclass(frozen=True)
class Variable:
    """A named array in a container file (MAT, NPZ): enough to pick the cube without reading it.

    Attributes:
        name: the variable name.
        shape: its shape as the file's own language sees it (MATLAB order for MAT files).
        dtype: a type name for messages ("uint16", "double", "struct"...).
        is_numeric: whether it holds real numbers a cube can be made of.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    is_numeric: bool = True

    def describe(self) -> str:
        return f"{self.name} {'×'.join(str(s) for s in self.shape)} {self.dtype}"


def pick_cube_variable(variables: Sequence[Variable], path: Path, var: str | None) -> Variable:
    """The variable holding the cube: ``var`` if given, else the only plausible 3-D array.

    Plausible cubes are numeric 3-D arrays; when there are several, arrays with 3 bands
    (RGB previews stored beside the cube) are set aside.

    Raises:
        InputError: ``var`` is absent or not 3-D, no 3-D array exists, or several do.
    """
    listing = ", ".join(v.describe() for v in variables) or "nothing"
    if var is not None:
        for v in variables:
            if v.name == var:
                if not v.is_numeric:
                    raise InputError(f"{path}: variable {var!r} is {v.dtype}, not a numeric array")
                if len(v.shape) != 3:
                    raise InputError(f"{path}: variable {var!r} has shape {v.shape}; a cube must be "
                                     "3-D (H, W, bands)")
                return v
        raise InputError(f"{path}: no variable {var!r}; the file holds: {listing}")
    cubes = [v for v in variables if v.is_numeric and len(v.shape) == 3]
    if len(cubes) > 1:
        not_rgb = [v for v in cubes if v.shape[2] != 3]
        if len(not_rgb) == 1:
            return not_rgb[0]
        cubes = not_rgb or cubes
        raise InputError(f"{path}: several 3-D arrays could be the cube: "
                         f"{', '.join(v.describe() for v in cubes)}; choose one with --var NAME")
    if not cubes:
        two_d = [v for v in variables if v.is_numeric and len(v.shape) == 2 and min(v.shape) > 1]
        hint = (f"; 2-D arrays found ({', '.join(v.describe() for v in two_d)}) are single images"
                if two_d else "")
        raise InputError(f"{path}: no 3-D array (H, W, bands) in the file; it holds: {listing}{hint}")
    return cubes[0]


def find_named(variables: Mapping[str, Any], names: Sequence[str]) -> tuple[str, Any] | None:
    """The first entry of ``variables`` whose name matches one of ``names`` (case-insensitive)."""
    lowered = {k.lower(): k for k in variables}
    for n in names:
        if n in lowered:
            key = lowered[n]
            return key, variables[key]
    return None


def band_vector_candidate(variables: Mapping[str, Any], names: Sequence[str], bands: int) -> Any:
    """The named vector with ``bands`` values, else any named vector (to report its length)."""
    matches = [(k, v) for k, v in variables.items() if k.lower() in names]
    matches.sort(key=lambda kv: names.index(kv[0].lower()))
    for _, value in matches:
        if np.size(value) == bands:
            return value
    return matches[0][1] if matches else None


def band_info(namespaces: Sequence[Mapping[str, Any]], bands: int) -> dict[str, Any]:
    """Wavelengths, unit, fwhm (nm) and bbl found among named variables.

    ``namespaces`` are searched in order (e.g. a MAT file's top level, then the fields of
    its structs). A unit is only taken from the namespace that holds the wavelengths it
    describes, and fwhm is converted to nm with its own namespace's unit, because files
    such as AVIRIS exports hold µm wavelengths at the top level next to a struct in nm.

    Returns:
        Keyword arguments for :class:`RawCube`: ``wavelengths``, ``wavelength_unit``,
        ``fwhm`` (nm), ``fwhm_unit``, ``bbl``, ``scale_factor`` and ``ignore_value``
        (absent keys were not found).
    """
    info: dict[str, Any] = {}
    for ns in namespaces:
        wl = band_vector_candidate(ns, WAVELENGTH_NAMES, bands)
        if wl is not None and "wavelengths" not in info:
            info["wavelengths"] = wl
            unit = find_named(ns, UNIT_NAMES)
            info["wavelength_unit"] = clean_string(unit[1]) if unit else None
        fwhm = band_vector_candidate(ns, FWHM_NAMES, bands)
        if fwhm is not None and "fwhm" not in info:
            unit = find_named(ns, UNIT_NAMES)
            unit_text = clean_string(unit[1]) if unit else None
            factor = nm_per(unit_text) if unit_text else nm_per_guessed(band_vector_candidate(
                ns, WAVELENGTH_NAMES, bands))
            try:
                info["fwhm"] = np.asarray(fwhm, dtype=np.float64).ravel() * factor
                info["fwhm_unit"] = "nm"
            except (TypeError, ValueError):
                pass
        bbl = band_vector_candidate(ns, BBL_NAMES, bands)
        if bbl is not None and "bbl" not in info:
            info["bbl"] = bbl
        for key, names in (("scale_factor", SCALE_NAMES), ("ignore_value", IGNORE_NAMES)):
            found = find_named(ns, names)
            if found is not None and key not in info:
                value = scalar(found[1])
                if value is not None:
                    info[key] = value
    return info


def scalar(value: Any) -> float | None:
    """A one-element numeric value as a float (None otherwise)."""
    try:
        arr = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    return float(arr[0]) if arr.size == 1 and np.isfinite(arr[0]) else None


def clean_string(value: Any) -> str | None:
    """A MATLAB/NumPy char value as a str (None if it is not text)."""
    if isinstance(value, str):
        return value.strip()
    arr = np.asarray(value)
    if arr.dtype.kind in "US" and arr.size:
        return re.sub(r"\s+", " ", "".join(str(s) for s in arr.ravel())).strip()
    return None
