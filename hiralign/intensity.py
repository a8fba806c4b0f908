"""Robust intensity normalisation: what the network sees, and the way back to the input's range.

A real capture rarely fills [0, 1]: a 10-bit sensor stored as uint16 peaks near 0.004 once
loaded (values / 65535). The networks are trained on data with a peak near 1, so every cube
is divided by a robust scale s (a high percentile of the pooled targets, one per run so
that all targets share one scale, or one per band for sensors whose bands differ a lot)
before the network, and multiplied by it afterwards. The scale is a small frozen record
(:class:`IntensityScale`) stored with the run.

Policy (:func:`scale_for_task`): ``sensor`` always normalises (its noise model lives on the
data's own scale and is converted to the network's with :func:`noise_on_network_scale`);
the protocol tasks, whose σ is defined in full-scale [0, 1] units, keep scale 1 when the
data already fills that range and otherwise normalise, with a warning that says so.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hiralign.errors import ConfigError, InputError

if TYPE_CHECKING:
    from hiralign.cube import Cube
    from hiralign.noise import NoiseModel

#: Default percentile of the robust peak (99.9: a few hot pixels or specular glints do not set it).
PERCENTILE: float = 99.9
#: Modes of :func:`estimate_scale`: one scale for all bands, or one per band.
MODES: tuple[str, ...] = ("cube", "band")
#: Protocol tasks keep scale 1 when the robust peak lies in this range of full scale.
FULL_RANGE: tuple[float, float] = (0.25, 1.5)
#: At most this many pixels per cube enter the percentile (evenly spaced; bounded memory).
MAX_PIXELS: int = 1 << 20


@dataclasses.dataclass(frozen=True)
class IntensityScale:
    """Divide by this before the network, multiply after: z = x / s (x as loaded).

    Attributes:
        values: (1,) one scale for every band, or (B,) one per band, in loaded-cube units.
        mode: "none" (identity), "cube" or "band".
        percentile: the percentile the scale was taken at (None for the identity).
        reason: why this scale was chosen (shown to the user and stored with the run).
    """

    values: tuple[float, ...] = (1.0,)
    mode: str = "none"
    percentile: float | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.values or not all(math.isfinite(v) and v > 0 for v in self.values):
            raise InputError(f"intensity scale: need finite values > 0, got {list(self.values)}")
        if self.mode not in ("none", *MODES):
            raise ConfigError(f"intensity scale: unknown mode {self.mode!r}; choose none, {', '.join(MODES)}")

    @property
    def is_identity(self) -> bool:
        return all(v == 1.0 for v in self.values)

    def per_band(self, bands: int) -> np.ndarray:
        """(bands,) float64 scale of every band.

        Raises:
            InputError: a per-band scale of another band count.
        """
        if len(self.values) not in (1, bands):
            raise InputError(f"the intensity scale has {len(self.values)} bands but the cube has {bands}")
        return np.broadcast_to(np.asarray(self.values, dtype=np.float64), (bands,)).copy()

    def to_dict(self) -> dict[str, Any]:
        return {"values": list(self.values), "mode": self.mode, "percentile": self.percentile, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "intensity scale") -> IntensityScale:
        """Inverse of :meth:`to_dict` (e.g. a run's ``intensity.json``); InputError naming ``source``."""
        if not isinstance(data, dict) or "values" not in data:
            raise InputError(f"{source}: an intensity scale needs a 'values' list")
        try:
            pct = data.get("percentile")
            return cls(values=tuple(float(v) for v in np.asarray(data["values"], dtype=np.float64).ravel()),
                       mode=str(data.get("mode", "cube")), percentile=None if pct is None else float(pct),
                       reason=str(data.get("reason", "")))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed intensity scale: {exc}") from None


def _data(cube: Cube | np.ndarray) -> tuple[np.ndarray, np.ndarray | None, str]:
    data = np.asarray(getattr(cube, "data", cube))
    if data.ndim != 3:
        raise InputError(f"{getattr(cube, 'name', 'cube')}: expected an (H, W, B) cube, got shape {data.shape}")
    return data, getattr(cube, "mask", None), str(getattr(cube, "name", "cube"))


def _pixels(cube: Cube | np.ndarray) -> np.ndarray:
    """(P, B) float64 valid samples (NaN where masked or non-finite), at most MAX_PIXELS rows."""
    data, mask, _ = _data(cube)
    rows = data.reshape(-1, data.shape[-1])
    step = max(1, math.ceil(rows.shape[0] / MAX_PIXELS))
    out = rows[::step].astype(np.float64)
    if mask is not None:
        m = np.broadcast_to(np.asarray(mask, dtype=bool), data.shape).reshape(-1, data.shape[-1])[::step]
        out[m] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out


def robust_peak(cubes: Cube | np.ndarray | Sequence[Cube | np.ndarray], percentile: float = PERCENTILE,
                per_band: bool = False) -> np.ndarray:
    """The ``percentile`` of the pooled values of ``cubes`` (loaded units): (1,) or (B,) float64.

    Raises:
        InputError: no cube, different band counts (per band) or no valid sample.
    """
    items = list(cubes) if isinstance(cubes, (list, tuple)) else [cubes]
    if not items:
        raise InputError("an intensity scale needs at least one cube")
    if not 50.0 <= percentile <= 100.0:
        raise ConfigError(f"the scale percentile must lie in [50, 100], got {percentile}")
    pixels = [_pixels(c) for c in items]
    if per_band:
        bands = {p.shape[1] for p in pixels}
        if len(bands) > 1:
            raise InputError(f"a per-band intensity scale needs one band count, got {sorted(bands)}")
        pooled = np.concatenate(pixels, axis=0)
    else:
        pooled = np.concatenate([p.ravel() for p in pixels])[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bands are handled below
        peak = np.nanpercentile(pooled, percentile, axis=0)
    if not np.any(np.isfinite(peak) & (peak > 0)):
        names = ", ".join(str(getattr(c, "name", "cube")) for c in items)
        raise InputError(f"{names}: no positive values; the cube is empty or all zero, nothing to normalise")
    return np.asarray(peak, dtype=np.float64)


def estimate_scale(cubes: Cube | np.ndarray | Sequence[Cube | np.ndarray], mode: str = "cube",
                   percentile: float = PERCENTILE) -> IntensityScale:
    """One robust scale for ``cubes`` (pooled, so all targets of a run share it).

    Args:
        cubes: one cube or several, (H, W, B) on the loaded scale.
        mode: "cube" (one scale) or "band" (per band; a band without positive values takes
            the all-bands scale).
        percentile: the robust peak's percentile.

    Returns:
        The :class:`IntensityScale`.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown intensity scale mode {mode!r}; choose {' or '.join(MODES)}")
    overall = robust_peak(cubes, percentile)
    values = overall
    if mode == "band":
        per = robust_peak(cubes, percentile, per_band=True)
        values = np.where(np.isfinite(per) & (per > 0), per, overall[0])
    return IntensityScale(values=tuple(float(v) for v in values), mode=mode, percentile=percentile,
                          reason=f"{percentile:g}th percentile of the pooled {'bands' if mode == 'band' else 'values'}")


def scale_for_task(task: str, cubes: Cube | np.ndarray | Sequence[Cube | np.ndarray], *, mode: str = "cube",
                   percentile: float = PERCENTILE) -> IntensityScale:
    """The run's intensity scale for ``task`` (see the module docstring for the policy).

    A dark capture (e.g. 10-bit counts in uint16, peak 0.004) is normal input: for a
    protocol task it is normalised with a :class:`UserWarning` that says so, never refused.
    """
    from hiralign.degrade import check_task

    check_task(task)
    if task == "sensor" or mode == "band":
        return estimate_scale(cubes, mode, percentile)
    peak = float(robust_peak(cubes, percentile)[0])
    if FULL_RANGE[0] <= peak <= FULL_RANGE[1]:
        return IntensityScale(reason=f"the data fill [0, 1] ({percentile:g}th percentile {peak:.3g}); "
                                     f"{task}'s noise levels are in full-scale units, so no rescaling")
    scale = estimate_scale(cubes, mode, percentile)
    reason = (f"the {percentile:g}th percentile is {peak:.3g} of full scale, outside "
              f"[{FULL_RANGE[0]:g}, {FULL_RANGE[1]:g}]; the cubes are divided by it so the network sees "
              f"a peak near 1 ({task}'s noise levels then apply to the normalised data)")
    warnings.warn(f"intensity: {reason}", UserWarning, stacklevel=2)
    return dataclasses.replace(scale, reason=reason)


# ---------------------------------------------------------------------- apply / invert
def normalise(cube: Cube | np.ndarray, scale: IntensityScale) -> Cube | np.ndarray:
    """``cube / s`` (float32), a Cube (metadata ``intensity_scale`` added) or an (H, W, B) array."""
    data, _, _ = _data(cube)
    s = scale.per_band(data.shape[-1]).astype(np.float32)
    out = (data.astype(np.float32) / s).astype(np.float32)
    return _wrap(cube, out, scale)


def denormalise(cube: Cube | np.ndarray, scale: IntensityScale) -> Cube | np.ndarray:
    """``cube · s``: the inverse of :func:`normalise` (metadata ``intensity_scale`` removed)."""
    data, _, _ = _data(cube)
    s = scale.per_band(data.shape[-1]).astype(np.float32)
    out = (data.astype(np.float32) * s).astype(np.float32)
    return _wrap(cube, out, None)


def _wrap(cube: Cube | np.ndarray, data: np.ndarray, scale: IntensityScale | None) -> Cube | np.ndarray:
    if not hasattr(cube, "with_data"):
        return data
    out = cube.with_data(data)
    if scale is None:
        out.metadata.pop("intensity_scale", None)
    else:
        out.metadata["intensity_scale"] = scale.to_dict()
    return out


def to_input_range(cube: Cube, like: Cube) -> Cube:
    """A restored cube on the loaded scale, put back into the range and metadata of the input ``like``.

    Values are clipped to what the input's stored data type can hold (an unsigned uint16
    capture: [0, 65535] counts, i.e. [0, 1] as loaded), and the input's ``dtype``,
    ``scaling`` and band metadata are carried over, so ``hiralign.io.save(cube, path,
    dtype="input")`` writes counts exactly like the input file. Float inputs are returned
    unclipped. The result stays float32 on the loaded scale (no rounding here).

    Raises:
        InputError: the shapes differ.
    """
    if cube.shape != like.shape:
        raise InputError(f"{cube.name}: shape {cube.shape} differs from the input {like.name}'s {like.shape}")
    meta = like.metadata or {}
    data = np.asarray(cube.data, dtype=np.float32)
    low, high = _loaded_range(meta)
    if low is not None:
        data = np.clip(data, low, high)
    out = like.with_data(data.astype(np.float32, copy=False), name=cube.name)
    out.metadata = {**dict(cube.metadata), **{k: meta[k] for k in ("dtype", "scaling", "data_ignore_value")
                                                   if k in meta}}
    out.metadata.pop("intensity_scale", None)
    return out


def _loaded_range(meta: dict[str, Any]) -> tuple[float | None, float | None]:
    """The loaded-scale range an integer input's dtype can represent, or (None, None)."""
    try:
        dtype = np.dtype(str(meta.get("dtype", "")) or "float32")
    except TypeError:
        return None, None
    if dtype.kind not in "iu":
        return None, None
    scaling = meta.get("scaling") or {}
    divisor = float(scaling.get("divisor") or 1.0)
    info = np.iinfo(dtype)
    return float(info.min) / divisor, float(info.max) / divisor


def noise_on_network_scale(noise: NoiseModel, scale: IntensityScale) -> NoiseModel:
    """The sensor noise model for the network's input ``cube.data / s``: a/s, b/s² per band."""
    return noise.on_scale(1.0 / scale.per_band(noise.n_bands), "normalised")
