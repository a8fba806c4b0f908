"""What a noise model cannot explain: stuck values, dead lines and column stripes.

Impulse noise, dead pixels or lines and saturation replace a measurement by a value that
carries no information about the scene; column stripes (a pushbroom sensor's detector
elements, the ``complex`` task) add an offset per column. A denoiser that treats them as
noise spreads them over their neighbours. :mod:`hiralign.classical` instead marks the
unreliable samples (:func:`unreliable_mask`), fits each pixel's spectrum in the cube's
subspace from its reliable bands only (:func:`masked_coefficients`), and estimates the
column offsets from what that fit leaves (:func:`column_offsets`).

Stripes weaker than the noise (the ``complex`` task: offsets of U(−0.25, 0.25) on 5–15 % of
the columns under σ of 10–70/255) stay out of the subspace and are found. Strong stripes on
low noise take a subspace component of their own and survive: leaving concentrated
components out of the stripe fit, or predicting each band from the others, fixed a toy
case but cost 1.1 and 0.4 dB on the KAIST ``complex`` crops, so neither is done.

The mask is built from what such samples look like, without knowing the degradation:

- **stuck values**: in a floating-point band, one exact value held by more than 1 % of the
  pixels (continuous data does not repeat exactly; impulses, dead pixels and clipping do);
  in a quantised band (integer counts) only its highest value qualifies (saturation):
  other counts repeat by nature, and a count of 0 is what a dark pixel of a photon-counting
  sensor legitimately reads (masking the zeros of the simulated 4× darker IMEC captures,
  2 % of their samples, cost 1.8 dB);
- **dead lines**: a column or row of a band whose values are all equal.

Impulses of random values (neither stuck nor at the extremes) are not detected.
"""
from __future__ import annotations

import numpy as np

#: A value held by more than this fraction of a band's pixels is stuck.
STUCK_FRACTION: float = 0.01
#: A band with fewer distinct values than pixels × this is quantised (integer counts).
QUANTISED_FRACTION: float = 0.25
#: A column offset is subtracted only when it exceeds this many standard errors of its median.
STRIPE_SIGNIFICANCE: float = 4.0
#: Standard error of a median of n unit-variance Gaussian samples is ≈ this / √n (√(π/2)).
MEDIAN_EFFICIENCY: float = 1.2533
#: Pixels solved at once by :func:`masked_coefficients` (bounds its k×k systems' memory).
PIXEL_BLOCK: int = 65536


def unreliable_mask(data: np.ndarray, *, stuck_fraction: float = STUCK_FRACTION) -> np.ndarray:
    """Samples that carry no information about the scene (module docstring).

    Args:
        data: (H, W, B) cube.
        stuck_fraction: the share of a band's pixels one exact value must exceed to be stuck.

    Returns:
        (H, W, B) bool, True where a sample is unreliable. Cost: one sort per band.
    """
    x = np.asarray(data)
    bad = np.zeros(x.shape, dtype=bool)
    for b in range(x.shape[2]):
        band = x[..., b]
        values, counts = np.unique(band, return_counts=True)
        stuck = values[counts > stuck_fraction * band.size]
        if values.size < QUANTISED_FRACTION * band.size:
            stuck = stuck[stuck == values[-1]]
        for value in stuck:
            bad[..., b] |= band == value
        bad[:, np.ptp(band, axis=0) == 0, b] = True
        bad[np.ptp(band, axis=1) == 0, :, b] = True
    return bad


def masked_coefficients(white: np.ndarray, reliable: np.ndarray, mean: np.ndarray, basis: np.ndarray,
                        ridge: float = 1e-3) -> np.ndarray:
    """Subspace coefficients of every pixel, fitted to its reliable bands only.

    Each pixel's coefficients c minimise Σ_b m_b (z_b − μ_b − (E c)_b)² over its reliable
    bands b (a ``ridge``·|c|² term keeps a pixel with too few reliable bands solvable);
    a pixel whose bands are all reliable gets the plain projection Eᵀ(z − μ).

    Args:
        white: (H, W, B) cube with unit noise.
        reliable: (H, W, B) bool, True where a sample is used.
        mean: (B,) mean spectrum; basis: (B, k) orthonormal columns E.
        ridge: regularisation of the k×k normal equations (in unit-noise units).

    Returns:
        (H, W, k) float64 coefficients (the eigen-images).
    """
    h, w, bands = white.shape
    k = basis.shape[1]
    z = (white.reshape(-1, bands) - mean)
    m = reliable.reshape(-1, bands)
    coef = z @ basis
    partial = np.flatnonzero(~m.all(axis=1))
    for start in range(0, partial.size, PIXEL_BLOCK):
        rows = partial[start:start + PIXEL_BLOCK]
        weights = m[rows].astype(np.float64)
        normal = np.einsum("nb,bi,bj->nij", weights, basis, basis) + ridge * np.eye(k)
        rhs = (weights * z[rows]) @ basis
        coef[rows] = np.linalg.solve(normal, rhs[..., None])[..., 0]
    return coef.reshape(h, w, k)


def column_offsets(residual: np.ndarray, reliable: np.ndarray,
                   significance: float = STRIPE_SIGNIFICANCE) -> np.ndarray:
    """Per-band column offsets in a unit-noise residual: stripes.

    The offset of column j in band b is the median of the reliable residuals of that column
    (robust to edges the subspace fit misses in a few rows); offsets within
    ``significance`` standard errors of 0 are noise and set to 0.

    Args:
        residual: (H, W, B) data minus its subspace fit, in unit-noise units.
        reliable: (H, W, B) bool.

    Returns:
        (W, B) float64 offsets to subtract from every row.
    """
    import warnings

    masked = np.where(reliable, residual, np.nan)
    count = reliable.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-unreliable column: NaN, no offset
        median = np.nanmedian(masked, axis=0)
    error = MEDIAN_EFFICIENCY / np.sqrt(np.maximum(count, 1))
    offsets = np.where((count > 0) & (np.abs(median) > significance * error), median, 0.0)
    return np.nan_to_num(offsets)


__all__ = ["column_offsets", "masked_coefficients", "unreliable_mask"]
