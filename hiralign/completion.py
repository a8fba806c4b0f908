"""Training-free completion of masked observations: the proxy source ``interpolate`` (beyond the paper).

``bandmiss`` and ``inpaint`` observe part of the scene exactly and zero the rest (whole bands,
single values). The compact source networks learn that completion poorly (docs/benchmarks.md,
"Session 12": the 800-step inpaint network is 12 dB behind plain interpolation on KAIST's
missing values), so this module fills the zeros from what was observed, with no network:

1. **spatial**: each band's missing values are linearly interpolated over the image from its
   observed ones (a Delaunay triangulation of the observed pixels, ``scipy.interpolate``; the
   nearest observed value outside their convex hull);
2. **spectral subspace** (where values, not whole bands, are missing): a natural scene's
   spectra lie close to a few-dimensional subspace, and ``inpaint`` observes a different 10 %
   of the pixels in every band, so the bands that *were* observed at a pixel say what the
   others are. Hard-impute alternation (Mazumder, Hastie & Tibshirani 2010, with a fixed
   rank): project every spectrum onto the rank-``rank`` principal subspace of the current
   estimate, put the observed values back, repeat. Measured on the seed-0 ``inpaint``
   scenes, PSNR over the missing values: KAIST 38.50 → 41.06 dB, CAVE 28.81 → 33.37 dB
   (rank 4, 20 rounds, 0.37 s per 256²×31 cube; ``benchmarks/completion_sweep.py``: every other
   pair of rank 3 / 4 / 5 / 8 and 10 / 20 / 40 rounds loses 0.2–1.9 dB on one set and gains at
   most 0.08 on the other);
3. **over wavelength**: a band with nothing observed (``bandmiss``) is each pixel's spectrum
   linearly interpolated between the nearest observed bands on either side (the nearest
   observed band beyond the ends).

Which values are missing is read from the observation as :func:`hiralign.consistency.observed_mask`
reads it: for ``bandmiss`` only bands that are all zero (a dark scene value of exactly 0 in an
observed band is kept: CAVE's black backgrounds hold many); for ``inpaint`` (and without a task)
every value that is exactly 0, a band that is all zero being filled over wavelength. A cube
without zeros comes back unchanged. Observed values are never altered. The zeros must be the
observation's own: on bands resampled from it they are not (callers complete the capture on its
own bands, then resample).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.progress import Progress, as_progress


@dataclasses.dataclass(frozen=True)
class CompletionConfig:
    """How :func:`complete_cube` fills a masked observation.

    Attributes:
        rank: dimension of the spectral subspace the missing values are projected onto
            (step 2; capped at one less than the bands observed). 4 measured best of 3 / 4 /
            5 / 8 over KAIST and CAVE together (see the module docstring).
        iterations: hard-impute rounds of step 2 (20 best of 10 / 20 / 40 with rank 4); 0
            skips it (spatial interpolation only).
    """

    rank: int = 4
    iterations: int = 20

    def __post_init__(self) -> None:
        if int(self.rank) < 1:
            raise ConfigError(f"completion rank must be at least 1, got {self.rank}")
        if int(self.iterations) < 0:
            raise ConfigError(f"completion iterations must be 0 or more, got {self.iterations}")


def missing_entries(data: np.ndarray, task: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which entries of an (H, W, B) observation are missing: the complement of
    :func:`hiralign.consistency.observed_mask`, so the completion fills exactly what the
    consistency projection leaves to the restoration.

    Args:
        task: ``bandmiss``: whole zero bands only; anything else (or None): every zero value.

    Returns:
        (missing_bands (B,) bool: bands that are all zero, missing (H, W, B) bool).
    """
    from hiralign.consistency import observed_mask

    missing = ~np.broadcast_to(observed_mask(data, task or "inpaint"), data.shape)
    return np.all(missing, axis=(0, 1)), missing


def fill_spatially(data: np.ndarray, known: np.ndarray, progress: Progress | None = None) -> np.ndarray:
    """Each band's unknown values linearly interpolated over the image from its known ones.

    Args:
        data: (H, W, B) float32 values (those not ``known`` are ignored).
        known: (H, W, B) bool; a band with no known value is left as it is.
        progress: one step per band; cancellable between bands.

    Returns:
        (H, W, B) float32 copy with the unknown values filled (nearest known value outside
        the known pixels' convex hull, or where they are too few or collinear to triangulate).
    """
    from scipy.interpolate import LinearNDInterpolator
    from scipy.spatial import Delaunay, QhullError, cKDTree

    progress = as_progress(progress)
    out = np.array(data, dtype=np.float32)
    rows, cols = np.indices(data.shape[:2])
    bands = data.shape[2]
    for band in range(bands):
        progress.check()
        have = known[..., band]
        if have.all() or not have.any():
            progress.report(band + 1, bands, f"band {band + 1}/{bands}")
            continue
        points = np.column_stack([rows[have], cols[have]]).astype(np.float64)
        queries = np.column_stack([rows[~have], cols[~have]]).astype(np.float64)
        values = out[..., band][have]
        filled = np.full(len(queries), np.nan)
        if len(points) >= 3:
            try:
                filled = LinearNDInterpolator(Delaunay(points), values)(queries)
            except QhullError:  # all known pixels on one line: nothing to triangulate
                pass
        outside = np.isnan(filled)
        if outside.any():
            filled[outside] = values[cKDTree(points).query(queries[outside])[1]]
        out[..., band][~have] = filled
        progress.report(band + 1, bands, f"band {band + 1}/{bands}")
    return out


def refine_low_rank(estimate: np.ndarray, observed: np.ndarray, known: np.ndarray, rank: int,
                    iterations: int) -> np.ndarray:
    """Hard-impute the unknown entries of (N, B) spectra onto their rank-``rank`` principal subspace.

    Args:
        estimate: (N, B) first estimate of every entry (e.g. :func:`fill_spatially`'s).
        observed: (N, B) observed values (read where ``known``).
        known: (N, B) bool.
        rank: subspace dimension (capped at B − 1).
        iterations: alternation rounds.

    Returns:
        (N, B) float32: ``observed`` where known, the subspace estimate elsewhere.
    """
    rank = min(int(rank), estimate.shape[1] - 1)
    x = np.array(estimate, dtype=np.float32)
    if rank < 1 or iterations == 0 or known.all():
        return x
    y = np.asarray(observed, dtype=np.float32)
    for _ in range(iterations):
        mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        centred = x - mean
        gram = (centred.T @ centred).astype(np.float64)  # (B, B): eigh is exact and cheap at this size
        basis = np.linalg.eigh(gram)[1][:, -rank:].astype(np.float32)
        x = np.where(known, y, mean + (centred @ basis) @ basis.T)
    return x


def fill_bands(data: np.ndarray, wavelengths: np.ndarray, missing_bands: np.ndarray) -> np.ndarray:
    """Each pixel's spectrum linearly interpolated over wavelength into the ``missing_bands``.

    Args:
        data: (H, W, B) values, complete on the bands not missing.
        wavelengths: (B,) band centres (nm; any increasing or decreasing order).
        missing_bands: (B,) bool, at least one False.

    Returns:
        (H, W, B) float32 copy; beyond the observed bands the nearest observed band is repeated
        (:func:`hiralign.bands.resample_bands` of the observed bands onto the missing ones).
    """
    from hiralign.bands import resample_bands

    out = np.array(data, dtype=np.float32)
    wavelengths = np.asarray(wavelengths, dtype=np.float64)
    seen = np.flatnonzero(~missing_bands)
    seen = seen[np.argsort(wavelengths[seen])]  # a Cube's bands increase
    gone = np.flatnonzero(missing_bands)
    observed = Cube(np.ascontiguousarray(out[..., seen]), wavelengths=wavelengths[seen])
    out[..., gone] = resample_bands(observed, wavelengths[gone]).data
    return out


def complete_cube(cube: Cube, config: CompletionConfig = CompletionConfig(), *, task: str | None = None,
                  progress: Progress | None = None, name: str | None = None) -> Cube:
    """The missing (zero) values of a masked observation filled from its observed ones.

    Args:
        cube: (H, W, B) ``bandmiss`` / ``inpaint``-style observation (0 = not observed).
        config: the subspace step's settings.
        task: the observation's task (:func:`missing_entries`); None reads every zero as missing.
        progress: the spatial step reports per band; cancellable.
        name: the result's name (default the cube's).

    Returns:
        (H, W, B) float32 cube with ``cube``'s band metadata; its observed (non-zero) values
        exactly as given. Cost on 2 cores: about 4.5 s spatial + 0.4 s subspace per 256²×31
        ``inpaint`` cube, about 0.5 s for ``bandmiss``.

    Raises:
        InputError: nothing at all is observed (every value is 0).
    """
    progress = as_progress(progress)
    data = np.asarray(cube.data, dtype=np.float32)
    missing_bands, missing = missing_entries(data, task)
    if missing_bands.all():
        raise InputError(f"{cube.name}: every value is 0, so nothing was observed to complete from")
    observed = ~missing_bands
    part = np.ascontiguousarray(data[..., observed])
    known = ~missing[..., observed]
    if not known.all():
        part = fill_spatially(part, known, progress)
        flat = part.reshape(-1, part.shape[2])
        part = refine_low_rank(flat, data[..., observed].reshape(flat.shape), known.reshape(flat.shape),
                               config.rank, config.iterations).reshape(part.shape)
    out = data.copy()
    out[..., observed] = part
    if missing_bands.any():
        wavelengths = np.asarray(cube.wavelengths_or_default(), dtype=np.float64)
        out = fill_bands(out, wavelengths, missing_bands)
    progress.report(1, 1, "completed")
    return cube.with_data(out, name=name or cube.name)


__all__ = ["CompletionConfig", "complete_cube", "fill_bands", "fill_spatially", "missing_entries", "refine_low_rank"]
