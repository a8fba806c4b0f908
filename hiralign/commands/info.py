"""``hiralign info FILE``: what a cube file holds, as JSON on stdout."""
from __future__ import annotations

import argparse
import warnings
from typing import Any

from hiralign.commands._common import add_load_options, emit_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info", help="describe a hyperspectral cube file (JSON)",
        description="Load a cube (ENVI, MAT, CAVE PNG folder, .npy/.npz, TIFF) and print its shape, "
                    "stored data type, value range, wavelengths, pseudo-RGB bands, NaN/Inf count, "
                    "bad bands and the scaling applied, as JSON.")
    parser.add_argument("file", help="cube file (or CAVE folder)")
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.io import load

    cube = load(args.file, var=args.var, wavelengths=args.wavelengths,
                zero_nonfinite=args.zero_nonfinite, keep_nonfinite=True)
    emit_json(describe(cube))
    return 0


def describe(cube: Cube) -> dict[str, Any]:  # noqa: F821 - imported lazily
    """A JSON-ready summary of ``cube`` (see ``hiralign info``).

    Keys: path, name, format, variable, shape [H, W, B], dtype (as stored), value_range
    [min, max] of the finite values after scaling, bands, wavelength_range_nm,
    wavelength_source ("file", "given", "assumed" or null), rgb_bands (Γ indices, null
    when unknown), rgb_wavelengths_nm, nonfinite, nonfinite_zeroed, bad_bands, scaling.
    """
    import numpy as np

    from hiralign.cube import DEFAULT_31_BANDS_NM
    from hiralign.errors import InputError

    data = cube.data
    nonfinite = cube.count_nonfinite()
    finite = data[np.isfinite(data)] if nonfinite else data
    value_range = [float(finite.min()), float(finite.max())] if finite.size else None
    meta = cube.metadata
    source = meta.get("wavelength_source") if cube.wavelengths is not None else None
    wavelengths = cube.wavelengths
    if wavelengths is None and cube.n_bands == DEFAULT_31_BANDS_NM.size:
        wavelengths, source = DEFAULT_31_BANDS_NM, "assumed"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the assumption is reported as wavelength_source
            rgb = [int(i) for i in cube.rgb_band_indices()]
    except InputError:
        rgb = None
    return {
        "path": meta.get("source"),
        "name": cube.name,
        "format": meta.get("format"),
        "variable": meta.get("variable"),
        "shape": list(cube.shape),
        "dtype": meta.get("dtype", str(data.dtype)),
        "value_range": value_range,
        "bands": cube.n_bands,
        "wavelength_range_nm": None if wavelengths is None else [float(wavelengths[0]), float(wavelengths[-1])],
        "wavelength_source": source,
        "rgb_bands": rgb,
        "rgb_wavelengths_nm": None if rgb is None or wavelengths is None else [float(wavelengths[i]) for i in rgb],
        "nonfinite": nonfinite,
        "nonfinite_zeroed": int(meta.get("nonfinite_zeroed", 0)),
        "bad_bands": list(cube.bad_bands),
        "scaling": meta.get("scaling"),
    }
