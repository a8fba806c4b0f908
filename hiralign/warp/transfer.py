"""Shared spectral transfer (Eqs. 22–24) and the sparse operator T = B·A (Eqs. 25–26)."""
from __future__ import annotations

import numpy as np
import torch

from hiralign.warp.model import aggregate_fixed, boundary_index, interpolate_fixed, stencil_offsets


@torch.no_grad()
def transfer(proxy: np.ndarray, weights: torch.Tensor, candidates: torch.Tensor, kernel: torch.Tensor,
             boundary: str, band_chunk: int = 8) -> np.ndarray:
    """ỹ = interp_{b*}(Σ_k a*_k p(v_k)): one set of weights for every band.

    Args:
        proxy: (H, W, B) proxy HSI p.
        weights: (K, H, W) a*.
        candidates: (K, H, W) int64 flat proxy indices.
        kernel: (s², H, W) b*.
        boundary: π.
        band_chunk: bands processed together (bounds the temporary memory).

    Returns:
        (H, W, B) float32 synthesized HSI ỹ.
    """
    height, width, bands = proxy.shape
    device = weights.device
    out = np.empty((height, width, bands), dtype=np.float32)
    for start in range(0, bands, band_chunk):
        stop = min(bands, start + band_chunk)
        source = torch.from_numpy(np.ascontiguousarray(
            proxy[:, :, start:stop].reshape(-1, stop - start).T, dtype=np.float32)).to(device)
        ybar = aggregate_fixed(weights, candidates, source, chunk=band_chunk)
        y = interpolate_fixed(kernel, ybar, boundary, chunk=band_chunk)
        out[:, :, start:stop] = y.permute(1, 2, 0).cpu().numpy()
    return out


def stencil_columns(height: int, width: int, stencil: int, boundary: str) -> np.ndarray:
    """(H·W, s²) int64 flat index of π(u + η) for every pixel u and offset η."""
    ys = torch.arange(height)[:, None, None]
    xs = torch.arange(width)[None, :, None]
    offsets = torch.tensor(stencil_offsets(stencil))
    py = boundary_index(ys + offsets[:, 0], height, boundary)
    px = boundary_index(xs + offsets[:, 1], width, boundary)
    return (py * width + px).reshape(height * width, -1).numpy()


def build_operator(weights: np.ndarray, candidates: np.ndarray, kernel: np.ndarray,
                   height: int, width: int, stencil: int, boundary: str):
    """T = B·A as a canonical scipy.sparse CSR matrix (H·W, H·W), float32 values.

    Args:
        weights: (H·W, K) a*.
        candidates: (H·W, K) flat proxy indices.
        kernel: (H·W, s²) b*.

    Rows index guide pixels and columns proxy pixels, both flattened row-major
    (index = row·W + col). Repeated candidates and boundary-folded stencil taps are summed.
    """
    import scipy.sparse as sp

    n, k = weights.shape
    taps = kernel.shape[1]
    # float32 values and int32 indices halve the memory of the (up to K·s² per row) product;
    # a row sums at most K·s² terms, so its float32 rounding stays far below 1e-5.
    a_mat = sp.csr_matrix((weights.ravel().astype(np.float32), candidates.ravel().astype(np.int32),
                           np.arange(0, n * k + 1, k, dtype=np.int32)), shape=(n, n))
    b_mat = sp.csr_matrix((kernel.ravel().astype(np.float32),
                           stencil_columns(height, width, stencil, boundary).ravel().astype(np.int32),
                           np.arange(0, n * taps + 1, taps, dtype=np.int32)), shape=(n, n))
    a_mat.sum_duplicates()
    b_mat.sum_duplicates()
    operator = (b_mat @ a_mat).tocsr()
    operator.sum_duplicates()
    operator.eliminate_zeros()
    operator.sort_indices()
    return operator


def sources_of(row: int, col: int, weights: np.ndarray, candidates: np.ndarray, kernel: np.ndarray,
               height: int, width: int, stencil: int, boundary: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The proxy pixels feeding guide pixel (row, col), i.e. row u of T, from the factors.

    Returns:
        (rows, cols, weights): int arrays of proxy coordinates and their float64 weights,
        heaviest first; the weights sum to 1.
    """
    u = row * width + col
    taps = stencil_columns_for(row, col, height, width, stencil, boundary)
    cols = candidates[taps].ravel().astype(np.int64)
    vals = (kernel[u][:, None] * weights[taps]).ravel().astype(np.float64)
    unique, inverse = np.unique(cols, return_inverse=True)
    summed = np.bincount(inverse, weights=vals)
    keep = summed > 0
    unique, summed = unique[keep], summed[keep]
    order = np.argsort(-summed, kind="stable")
    unique, summed = unique[order], summed[order]
    return unique // width, unique % width, summed


def stencil_columns_for(row: int, col: int, height: int, width: int, stencil: int,
                        boundary: str) -> np.ndarray:
    """(s²,) flat indices π(u + η) of one pixel u = (row, col)."""
    offsets = torch.tensor(stencil_offsets(stencil))
    py = boundary_index(row + offsets[:, 0], height, boundary)
    px = boundary_index(col + offsets[:, 1], width, boundary)
    return (py * width + px).numpy()
