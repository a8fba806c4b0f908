"""Quality and structure numbers of a realised warp (paper Sec. III-B, Supp. S1–S2)."""
from __future__ import annotations

import numpy as np

#: PSNR reported for a perfect match (keeps the diagnostics valid JSON).
PSNR_CAP_DB = 100.0


def psnr(estimate: np.ndarray, reference: np.ndarray, border: int = 0) -> float:
    """PSNR in dB with peak 1 over all pixels and channels, capped at :data:`PSNR_CAP_DB`."""
    if border:
        estimate = estimate[border:-border, border:-border]
        reference = reference[border:-border, border:-border]
    mse = float(np.mean((np.asarray(estimate, np.float64) - np.asarray(reference, np.float64)) ** 2))
    if mse <= 10.0 ** (-PSNR_CAP_DB / 10.0):
        return PSNR_CAP_DB
    return float(10.0 * np.log10(1.0 / mse))


def row_stochastic_error(operator) -> float:
    """max_u |Σ_v T_uv − 1|."""
    sums = np.asarray(operator.sum(axis=1), dtype=np.float64).ravel()
    return float(np.max(np.abs(sums - 1.0))) if sums.size else 0.0


def nnz_per_row(operator) -> np.ndarray:
    return np.diff(operator.indptr)


def overlap_constant(operator, iterations: int = 100, tol: float = 1e-3) -> tuple[float, int]:
    """κ = λ_max(TᵀT) (Assumption S2.1) by power iteration.

    Starts from the all-ones vector, for which TᵀT·1 is the column sums of T — the
    direction along which output pixels pile onto the same proxy pixels.

    Returns:
        (κ, iterations used).
    """
    n = operator.shape[1]
    transpose = operator.T.tocsr()
    # Vectors in the operator's dtype: a float64 vector makes SciPy upcast all of T per product.
    x = np.full(n, 1.0 / np.sqrt(n), dtype=operator.dtype)
    value = 0.0
    for it in range(1, iterations + 1):
        y = transpose @ (operator @ x)
        new_value = float(np.dot(x.astype(np.float64), y.astype(np.float64)))
        norm = float(np.linalg.norm(y.astype(np.float64)))
        if norm == 0.0:
            return 0.0, it
        x = (y / norm).astype(operator.dtype)
        if it > 1 and abs(new_value - value) <= tol * max(abs(new_value), 1e-12):
            return new_value, it
        value = new_value
    return value, iterations


def multi_region_fraction(weights: np.ndarray, candidates: np.ndarray, width: int,
                          min_weight: float, distance: int) -> float:
    """Fraction of guide pixels whose spectrum comes from more than one proxy region.

    A candidate counts as a source when its aggregation weight is at least
    ``min_weight``; a pixel draws from several regions when two of its sources are more
    than ``distance`` pixels apart (Chebyshev), i.e. farther than one stencil can blend.

    Args:
        weights: (N, K) a*.
        candidates: (N, K) flat proxy indices.
    """
    rows = candidates // width
    cols = candidates % width
    significant = weights >= min_weight
    big = np.iinfo(np.int64).max
    def spread(coord: np.ndarray) -> np.ndarray:
        hi = np.where(significant, coord, -1).max(axis=1)
        lo = np.where(significant, coord, big).min(axis=1)
        return np.where(significant.any(axis=1), hi - lo, 0)
    extent = np.maximum(spread(rows.astype(np.int64)), spread(cols.astype(np.int64)))
    return float(np.mean(extent > distance)) if extent.size else 0.0
