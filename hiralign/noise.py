"""Blind per-band noise estimation: σ_b and a Poisson–Gaussian model var = a_b·μ + b_b.

The estimates are made on the file's own scale: a uint16 file loaded by
:func:`hiralign.io.load` (values divided by 65535) is analysed in **counts** again, so a
10-bit sensor's noise reads "σ ≈ 4 counts" rather than "6e-5 of full scale". The model
records that scale (:attr:`NoiseModel.scale`) and converts itself to any other one
(:meth:`NoiseModel.on_scale`): data multiplied by ``f`` has ``a·f`` and ``b·f²``.

Method (in the spirit of Foi et al., "Practical Poissonian–Gaussian noise modeling and
fitting for single-image raw-data", IEEE TIP 2008, written here on numpy/scipy):

1. Noise samples: the finest-scale Haar diagonal detail of each 2×2 block,
   d = (x₀₀ − x₀₁ − x₁₀ + x₁₁)/2, whose variance equals the pixel noise variance for
   white noise and which cancels every locally linear signal.
2. Per-band σ: a robust spread of d that is not quantised on integer data. The MAD of
   integer counts takes only half-integer values (σ ≈ 3 counts can read 2.97 or 3.71);
   here the MAD only starts an iteration of clipped second moments (|d| ≤ 2.5·s) with
   the exact Gaussian truncation correction, whose inlier set moves by one lattice point
   in the far tail at a time, so the bias it leaves is a fraction of a per cent.
3. Local means: 2×2 block means smoothed over 3×3 blocks (6×6 pixels; their own noise is
   σ²/36 of the pixels', small enough not to blur the level sets).
4. Level sets: per band, the blocks sorted by local mean into equal-count bins; per bin
   the robust variance of d (as in 2.) and the mean level.
5. Fit: weighted least squares of var = a·μ + b over the bins, with weights n_k / v_k²
   (a sample variance's own variance is 2v²/n), refitted with the fitted variances and
   Huber weights on the residuals (texture-inflated bins lose weight), constrained to
   a, b ≥ 0 (the 2-parameter non-negative solution is found exactly).

Everything is vectorised over bands; a 256×512×16 capture takes about 0.3–0.4 s on one core.
Per band on such a capture (5 seeds, a = 0.1–0.3, b = 3–9 counts², means 20–250 counts):
σ within 1.7 % (bias −0.3 %), a rms error 8 % (bias +2.7 %); b, an intercept below the darkest
level set, rms 37 % (bias −12 %) — the all-bands fit (:attr:`NoiseAnalysis.pooled_ab`) is
the precise one for a sensor with one gain.
Rounding to integers adds 1/12 count² of quantisation noise, which is part of the file's
noise and stays in b.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Sequence

import numpy as np

from hiralign.errors import InputError

#: Clipping threshold of the robust spread, in units of the current σ estimate.
CLIP: float = 2.5
#: Iterations of the clipped second moment (converges to < 1e-4 relative in ~6).
CLIP_ITERATIONS: int = 10
#: Level-set bins per band for the Poisson–Gaussian fit.
LEVEL_BINS: int = 16
#: Fewest Haar blocks a level-set bin needs.
MIN_BIN_COUNT: int = 64
#: At most this many 2×2 blocks per band are analysed (evenly spaced block rows beyond it).
MAX_BLOCKS_PER_BAND: int = 1 << 18
#: Reweighted refits of the level-set line (model-variance and Huber weights).
FIT_ITERATIONS: int = 4
#: Huber threshold on a bin's residual, in units of its expected spread.
HUBER_C: float = 3.0
#: A clipped variance estimate's spread relative to a sample variance's sqrt(2/n) (its lower efficiency).
VARIANCE_SPREAD_FACTOR: float = 1.3
#: a_b·mean_b below this fraction of b_b counts as "signal-independent" (σ_b alone describes it).
SIGNAL_DEPENDENT_FRACTION: float = 0.1


def _truncated_second_moment(c: float) -> float:
    """E[z² | |z| ≤ c] for z ~ N(0, 1)."""
    phi = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    mass = math.erf(c / math.sqrt(2.0))
    return 1.0 - 2.0 * c * phi / mass


_G_CLIP = _truncated_second_moment(CLIP)


def robust_std(values: np.ndarray, axis: int = -1, clip: float = CLIP,
               iterations: int = CLIP_ITERATIONS) -> np.ndarray:
    """Robust, non-quantised standard deviation of zero-mean samples along ``axis``.

    Starts from MAD/0.6745 (about 0: the samples are detail coefficients) and iterates
    s ← sqrt(mean(d² | |d| ≤ clip·s) / g(clip)), g the Gaussian truncated second moment.

    Args:
        values: samples, any shape; NaNs are ignored (padding).
        axis: the axis to reduce.
        clip: clipping threshold in units of s.
        iterations: fixed-point iterations.

    Returns:
        The spread with ``axis`` removed (0 where all samples are 0, NaN where all are NaN).
    """
    x = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    # Sorted squares and their running sums: each iteration is then a count and a lookup.
    sq = np.sort(np.square(x), axis=-1)  # NaN sorts last
    n_valid = np.sum(~np.isnan(sq), axis=-1)
    csum = np.cumsum(np.nan_to_num(sq), axis=-1)
    rows = np.maximum(n_valid - 1, 0)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.take_along_axis(csum, rows, axis=-1)[..., 0] if sq.shape[-1] else np.zeros(sq.shape[:-1])
        rms = np.where(n_valid > 0, np.sqrt(total / np.maximum(n_valid, 1)), np.nan)
        # median |d| = sqrt(median d²) (lower middle for an even count).
        middle = np.maximum((n_valid - 1) // 2, 0)[..., None]
        med = np.sqrt(np.take_along_axis(sq, middle, axis=-1)[..., 0]) if sq.shape[-1] else rms
        # Integer data with σ < 1 can have a median |d| of 0: start from the plain RMS instead.
        s = np.where(med > 0, med / 0.6744897501960817, rms)
        g = _truncated_second_moment(clip) if clip != CLIP else _G_CLIP
        for _ in range(iterations):
            count = np.sum(sq <= (clip * s[..., None]) ** 2, axis=-1)  # NaN compares False
            inside = np.take_along_axis(csum, np.maximum(count - 1, 0)[..., None], axis=-1)[..., 0]
            s = np.where(count > 0, np.sqrt(inside / np.maximum(count, 1) / g), rms)
    return np.where(n_valid > 0, s, np.nan)


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """Per-band noise of one sensor: σ_b and var = a_b·μ + b_b, on a stated scale.

    Attributes:
        sigma: (B,) robust noise standard deviation of each band over the whole image (for
            signal-dependent noise: the typical σ, near the one at the median level, not the RMS).
        a: (B,) signal-dependent (Poisson) gain: variance per unit of mean level.
        b: (B,) signal-independent variance (read noise, quantisation, offsets).
        mean: (B,) mean level of each band (where it was measured).
        scale: (B,) model units per unit of the loaded cube: data the model describes is
            ``cube.data[..., k] * scale[k]`` (65535 for counts of a uint16 file, 1 for
            the loaded scale, 1/s for a cube normalised by s).
        units: what one model unit is ("counts", "loaded", "normalised", ...).
        wavelengths: (B,) band centres in nm, or None.
        sources: names of the captures it was estimated from.
        n_samples: Haar blocks analysed per band (summed over sources).
    """

    sigma: tuple[float, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    units: str = "loaded"
    wavelengths: tuple[float, ...] | None = None
    sources: tuple[str, ...] = ()
    n_samples: int = 0

    def __post_init__(self) -> None:
        n = len(self.sigma)
        fields = {"a": self.a, "b": self.b, "mean": self.mean, "scale": self.scale}
        if self.wavelengths is not None:
            fields["wavelengths"] = self.wavelengths
        for name, values in fields.items():
            if len(values) != n:
                raise InputError(f"noise model: {name} has {len(values)} values for {n} bands")
        arrays = np.array([self.sigma, self.a, self.b, self.scale], dtype=np.float64)
        if not np.all(np.isfinite(arrays)) or np.any(arrays[:3] < 0) or np.any(arrays[3] <= 0):
            raise InputError("noise model: sigma, a, b must be finite and ≥ 0 and scale > 0")

    @property
    def n_bands(self) -> int:
        return len(self.sigma)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) as (B,) float64 arrays."""
        return np.asarray(self.a, dtype=np.float64), np.asarray(self.b, dtype=np.float64)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Noise variance a_b·max(μ, 0) + b_b for levels ``mu`` of shape (B, ...)."""
        a, b = self.arrays()
        mu = np.asarray(mu, dtype=np.float64)
        shape = (-1,) + (1,) * (mu.ndim - 1)
        return a.reshape(shape) * np.maximum(mu, 0.0) + b.reshape(shape)

    @property
    def signal_dependent(self) -> tuple[bool, ...]:
        """Per band: whether a_b·mean_b is a noticeable part of the variance."""
        return tuple(bool(a * m > SIGNAL_DEPENDENT_FRACTION * b) for a, m, b in zip(self.a, self.mean, self.b))

    def rescaled(self, factor: float | Sequence[float] | np.ndarray, units: str | None = None) -> NoiseModel:
        """The model of the data multiplied by ``factor`` (scalar or (B,)): a·f, b·f², σ·f."""
        f = np.broadcast_to(np.asarray(factor, dtype=np.float64), (self.n_bands,))
        if not np.all(np.isfinite(f)) or np.any(f <= 0):
            raise InputError(f"noise model: cannot rescale by {factor!r} (need finite values > 0)")
        a, b = self.arrays()
        return dataclasses.replace(
            self, sigma=_tup(np.asarray(self.sigma) * f), a=_tup(a * f), b=_tup(b * f * f),
            mean=_tup(np.asarray(self.mean) * f), scale=_tup(np.asarray(self.scale) * f),
            units=units or self.units)

    def on_scale(self, per_unit: float | Sequence[float] | np.ndarray, units: str) -> NoiseModel:
        """The model for data of ``per_unit`` units per loaded-cube unit (scalar or (B,)).

        ``on_scale(1, "loaded")`` describes ``cube.data`` itself; for a network input
        ``cube.data / s`` use ``on_scale(1 / s, "normalised")``.
        """
        target = np.broadcast_to(np.asarray(per_unit, dtype=np.float64), (self.n_bands,))
        return self.rescaled(target / np.asarray(self.scale), units=units)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists), inverse of :meth:`from_dict`."""
        d = dataclasses.asdict(self)
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        d["signal_dependent"] = list(self.signal_dependent)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "noise model") -> NoiseModel:
        """Rebuild a model from :meth:`to_dict`'s output (e.g. a run's ``noise.json``).

        Raises:
            InputError: missing or malformed fields (the message names ``source``).
        """
        if not isinstance(data, dict):
            raise InputError(f"{source}: a noise model must be a JSON object, not {type(data).__name__}")
        try:
            wl = data.get("wavelengths")
            return cls(sigma=_tup(data["sigma"]), a=_tup(data["a"]), b=_tup(data["b"]),
                       mean=_tup(data.get("mean", [0.0] * len(data["sigma"]))),
                       scale=_tup(data.get("scale", [1.0] * len(data["sigma"]))),
                       units=str(data.get("units", "loaded")),
                       wavelengths=None if wl is None else _tup(wl),
                       sources=tuple(str(s) for s in data.get("sources", ())),
                       n_samples=int(data.get("n_samples", 0)))
        except KeyError as exc:
            raise InputError(f"{source}: the noise model lacks {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed noise model: {exc}") from None


def _tup(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())


@dataclasses.dataclass(frozen=True)
class NoiseAnalysis:
    """A fitted model with the level-set statistics behind it (for plots and checks).

    Attributes:
        model: the fitted :class:`NoiseModel`.
        bin_mean: (B, K) mean level of each level-set bin (NaN for unused bins).
        bin_var: (B, K) robust noise variance of each bin.
        bin_count: (B, K) Haar blocks per bin.
        pooled_ab: (a, b) of one fit over the level sets of all bands (a sensor-wide
            summary; much more precise than a single band's b when a·μ dominates).
    """

    model: NoiseModel
    bin_mean: np.ndarray
    bin_var: np.ndarray
    bin_count: np.ndarray
    pooled_ab: tuple[float, float]


# ----------------------------------------------------------------------- samples
def file_scale(cube: Any) -> tuple[float, str]:
    """(model units per loaded unit, unit name) of a loaded cube's own file scale.

    Integer files come back to their stored values ("counts"), files with a reflectance
    scale factor to their stored numbers ("stored values"); float files stay as loaded.
    """
    scaling = (getattr(cube, "metadata", None) or {}).get("scaling")
    if isinstance(scaling, dict) and scaling.get("divisor"):
        divisor = float(scaling["divisor"])
        units = "stored values" if scaling.get("reason") == "reflectance scale factor" else "counts"
        return divisor, units
    return 1.0, "loaded"


def haar_samples(bands_first: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Finest Haar diagonal details and smoothed local means of 2×2 blocks.

    Args:
        bands_first: (B, H, W) data (H, W ≥ 2; an odd last row/column is dropped).
        mask: (B or 1, H, W) samples without data (True), or None; blocks touching one
            (or whose 3×3 neighbourhood does) get NaN.

    Returns:
        (detail, level), both (B, H//2, W//2) float64: detail d = (x₀₀ − x₀₁ − x₁₀ + x₁₁)/2
        (variance = pixel noise variance), level = block means smoothed over 3×3 blocks.
    """
    from scipy.ndimage import uniform_filter

    x = np.asarray(bands_first)
    h, w = (x.shape[1] // 2) * 2, (x.shape[2] // 2) * 2
    if h < 2 or w < 2:
        raise InputError(f"noise estimation needs at least 2×2 pixels, got {x.shape[1]}×{x.shape[2]}")
    x00 = x[:, 0:h:2, 0:w:2].astype(np.float64)
    x01 = x[:, 0:h:2, 1:w:2].astype(np.float64)
    x10 = x[:, 1:h:2, 0:w:2].astype(np.float64)
    x11 = x[:, 1:h:2, 1:w:2].astype(np.float64)
    detail = 0.5 * (x00 - x01 - x10 + x11)
    level = uniform_filter(0.25 * (x00 + x01 + x10 + x11), size=(1, 3, 3), mode="nearest")
    if mask is not None:
        m = np.asarray(mask, dtype=bool)[:, :h, :w]
        blocks = m[:, 0::2, 0::2] | m[:, 0::2, 1::2] | m[:, 1::2, 0::2] | m[:, 1::2, 1::2]
        near = uniform_filter(blocks.astype(np.float32), size=(1, 3, 3), mode="nearest") > 0
        detail = np.where(blocks, np.nan, detail)
        level = np.where(near | blocks, np.nan, level)
    return detail, level


def _bounded(arr: np.ndarray) -> np.ndarray:
    """Evenly spaced pairs of rows of an (H, W, B) array, at most MAX_BLOCKS_PER_BAND blocks (bounded memory)."""
    blocks = (arr.shape[0] // 2) * (arr.shape[1] // 2)
    if blocks <= MAX_BLOCKS_PER_BAND:
        return arr
    keep = math.ceil(blocks / MAX_BLOCKS_PER_BAND)
    rows = np.arange(0, arr.shape[0] - 1, 2)[::keep]
    return arr[np.stack([rows, rows + 1], axis=1).ravel()]


def _bands_first(cube: Any) -> tuple[np.ndarray, np.ndarray | None, float, str, tuple[float, ...] | None, str]:
    """(B, H, W) data on the file's own scale, its (B|1, H, W) no-data mask or None, scale, units,
    wavelengths and name."""
    data = getattr(cube, "data", cube)
    arr = np.asarray(data)
    name = str(getattr(cube, "name", "cube"))
    if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{name}: noise estimation needs an (H, W, B) numeric cube, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: the cube holds NaN or Inf values; load it with zero_nonfinite")
    scale, units = file_scale(cube)
    mask = getattr(cube, "mask", None)  # a file's "data ignore value" samples (hold 0 in data)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        mask = np.moveaxis(_bounded(mask if mask.ndim == 3 else mask[:, :, None]), -1, 0)
    arr = _bounded(arr)
    bands = np.moveaxis(arr, -1, 0).astype(np.float64) * scale
    dtype = str((getattr(cube, "metadata", None) or {}).get("dtype", ""))
    if units == "counts" and np.dtype(dtype or "f4").kind in "iu":
        np.rint(bands, out=bands)  # undo float32's 1-ulp errors: 22 counts, not 21.99999999
    wl = getattr(cube, "wavelengths", None)
    return bands, mask, scale, units, None if wl is None else _tup(wl), name


def _level_sets(detail: np.ndarray, level: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per band equal-count bins of blocks sorted by level: (B, K) mean, robust var, count."""
    n_bands = detail.shape[0]
    d = detail.reshape(n_bands, -1)
    mu = level.reshape(n_bands, -1)
    k = max(1, min(bins, d.shape[1] // MIN_BIN_COUNT))
    per = d.shape[1] // k
    order = np.argsort(mu, axis=1)[:, :per * k]  # NaN (no data) sorts last
    d_sorted = np.take_along_axis(d, order, axis=1).reshape(n_bands, k, per)
    mu_sorted = np.take_along_axis(mu, order, axis=1).reshape(n_bands, k, per)
    var = robust_std(d_sorted, axis=-1) ** 2
    counts = np.sum(~np.isnan(d_sorted), axis=-1)
    if np.all(counts == per):
        return mu_sorted.mean(axis=-1), var, counts
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-masked bins: NaN, weight 0 in the fit
        return np.nanmean(mu_sorted, axis=-1), var, counts


def _nonneg_fit(mu: np.ndarray, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, weighted least squares v ≈ a·μ + b with a, b ≥ 0 (exact 2-parameter NNLS)."""
    w = np.where(np.isfinite(v) & np.isfinite(mu) & np.isfinite(w), w, 0.0)
    w = w / np.maximum(w.max(axis=1, keepdims=True), 1e-300)  # relative weights: no overflow in the sums
    v = np.nan_to_num(v)
    mu = np.nan_to_num(mu)
    sw, smu, sv = w.sum(1), (w * mu).sum(1), (w * v).sum(1)
    smm, smv = (w * mu * mu).sum(1), (w * mu * v).sum(1)
    det = sw * smm - smu * smu
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(det > 1e-12 * np.maximum(sw * smm, 1e-300), (sw * smv - smu * sv) / det, 0.0)
        b = np.where(sw > 0, (sv - a * smu) / np.maximum(sw, 1e-300), 0.0)
        # Active-set cases: a < 0 → a = 0 and b = weighted mean; b < 0 → b = 0 and a through the origin.
        b_only = np.where(sw > 0, sv / np.maximum(sw, 1e-300), 0.0)
        a_only = np.where(smm > 0, smv / np.maximum(smm, 1e-300), 0.0)
    neg_a, neg_b = a < 0, (b < 0) & (a >= 0)
    a = np.where(neg_a, 0.0, np.where(neg_b, np.maximum(a_only, 0.0), a))
    b = np.where(neg_a, np.maximum(b_only, 0.0), np.where(neg_b, 0.0, b))
    return a, b


def _fit(detail: np.ndarray, level: np.ndarray, bins: int) -> tuple[np.ndarray, ...]:
    """σ, a, b, mean per band plus the level-set statistics."""
    n_bands = detail.shape[0]
    sigma = robust_std(detail.reshape(n_bands, -1), axis=-1)
    bin_mean, bin_var, bin_count = _level_sets(detail, level, bins)
    # A bin without spread is clipped or saturated data (all 0, all full scale), not noise: left out.
    usable = (bin_count >= MIN_BIN_COUNT // 2) & np.isfinite(bin_var) & np.isfinite(bin_mean) & (bin_var > 0)
    var_safe = np.where(usable, np.maximum(np.nan_to_num(bin_var), 1e-150), 1.0)
    weights = np.where(usable, bin_count / var_safe ** 2, 0.0)
    a, b = _nonneg_fit(bin_mean, bin_var, weights)
    # Refit with the model's variances as weights (a bin's own noisy v should not weigh itself),
    # and Huber weights on the residuals in units of their expected spread: bins inflated by
    # texture or edges (variance that is not noise) lose weight.
    for _ in range(FIT_ITERATIONS):
        fitted = np.maximum(a[:, None] * np.maximum(np.nan_to_num(bin_mean), 0) + b[:, None], 1e-150)
        spread = fitted * np.sqrt(2.0 / np.maximum(bin_count, 1)) * VARIANCE_SPREAD_FACTOR
        resid = np.abs(np.nan_to_num(bin_var) - fitted) / spread
        huber = np.minimum(1.0, HUBER_C / np.maximum(resid, 1e-12))
        weights = np.where(usable, huber * bin_count / fitted ** 2, 0.0)
        a, b = _nonneg_fit(bin_mean, bin_var, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nan_to_num(np.nanmean(level.reshape(n_bands, -1), axis=1))
    # One sensor-wide fit over every band's level sets, weighted as above.
    pooled = _nonneg_fit(bin_mean.reshape(1, -1), bin_var.reshape(1, -1), weights.reshape(1, -1))
    return sigma, a, b, mean, bin_mean, bin_var, bin_count, (float(pooled[0][0]), float(pooled[1][0]))


# ------------------------------------------------------------------------ public API
def analyse(cubes: Any | Sequence[Any], *, bins: int = LEVEL_BINS) -> NoiseAnalysis:
    """Estimate one noise model from one capture, or one shared by several of one sensor.

    Args:
        cubes: a :class:`~hiralign.cube.Cube` (or (H, W, B) array), or a sequence of them
            with the same band count (their Haar samples are pooled, so the shared model
            weighs each capture by its size).
        bins: level-set bins per band.

    Returns:
        The :class:`NoiseAnalysis`; its model is on the first capture's file scale.

    Raises:
        InputError: not a numeric (H, W, B) cube, non-finite values, fewer than 2×2
            pixels, or captures with different band counts or file scales.
    """
    items = list(cubes) if isinstance(cubes, (list, tuple)) else [cubes]
    if not items:
        raise InputError("noise estimation needs at least one cube")
    details, levels, names = [], [], []
    first = None
    for item in items:
        bands, mask, scale, units, wl, name = _bands_first(item)
        if first is None:
            first = (bands.shape[0], scale, units, wl)
        elif bands.shape[0] != first[0]:
            raise InputError(f"{name}: {bands.shape[0]} bands, but {names[0]} has {first[0]}; "
                             "a shared noise model needs captures of one sensor")
        elif scale != first[1]:
            raise InputError(f"{name}: stored on another scale ({units}/{scale:g}) than {names[0]} "
                             f"({first[2]}/{first[1]:g}); a shared noise model needs one sensor's files")
        detail, level = haar_samples(bands, mask)
        details.append(detail.reshape(bands.shape[0], -1))
        levels.append(level.reshape(bands.shape[0], -1))
        names.append(name)
    assert first is not None
    detail, level = np.concatenate(details, axis=1), np.concatenate(levels, axis=1)
    sigma, a, b, mean, bin_mean, bin_var, bin_count, pooled = _fit(detail, level, bins)
    model = NoiseModel(sigma=_tup(sigma), a=_tup(a), b=_tup(b), mean=_tup(mean),
                       scale=_tup(np.full(first[0], first[1])), units=first[2], wavelengths=first[3],
                       sources=tuple(names), n_samples=int(detail.shape[1]))
    return NoiseAnalysis(model=model, bin_mean=bin_mean, bin_var=bin_var, bin_count=bin_count,
                         pooled_ab=pooled)


def estimate_noise(cubes: Any | Sequence[Any], *, bins: int = LEVEL_BINS) -> NoiseModel:
    """The :class:`NoiseModel` of :func:`analyse` (one capture, or several shared)."""
    return analyse(cubes, bins=bins).model


def estimate_sigma(data: np.ndarray) -> np.ndarray:
    """Per-band robust noise σ of an (H, W, B) array on its own scale (no rescaling).

    Returns:
        (B,) float64 standard deviations.
    """
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise InputError(f"noise estimation needs an (H, W, B) cube, got shape {arr.shape}")
    detail, _ = haar_samples(np.moveaxis(_bounded(arr), -1, 0))
    return robust_std(detail.reshape(detail.shape[0], -1), axis=-1)
