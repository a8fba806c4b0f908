"""PSNR, SSIM and SAM with the conventions of PROTOCOL.md, batched in torch.

All functions take an estimate and a reference of the same shape, (N, B, H, W) or
(B, H, W) torch tensors (numpy arrays are accepted too) on any device, and return
per-image values as (N,) float64 tensors on the estimate's device ((1,) for a single
cube). Computation runs in float64 so the numbers match the numpy/scikit-image
references to ~1e-10.

- **PSNR**: per band with peak 1, ``10·log10(1 / MSE_b)``, averaged over bands. A band
  that matches exactly would be +inf; its MSE is floored at ``10^(−PSNR_CAP_DB/10)`` so
  it scores :data:`PSNR_CAP_DB` (100 dB) and averages stay finite and JSON-safe.
- **SSIM**: per band with data range 1, averaged over bands; Wang et al. (2004) with an
  11×11 Gaussian window of σ = 1.5, K1 = 0.01, K2 = 0.03, population (biased)
  covariances, and the mean taken over the "valid" region (5 px border excluded): this is
  exactly scikit-image's ``structural_similarity(..., gaussian_weights=True,
  use_sample_covariance=False, data_range=1)`` and Wang's MATLAB ``ssim_index``.
- **SAM**: the angle between estimated and reference spectra at each pixel, in degrees,
  averaged over pixels; pixels where either spectrum is all zero have no angle and are
  skipped (NaN in :func:`sam_map`; an image with no valid pixel scores NaN).
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from hiralign.errors import InputError

if TYPE_CHECKING:
    import torch

#: PSNR of a band that matches its reference exactly (dB).
PSNR_CAP_DB: float = 100.0
#: SSIM constants (Wang et al. 2004) and window.
SSIM_K1: float = 0.01
SSIM_K2: float = 0.03
SSIM_SIGMA: float = 1.5
SSIM_WINDOW: int = 11
#: Elements per SSIM chunk (bounds memory: 5 float64 maps of this many voxels ≈ 640 MB).
_SSIM_CHUNK_VOXELS: int = 1 << 24


def _as_pair(est: Any, ref: Any, *, min_size: int = 1) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate and convert to float64 (N, B, H, W) tensors on the estimate's device."""
    import torch

    e = torch.as_tensor(est)
    r = torch.as_tensor(ref)
    if tuple(e.shape) != tuple(r.shape):
        raise InputError(f"estimate and reference shapes differ: {tuple(e.shape)} vs {tuple(r.shape)}")
    if e.ndim not in (3, 4):
        raise InputError(f"metrics expect (N, B, H, W) or (B, H, W) arrays, got shape {tuple(e.shape)}")
    if min(e.shape[-2:]) < min_size:
        raise InputError(f"images of {e.shape[-2]}×{e.shape[-1]} pixels are too small "
                         f"(at least {min_size}×{min_size} needed)")
    if e.numel() == 0:
        raise InputError(f"empty arrays of shape {tuple(e.shape)}")
    dtype = torch.float32 if e.device.type == "mps" else torch.float64
    e = e.to(dtype=dtype)
    r = r.to(device=e.device, dtype=dtype)
    single = e.ndim == 3
    if single:
        e, r = e.unsqueeze(0), r.unsqueeze(0)
    return e, r, single


def psnr_per_band(est: Any, ref: Any) -> torch.Tensor:
    """(N, B) PSNR in dB of each band (peak 1), capped at :data:`PSNR_CAP_DB`."""
    import torch

    e, r, _ = _as_pair(est, ref)
    mse = (e - r).square().mean(dim=(-2, -1))
    return -10.0 * torch.log10(mse.clamp_min(10.0 ** (-PSNR_CAP_DB / 10.0)))


def psnr(est: Any, ref: Any) -> torch.Tensor:
    """(N,) PSNR in dB: per band with peak 1, averaged over bands."""
    return psnr_per_band(est, ref).mean(dim=1)


@functools.lru_cache(maxsize=32)
def _valid_window_matrix(length: int) -> np.ndarray:
    """(length − 10, length) matrix of the 1-D 11-tap Gaussian window, 'valid' region only."""
    t = np.arange(SSIM_WINDOW, dtype=np.float64) - SSIM_WINDOW // 2
    w = np.exp(-0.5 * (t / SSIM_SIGMA) ** 2)
    w /= w.sum()
    out = length - SSIM_WINDOW + 1
    matrix = np.zeros((out, length))
    rows = np.repeat(np.arange(out), SSIM_WINDOW)
    matrix[rows, rows + np.tile(np.arange(SSIM_WINDOW), out)] = np.tile(w, out)
    return matrix


def ssim_per_band(est: Any, ref: Any) -> torch.Tensor:
    """(N, B) SSIM of each band (data range 1), Gaussian window, valid region."""
    import torch

    e, r, _ = _as_pair(est, ref, min_size=SSIM_WINDOW)
    n, bands, height, width = e.shape
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    # Dense banded matrices: ≈5× faster than a depthwise float64 conv2d on CPU.
    rows = torch.as_tensor(_valid_window_matrix(height), device=e.device, dtype=e.dtype)
    cols = torch.as_tensor(_valid_window_matrix(width), device=e.device, dtype=e.dtype)
    e_flat, r_flat = e.reshape(n * bands, height, width), r.reshape(n * bands, height, width)
    step = max(1, _SSIM_CHUNK_VOXELS // (5 * height * width))
    scores = []
    for start in range(0, n * bands, step):
        a, b = e_flat[start:start + step], r_flat[start:start + step]
        blurred = rows @ torch.stack([a, b, a * a, b * b, a * b], dim=1) @ cols.T
        mu_a, mu_b, aa, bb, ab = blurred.unbind(dim=1)
        var_a, var_b, cov = aa - mu_a * mu_a, bb - mu_b * mu_b, ab - mu_a * mu_b
        ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / \
            ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
        scores.append(ssim_map.mean(dim=(-2, -1)))
    return torch.cat(scores).view(n, bands)


def ssim(est: Any, ref: Any) -> torch.Tensor:
    """(N,) SSIM: per band with data range 1, averaged over bands."""
    return ssim_per_band(est, ref).mean(dim=1)


def sam_map(est: Any, ref: Any) -> torch.Tensor:
    """(N, H, W) spectral angle in degrees; NaN where either spectrum is all zero."""
    import torch

    e, r, _ = _as_pair(est, ref)
    dot = (e * r).sum(dim=1)
    norms = e.norm(dim=1) * r.norm(dim=1)
    valid = norms > 0
    cosine = (dot / torch.where(valid, norms, torch.ones_like(norms))).clamp(-1.0, 1.0)
    angle = torch.rad2deg(torch.arccos(cosine))
    return torch.where(valid, angle, torch.full_like(angle, float("nan")))


def sam(est: Any, ref: Any) -> torch.Tensor:
    """(N,) mean spectral angle in degrees over the pixels with non-zero spectra."""
    return sam_map(est, ref).nanmean(dim=(-2, -1))


def all_metrics(est: Any, ref: Any) -> dict[str, float]:
    """PSNR (dB), SSIM and SAM (°), each averaged over the images of the batch.

    Args:
        est: (N, B, H, W) or (B, H, W) estimate.
        ref: reference of the same shape.

    Returns:
        ``{"psnr": float, "ssim": float, "sam": float}`` (SAM may be NaN if no pixel of any
        image has non-zero spectra).
    """
    return {"psnr": float(psnr(est, ref).mean()),
            "ssim": float(ssim(est, ref).mean()),
            "sam": float(sam(est, ref).nanmean())}
