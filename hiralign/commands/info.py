"""``hiralign info FILE``: what a cube file holds, as JSON on stdout.

The file is opened with :func:`hiralign.io.open_cube` and its statistics are streamed
window by window, so a cube of any size is described in bounded memory (memory-mapped
ENVI/NPY, chunked HDF5); the numbers are those :func:`hiralign.io.load` would give.
"""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import add_load_options, emit_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info", help="describe a hyperspectral cube file or a model checkpoint (JSON)",
        description="Open a cube (ENVI, MAT, CAVE PNG folder, .npy/.npz, TIFF/GeoTIFF, HDF5/NetCDF, "
                    "ERDAS .lan, AVIRIS .rfl) and print its shape, stored data type, value range, "
                    "wavelengths, pseudo-RGB bands, NaN/Inf and ignored-value counts, bad bands and the "
                    "scaling applied, as JSON. Statistics are streamed, so files of any size fit in memory. "
                    "Given a checkpoint folder (config.json + model.safetensors), print what the model is "
                    "and how it was made: architecture, bands, parameters, pretraining steps and validation "
                    "PSNR (and what it was continued from), or for an adapted checkpoint its targets, budget, "
                    "source model and how hiralign restore will restore new captures with it.")
    parser.add_argument("file", help="cube file, CAVE folder or checkpoint folder")
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.io import open_cube
    from hiralign.models.summary import describe_checkpoint, is_checkpoint_folder

    if is_checkpoint_folder(args.file):
        emit_json(describe_checkpoint(args.file))
        return 0

    lazy = open_cube(args.file, var=args.var, wavelengths=args.wavelengths, zero_nonfinite=args.zero_nonfinite)
    emit_json(describe(lazy, stream_statistics(lazy)))
    return 0


def stream_statistics(lazy: Any) -> dict[str, Any]:
    """Value range, NaN/Inf and ignored-sample counts of a :class:`~hiralign.io.LazyCube`, by windows.

    NaN/Inf values are zeroed (and counted as such) when they all lie in bad bands or the
    cube was opened with ``zero_nonfinite``, exactly as :func:`hiralign.io.load` does.
    """
    import numpy as np

    from hiralign.io.common import warn
    from hiralign.io.convert import _warn_if_dark

    lo, hi = np.inf, -np.inf
    per_band = np.zeros(lazy.n_bands, dtype=np.int64)
    ignored = 0
    for start, stop in lazy.windows():
        rows, mask = lazy.read_rows(start, stop, nonfinite="keep")
        finite = np.isfinite(rows)
        per_band += rows.shape[0] * rows.shape[1] - np.count_nonzero(finite, axis=(0, 1))
        values = rows[finite] if not finite.all() else rows
        if values.size:
            lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
        ignored += 0 if mask is None else int(np.count_nonzero(mask))
    count = int(per_band.sum())
    where = np.flatnonzero(per_band)
    only_bad = bool(lazy.bad_bands) and set(where.tolist()) <= set(lazy.bad_bands)
    zeroed = 0
    if count and (only_bad or lazy._options.zero_nonfinite):
        zeroed, reason = count, "all in bad bands" if only_bad else "as asked"
        warn(lazy.path, f"{count} NaN/Inf values in {where.size} bands replaced by 0 ({reason})")
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if np.isfinite(hi):
        _warn_if_dark(lazy.path, lazy.prep.dtype.name, np.array([hi], np.float32), lazy.prep.scaling)
    return {"value_range": [lo, hi] if np.isfinite(lo) else None, "nonfinite": count - zeroed,
            "nonfinite_zeroed": zeroed, "ignored_values": ignored}


def describe(cube: Any, statistics: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready summary of a :class:`~hiralign.cube.Cube` or :class:`~hiralign.io.LazyCube`.

    For a lazy cube, pass its :func:`stream_statistics`; for a loaded cube they are
    computed from its data.

    Keys: path, name, format, variable, shape [H, W, B], dtype (as stored), value_range
    [min, max] of the finite values after scaling (ignored samples count as 0), bands,
    wavelength_range_nm, wavelength_source ("file", "given", "assumed" or null), rgb_bands
    (Γ indices, null when unknown), rgb_wavelengths_nm, nonfinite, nonfinite_zeroed,
    ignored_values (samples equal to the data ignore value), bad_bands, scaling.
    """
    import numpy as np

    from hiralign.cube import DEFAULT_31_BANDS_NM, RGB_WAVELENGTHS_NM

    meta = cube.metadata
    if statistics is None:
        data = cube.data
        nonfinite = cube.count_nonfinite()
        finite = data[np.isfinite(data)] if nonfinite else data
        statistics = {"value_range": [float(finite.min()), float(finite.max())] if finite.size else None,
                      "nonfinite": nonfinite, "nonfinite_zeroed": int(meta.get("nonfinite_zeroed", 0)),
                      "ignored_values": int(meta.get("ignored_values", 0))}
    value_range, nonfinite = statistics["value_range"], statistics["nonfinite"]
    source = meta.get("wavelength_source") if cube.wavelengths is not None else None
    wavelengths = cube.wavelengths
    if wavelengths is None and cube.n_bands == DEFAULT_31_BANDS_NM.size:
        wavelengths, source = DEFAULT_31_BANDS_NM, "assumed"
    rgb = None
    if wavelengths is not None:
        rgb = [int(np.argmin(np.abs(wavelengths - t))) for t in RGB_WAVELENGTHS_NM]
    elif cube.n_bands == 3:
        rgb = [0, 1, 2]
    return {
        "path": meta.get("source"),
        "name": cube.name,
        "format": meta.get("format"),
        "variable": meta.get("variable"),
        "shape": list(cube.shape),
        "dtype": meta.get("dtype") or str(getattr(cube, "data", np.zeros(0, np.float32)).dtype),
        "value_range": value_range,
        "bands": cube.n_bands,
        "wavelength_range_nm": None if wavelengths is None else [float(wavelengths[0]), float(wavelengths[-1])],
        "wavelength_source": source,
        "rgb_bands": rgb,
        "rgb_wavelengths_nm": None if rgb is None or wavelengths is None else [float(wavelengths[i]) for i in rgb],
        "nonfinite": nonfinite,
        "nonfinite_zeroed": statistics["nonfinite_zeroed"],
        "ignored_values": statistics["ignored_values"],
        "bad_bands": list(cube.bad_bands),
        "scaling": meta.get("scaling"),
    }
