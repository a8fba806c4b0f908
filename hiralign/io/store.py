"""How a cube's float32 values are stored by :func:`hiralign.io.save`: dtype, scale, no-data.

``save(cube, path)`` writes float32 (lossless for every cube). ``save(..., dtype="input")``
writes the data type the cube was read from — a uint16 capture goes back to uint16
counts (half the size of float32): values are multiplied by the divisor ``load`` used
(the ``reflectance scale factor``, written back into the header, or the type's full
scale), rounded and clipped to the type's range. Any numpy dtype name also works
(``dtype="uint16"``: values × 65535). Samples under the cube's ``mask`` are written as
its ``data ignore value`` (in stored units, as the file had them).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.io.common import warn
from hiralign.io.convert import full_scale


@dataclasses.dataclass(frozen=True)
class StorePlan:
    """How rows of float32 values become stored values.

    Attributes:
        dtype: the data type on disk.
        multiplier: values are multiplied by this before rounding (None: stored as they are).
        scale_factor: the ``reflectance scale factor`` to record, or None.
        ignore_value: the stored value of masked samples (and the header's
            ``data ignore value``), or None.
    """

    dtype: np.dtype
    multiplier: float | None = None
    scale_factor: float | None = None
    ignore_value: float | None = None


def store_plan(cube: Cube, dtype: str | np.dtype | None, path: Path) -> StorePlan:
    """The :class:`StorePlan` for saving ``cube`` with the ``dtype`` the caller asked for.

    Args:
        cube: the cube (its ``metadata`` "dtype"/"scaling"/"data_ignore_value" are used).
        dtype: None or "float32" (default), "input" (the dtype the cube was read from),
            or a numpy dtype name.
        path: the target, for messages.

    Raises:
        InputError: an unknown or non-numeric dtype.
    """
    meta = cube.metadata
    ignore = meta.get("data_ignore_value")
    ignore = float(ignore) if ignore is not None and np.isfinite(float(ignore)) else None
    if dtype is None or (isinstance(dtype, str) and dtype.lower() == "float32"):
        return StorePlan(np.dtype("<f4"), ignore_value=ignore)
    scaling = meta.get("scaling") or None
    if isinstance(dtype, str) and dtype.lower() == "input":
        try:
            target = np.dtype(meta.get("dtype") or "float32")
        except TypeError:
            target = np.dtype("float32")
        divisor = float(scaling["divisor"]) if scaling else None
        factor = divisor if scaling and scaling.get("reason") == "reflectance scale factor" else None
    else:
        try:
            target = np.dtype(dtype)
        except TypeError:
            raise InputError(f"{path}: unknown data type {dtype!r}; use float32, input or a numpy type name") from None
        divisor = full_scale(target) if target.kind in "iu" else None
        factor = None
    if target.kind not in "iuf" or target.itemsize > 8:
        raise InputError(f"{path}: cannot store a cube as {target}; use float32, input or an integer type")
    if target.kind == "f" and target.itemsize < 4:
        target = np.dtype("float32")
    if target.kind in "iu" and divisor is None:
        divisor = full_scale(target)
    if ignore is not None and target.kind in "iu":
        info = np.iinfo(target)
        if not (info.min <= ignore <= info.max and float(ignore).is_integer()):
            ignore = None
    return StorePlan(target.newbyteorder("<"), multiplier=divisor, scale_factor=factor, ignore_value=ignore)


def to_stored(rows: np.ndarray, mask: np.ndarray | None, plan: StorePlan, path: Path,
              clipped: list[int] | None = None) -> np.ndarray:
    """Rows of float32 values → stored values under ``plan`` (a new array).

    Args:
        rows: (h, W, B) float32 values.
        mask: (h, W, B|1) samples to write as the ignore value, or None.
        plan: from :func:`store_plan`.
        path: the target, for messages.
        clipped: if given, receives the count of values clipped to the integer range.
    """
    values = rows.astype(np.float64) * plan.multiplier if plan.multiplier is not None else rows
    if plan.dtype.kind in "iu":
        info = np.iinfo(plan.dtype)
        values = np.nan_to_num(np.rint(values), nan=0.0, posinf=info.max, neginf=info.min)
        if clipped is not None:
            clipped.append(int(np.count_nonzero((values < info.min) | (values > info.max))))
        values = np.clip(values, info.min, info.max)
    out = np.asarray(values).astype(plan.dtype)
    if mask is not None and plan.ignore_value is not None:
        out[np.broadcast_to(mask, out.shape)] = plan.ignore_value
    return out


def report_clipped(path: Path, clipped: list[int], plan: StorePlan) -> None:
    """Warn once when values fell outside the stored integer type's range."""
    total = sum(clipped)
    if total:
        warn(path, f"{total} values outside the {plan.dtype.name} range were clipped when saving")


def header_values(plan: StorePlan) -> dict[str, Any]:
    """Metadata to record beside the stored values (scale factor, ignore value)."""
    out: dict[str, Any] = {}
    if plan.scale_factor is not None:
        out["reflectance scale factor"] = plan.scale_factor
    if plan.ignore_value is not None:
        out["data ignore value"] = plan.ignore_value
    return out
