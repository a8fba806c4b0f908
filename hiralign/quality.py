"""No-reference quality report: what a restoration did to a capture that has no clean reference.

Compares the observed cube with its restoration:

* **noise**: per-band σ estimated blindly (:mod:`hiralign.noise`) before and after, and the
  ratio (how many times the noise dropped);
* **method noise** r = input − restored: its spread and mean, its correlation with the
  restored image, its lag-1 autocorrelation along rows and columns, and the share of its
  energy a Gaussian low-pass (σ = 2 px) keeps; for the signal-free white noise a good
  restorer removes, these are ≈ 0, ≈ 0 and 1/(4πσ²) ≈ 2 % (given as the reference);
* **spectra**: mean spectrum over the image and over a grid of large regions, before and
  after, with the relative drift per band (%);
* **seams**: the step across the tile borders of a tile/overlap grid against the step
  across nearby lines (a ratio of 1 means no seam; :func:`seam_ratio`), in the method noise
  (where the scene's edges cancel: the headline), in the restored cube, and in the input as
  the natural baseline.

Values are on the file's own scale (counts for integer captures) where they carry units.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from hiralign.errors import InputError

if TYPE_CHECKING:
    from hiralign.cube import Cube

#: σ of the Gaussian low-pass used for the method noise's low-frequency energy share, px.
LOWPASS_SIGMA: float = 2.0
#: Large regions for the spectral drift: a rows × columns grid.
REGION_GRID: tuple[int, int] = (2, 2)


def _array(cube: Cube | np.ndarray, what: str) -> np.ndarray:
    data = np.asarray(getattr(cube, "data", cube))
    if data.ndim != 3:
        raise InputError(f"{what}: expected an (H, W, B) cube, got shape {data.shape}")
    return data


def _r(values: np.ndarray, digits: int = 5) -> list[float]:
    return [float(round(float(v), digits)) if np.isfinite(v) else None for v in np.asarray(values).ravel()]


def _corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per band Pearson correlation of two (H, W, B) arrays (0 where one is constant)."""
    xc = x - x.mean(axis=(0, 1))
    yc = y - y.mean(axis=(0, 1))
    den = np.sqrt((xc * xc).sum(axis=(0, 1)) * (yc * yc).sum(axis=(0, 1)))
    return np.where(den > 0, (xc * yc).sum(axis=(0, 1)) / np.where(den > 0, den, 1.0), 0.0)


def method_noise_stats(residual: np.ndarray, restored: np.ndarray) -> dict[str, Any]:
    """Summaries of the method noise r = input − restored, (H, W, B) float64 each."""
    from scipy.ndimage import gaussian_filter

    h, w, _ = residual.shape
    centred = residual - residual.mean(axis=(0, 1))
    energy = (centred * centred).sum(axis=(0, 1))
    safe = np.where(energy > 0, energy, 1.0)
    lag_rows = (centred[:, 1:] * centred[:, :-1]).sum(axis=(0, 1)) / safe if w > 1 else np.zeros(energy.shape)
    lag_cols = (centred[1:] * centred[:-1]).sum(axis=(0, 1)) / safe if h > 1 else np.zeros(energy.shape)
    low = gaussian_filter(centred, sigma=(LOWPASS_SIGMA, LOWPASS_SIGMA, 0), mode="reflect")
    lowpass = np.where(energy > 0, (low * low).sum(axis=(0, 1)) / safe, 0.0)
    corr = _corr(residual, restored)
    return {
        "std": _r(residual.std(axis=(0, 1))),
        "mean": _r(residual.mean(axis=(0, 1))),
        "corr_with_restored": _r(corr, 4),
        "lag1_autocorr_rows": _r(lag_rows, 4),
        "lag1_autocorr_cols": _r(lag_cols, 4),
        "lowpass_energy_fraction": _r(lowpass, 4),
        "white_lowpass_energy_fraction": round(1.0 / (4.0 * math.pi * LOWPASS_SIGMA ** 2), 4),
        "mean_abs_corr_with_restored": round(float(np.mean(np.abs(corr))), 4),
        "mean_lag1_autocorr": round(float(np.mean(0.5 * (lag_rows + lag_cols))), 4),
        "mean_lowpass_energy_fraction": round(float(np.mean(lowpass)), 4),
    }


def spectral_drift(before: np.ndarray, after: np.ndarray, grid: tuple[int, int] = REGION_GRID) -> dict[str, Any]:
    """Mean spectra of the image and of a grid of regions before/after, drift in % per band."""
    def drift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ma, mb = a.mean(axis=(0, 1)), b.mean(axis=(0, 1))
        scale = np.maximum(np.abs(ma), 1e-12 * max(float(np.abs(ma).max()), 1e-30))
        return 100.0 * (mb - ma) / scale

    h, w, _ = before.shape
    whole = drift(before, after)
    regions = []
    rows, cols = max(1, min(grid[0], h)), max(1, min(grid[1], w))
    for i in range(rows):
        for j in range(cols):
            ys = slice(i * h // rows, (i + 1) * h // rows)
            xs = slice(j * w // cols, (j + 1) * w // cols)
            d = drift(before[ys, xs], after[ys, xs])
            regions.append({"rows": [ys.start, ys.stop], "cols": [xs.start, xs.stop],
                            "mean_before": _r(before[ys, xs].mean(axis=(0, 1))),
                            "mean_after": _r(after[ys, xs].mean(axis=(0, 1))),
                            "drift_percent": _r(d, 3), "max_abs_drift_percent": round(float(np.abs(d).max()), 3)})
    return {"mean_before": _r(before.mean(axis=(0, 1))), "mean_after": _r(after.mean(axis=(0, 1))),
            "drift_percent": _r(whole, 3), "max_abs_drift_percent": round(float(np.abs(whole).max()), 3),
            "regions": regions,
            "max_abs_region_drift_percent": round(max(r["max_abs_drift_percent"] for r in regions), 3)}


def tile_borders(length: int, tile: int, overlap: int) -> np.ndarray:
    """Positions p (1 ≤ p < length) where a tile of the grid starts or ends: the step p−1 → p crosses it."""
    from hiralign.proxy import tile_starts

    starts = tile_starts(length, tile, overlap)
    edges = {s for s in starts if s > 0} | {s + tile for s in starts if s + tile < length}
    return np.array(sorted(edges), dtype=np.int64)


#: Offsets of the reference positions a tile border is compared with, px: multiples of 4, so a
#: 2×2 or 4×4 snapshot mosaic's periodic gradient pattern (the IMEC captures') compares like with
#: like, and near enough that the scene's content is similar.
SEAM_REFERENCE_OFFSETS: tuple[int, ...] = (-12, -8, -4, 4, 8, 12)


def _segment_steps(data: np.ndarray, axis: int, segment: int) -> np.ndarray:
    """(length − 1,) mean over bands and segments of |mean signed step| along each line across ``axis``."""
    step = np.diff(data, axis=axis)  # step p−1 → p at index p−1 along ``axis``
    step = np.moveaxis(step, axis, 0)  # (length − 1, other, B)
    other = step.shape[1]
    seg = max(1, min(segment, other))
    n = other // seg
    means = step[:, :n * seg].reshape(step.shape[0], n, seg, step.shape[2]).mean(axis=2)
    return np.abs(means).mean(axis=(1, 2))


def seam_ratio(data: np.ndarray, tile: int, overlap: int, shift: int = 0) -> float | None:
    """Step across tile borders / step at nearby reference positions, the larger of the two axes.

    The step is the mean over bands and border segments (one tile long: a tile pair shares
    its border along that length) of the |mean signed difference| across the line: a seam
    is a step shared along a segment, so it survives the mean while white noise averages out. Use it on the method noise
    (input − restored), where the scene's own edges cancel, or on a restored cube. Each axis
    is compared on its own; the references are the lines :data:`SEAM_REFERENCE_OFFSETS` away
    from each border that are not borders themselves. ``shift`` moves the grid (a grid moved
    by half a tile step gives the image's own "no seam" level, the null to compare with).

    Returns:
        The ratio (≈ 1: no seam), or None when the image is a single tile (no border).
    """
    ratios = []
    for axis in (0, 1):
        length = data.shape[axis]
        borders = tile_borders(length, tile, overlap) + shift
        borders = borders[(borders >= 1) & (borders < length)]
        if length < 3 or borders.size == 0:
            continue
        profile = _segment_steps(data, axis, tile)
        on = np.zeros(length - 1, dtype=bool)
        on[borders - 1] = True
        ref = np.zeros_like(on)
        for offset in SEAM_REFERENCE_OFFSETS:
            idx = borders - 1 + offset
            ref[idx[(idx >= 0) & (idx < length - 1)]] = True
        ref &= ~on
        if not ref.any():
            ref = ~on
        off = float(profile[ref].mean()) if ref.any() else 0.0
        if off > 0:
            ratios.append(float(profile[on].mean()) / off)
    return max(ratios) if ratios else None


def quality_report(observed: Cube | np.ndarray, restored: Cube | np.ndarray, *, tile: int | None = None,
                   overlap: int = 0, grid: tuple[int, int] = REGION_GRID) -> dict[str, Any]:
    """The no-reference report of one restoration, as a JSON-able dict (for ``report.json``).

    Args:
        observed: the input capture, (H, W, B), on the loaded scale (a Cube or an array).
        restored: its restoration, same shape and scale.
        tile, overlap: the inference tile grid whose seams to measure (None: no seam check).
        grid: rows × columns of the large regions for the spectral drift.

    Returns:
        A dict with "units", "noise", "method_noise", "spectra", "seams" (see the module
        docstring).

    Raises:
        InputError: different shapes, non-(H, W, B) data or non-finite values.
    """
    from hiralign.noise import estimate_sigma, file_scale

    x = _array(observed, "observed")
    y = _array(restored, "restored")
    if x.shape != y.shape:
        raise InputError(f"the restored cube's shape {y.shape} differs from the observed {x.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("the quality report needs finite values in both cubes")
    scale, units = file_scale(observed)
    xs = x.astype(np.float64) * scale
    ys = y.astype(np.float64) * scale
    before, after = estimate_sigma(xs), estimate_sigma(ys)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(after > 0, before / after, np.inf)
    finite = ratio[np.isfinite(ratio)]
    report: dict[str, Any] = {
        "units": units,
        "shape": list(x.shape),
        "noise": {"sigma_before": _r(before), "sigma_after": _r(after), "ratio": _r(ratio, 3),
                  "median_ratio": round(float(np.median(finite)), 3) if finite.size else None,
                  "min_ratio": round(float(finite.min()), 3) if finite.size else None},
        "method_noise": method_noise_stats(xs - ys, ys),
        "spectra": spectral_drift(xs, ys, grid),
        "seams": None,
    }
    if tile is not None:
        if tile < 1 or not 0 <= overlap < tile:
            raise InputError(f"seam check: need tile ≥ 1 and 0 ≤ overlap < tile, got {tile}, {overlap}")
        ratios = {"method_noise_border_step_ratio": seam_ratio(xs - ys, tile, overlap),
                  "method_noise_null_step_ratio": seam_ratio(xs - ys, tile, overlap, shift=(tile - overlap) // 2),
                  "restored_border_step_ratio": seam_ratio(ys, tile, overlap),
                  "input_border_step_ratio": seam_ratio(xs, tile, overlap)}
        report["seams"] = {"tile": tile, "overlap": overlap,
                           **{k: None if v is None else round(v, 4) for k, v in ratios.items()}}
    return report


def summary_text(report: dict[str, Any]) -> str:
    """A few human lines of a :func:`quality_report` for the CLI."""
    noise, mn, spectra = report["noise"], report["method_noise"], report["spectra"]
    units = report["units"]
    lines = [
        f"noise σ (median over bands) {np.median(noise['sigma_before']):.4g} → {np.median(noise['sigma_after']):.4g}"
        f" {units}: {noise['median_ratio']}× lower (worst band {noise['min_ratio']}×)",
        f"method noise: |corr| with the image {mn['mean_abs_corr_with_restored']:.3f}, lag-1 autocorrelation "
        f"{mn['mean_lag1_autocorr']:.3f}, low-pass energy {100 * mn['mean_lowpass_energy_fraction']:.1f} % "
        f"(white noise {100 * mn['white_lowpass_energy_fraction']:.1f} %)",
        f"mean spectrum drift: max {spectra['max_abs_drift_percent']:.2f} % over the image, "
        f"{spectra['max_abs_region_drift_percent']:.2f} % over {len(spectra['regions'])} regions",
    ]
    seams = report.get("seams")
    if seams and seams["method_noise_border_step_ratio"] is not None:
        lines.append(f"seams: step across the {seams['tile']}/{seams['overlap']} tile borders / nearby lines "
                     f"{seams['method_noise_border_step_ratio']:.3f} in the method noise (1 = none; "
                     f"{seams['method_noise_null_step_ratio']:.3f} off the borders), "
                     f"{seams['restored_border_step_ratio']:.3f} in the restored cube "
                     f"(input {seams['input_border_step_ratio']:.3f})")
    return "\n".join(lines)


# ------------------------------------------------------------------ input vs model
def input_notes(cube: Cube, task: str, *, bands: int, wavelengths: Any = None, band_agnostic: bool = False,
                model: str = "the model") -> list[str]:
    """What a run of ``task`` with a given source model will do to ``cube`` that the user may not expect.

    Said before anything runs (the GUI shows these when a cube is loaded or the model
    changes), in the words of the rules the run applies: :func:`hiralign.config.on_bands`
    and :func:`hiralign.bands.match_bands` for the bands, :func:`hiralign.intensity.scale_for_task`'s
    policy for the intensity scale.

    Args:
        cube: the loaded target cube (its wavelengths, values and file metadata are used).
        task: the run's degradation task.
        bands: the model's band count (for a band-agnostic model: the bands it was trained on).
        wavelengths: the model's band centres in nm, or None.
        band_agnostic: whether the model takes any band layout as it is.
        model: the model's name in the notes (e.g. its folder name).

    Returns:
        Short sentences, each naming the cube; empty when nothing differs.
    """
    from hiralign.bands import INDEX_WISE_TOLERANCE_NM
    from hiralign.config import on_bands
    from hiralign.intensity import FULL_RANGE, PERCENTILE, robust_peak
    from hiralign.noise import file_scale

    notes: list[str] = []
    name = cube.name
    wl = np.asarray(cube.wavelengths_or_default(), dtype=np.float64)
    model_wl = None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)

    def span(values: np.ndarray) -> str:
        return f"{values.min():.0f}–{values.max():.0f} nm"

    ours = f"{cube.n_bands} bands at {span(wl)}"
    theirs = f"{bands} bands" + ("" if model_wl is None else f" at {span(model_wl)}")
    if band_agnostic:
        if not on_bands(cube, bands, None if model_wl is None else tuple(model_wl)):
            notes.append(f"{name}: {ours}, not the {theirs} of the source set; {model} is band-agnostic and "
                         "restores them as they are (no spectral resampling)")
    elif cube.n_bands == bands and model_wl is not None and cube.wavelengths is not None:
        shift = float(np.max(np.abs(wl - model_wl)))
        if 1.0 < shift <= INDEX_WISE_TOLERANCE_NM:
            notes.append(f"{name}: {ours} on {model}'s {theirs}: fed band by band (centres up to {shift:.0f} nm "
                         f"apart, within the {INDEX_WISE_TOLERANCE_NM:.0f} nm the run accepts), not resampled")
        elif shift > INDEX_WISE_TOLERANCE_NM:
            notes.append(f"{name}: {ours}, up to {shift:.0f} nm from {model}'s {theirs}: resampled onto the "
                         "model's bands and back (detail between its bands is interpolated)")
    elif cube.n_bands != bands:
        if model_wl is None or cube.wavelengths is None or wl.max() < model_wl.min() or wl.min() > model_wl.max():
            notes.append(f"{name}: {ours}, but {model} restores {theirs} and the two cannot be matched; "
                         "choose a band-agnostic model or one on these bands")
        else:
            notes.append(f"{name}: {ours}, but {model} restores {theirs}: resampled onto them and back "
                         "(a band-agnostic model would take the cube as it is)")
            if task == "sensor":
                notes.append(f"{name}: the sensor task needs a model on the capture's own bands; this run "
                             "will be refused")
    try:
        peak = float(robust_peak(cube, PERCENTILE)[0])
    except InputError as exc:
        notes.append(str(exc))
        return notes
    factor, units = file_scale(cube)
    stored = f" ({peak * factor:.0f} {units} in the file)" if units == "counts" else ""
    where = f"{100 * peak:.2g} % of full scale{stored}"
    if task == "sensor":
        notes.append(f"{name}: values reach {where}; the sensor run divides by the {PERCENTILE:g}th percentile "
                     "and estimates the noise on the file's own scale")
    elif not FULL_RANGE[0] <= peak <= FULL_RANGE[1]:
        notes.append(f"{name}: values reach {where}; the run normalises by the {PERCENTILE:g}th percentile so "
                     f"the network sees a peak near 1 ({task}'s noise levels then apply to the normalised data)")
    return notes
