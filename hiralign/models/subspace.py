"""Band-agnostic candidate B: restore the input's own spectral subspace with a 2-D CNN.

Natural spectra are low-rank: a few eigen-images carry a cube's structure whatever its band
count (the premise of FastHyDe / NGMeet / SDeCNN). Per input sample, the network

1. takes the band means μ and the top-k eigenvectors E (B × k) of the band covariance of
   the input itself (k fixed, e.g. 8; zero columns when B < k), each with the sign that
   makes its eigen-image's skewness positive (an eigenvector's sign is arbitrary);
2. projects: Z = Eᵀ(x − μ) / √B, k eigen-images whose signal scale does not depend on B
   (white noise of σ per band becomes σ/√B per eigen-image);
3. restores Z with a 2-D CNN (pixel-unshuffled as in the compact restorer, zero-initialised
   last layer) and reprojects: x̂ = μ + √B · E · (S(Z) + CNN(Z)), where S is a fixed,
   training-free start (``start``): the eigen-images themselves (``"projection"``: the rank-k
   projection of the input, which removes the noise outside the subspace), a Gaussian blur of
   them (``"blur"``), or per eigen-image the blend α·blur(Z) + (1 − α)·Z with α = noise
   variance / variance, the noise estimated by the median absolute Haar diagonal detail
   (``"adaptive"``, a Wiener-like rule that leaves high-SNR eigen-images sharp);
4. adds a small shared-weight band-window correction (:class:`SpectralWindowRestorer`'s
   branch, zero-initialised) for detail outside the k eigen-images.

For super-resolution the start is the bicubic up-sampling of the input and the CNN's pixel
shuffle produces the eigen-images' high-resolution residual.

Why a smoothed start: from the bare projection the CNN must learn to predict pure noise
from an identity start, and in 200 pretraining steps it learned nothing (validation stayed
at the projection's PSNR; the L1 gradients of a sign-symmetric residual cancel, as for the
sr4 model in docs/models.md). Started from a smoothed estimate, the residual is the
signal detail the smoothing removed, which the CNN can learn (measured in docs/models.md).

The eigen-decomposition is a data-dependent change of basis, not a learned layer: it runs in
float64 without gradients (eigenvector gradients are unstable for close eigenvalues). A
subspace estimated per tile differs from tile to tile; ``benchmarks/band_agnostic.py``
measures the seams this leaves.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from hiralign.errors import ConfigError
from hiralign.models.spectral_window import SpectralWindowRestorer

#: Training-free starts of the eigen-image estimate (see the module docstring).
STARTS = ("projection", "blur", "adaptive")


def haar_noise_sigma(x: torch.Tensor) -> torch.Tensor:
    """(N, C) robust noise σ of each channel: median |finest Haar diagonal detail| / 0.6745.

    Args:
        x: (N, C, H, W) with H, W ≥ 2 (odd sizes drop the last row/column).
    """
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    detail = (x[..., 0::2, 0::2] - x[..., 1::2, 0::2] - x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) / 2
    return detail.abs().flatten(2).median(dim=2).values / 0.6745


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every channel of (N, C, H, W), reflected at the borders."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    out = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=mode), kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1),
                   groups=channels)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode=mode), kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1),
                    groups=channels)


def spectral_subspace(x: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Band means and the top-``rank`` eigenvectors of each sample's band covariance.

    Args:
        x: (N, B, H, W).
        rank: k ≥ 1.

    Returns:
        mean (N, B, 1, 1) and basis (N, B, k) in ``x``'s dtype; columns beyond B are zero.
    """
    n, bands = x.shape[:2]
    with torch.no_grad():
        flat = x.detach().reshape(n, bands, -1).double()
        mean = flat.mean(dim=2, keepdim=True)
        centred = flat - mean
        cov = centred @ centred.transpose(1, 2) / max(1, centred.shape[2] - 1)
        _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
        keep = min(rank, bands)
        basis = vectors[:, :, bands - keep:].flip(-1)  # (N, B, keep), largest first
        skew = ((basis.transpose(1, 2) @ centred) ** 3).sum(dim=2)  # (N, keep)
        basis = basis * torch.where(skew < 0, -1.0, 1.0).to(basis)[:, None, :]
        if keep < rank:
            basis = F.pad(basis, (0, rank - keep))
    return mean.reshape(n, bands, 1, 1).to(x.dtype), basis.to(x.dtype)


class SubspaceRestorer(nn.Module):
    """Eigen-image CNN in the input's own spectral subspace + band-window correction.

    Args:
        bands: nominal band count (recorded in checkpoints; any count is accepted).
        scale: spatial up-sampling factor (1 for denoising-type tasks, 4 for ``sr4``).
        rank: k, eigen-images restored by the CNN.
        features: channels of the eigen-image CNN.
        depth: its 3×3 conv layers (≥ 2).
        unshuffle: its resolution reduction (None: 2 for scale 1, else 1).
        correction: also learn a band-window correction (features, depth below; 0 = none).
        correction_radius: ±K neighbour bands of that correction.
        correction_depth: its conv layers.
        start: training-free start of the eigen-image estimate (:data:`STARTS`; denoising only).
        smooth: σ in pixels of the start's Gaussian blur.
        normalise: feed the CNN the eigen-images divided by their standard deviation s (one
            number per sample) and scale its output by s — scale-equivariant, so inputs of
            any intensity look alike to it; measured to learn ≈10× faster than the fixed 1/√B
            scaling (False).
        leaky: LeakyReLU(0.1) instead of ReLU in the CNN. With ReLU, every unit of the last
            hidden layer was dead (≤ 0 on every input) after 200 pretraining steps, which cut
            the zero-initialised tail off from all gradient: the CNN never learned.

    Shapes:
        input (N, B, h, w) → output (N, B, h·scale, w·scale), any B ≥ 1.
    """

    band_agnostic = True

    def __init__(self, bands: int = 31, scale: int = 1, rank: int = 8, features: int = 64, depth: int = 8,
                 unshuffle: int | None = None, correction: int = 16, correction_radius: int = 2,
                 correction_depth: int = 3, start: str = "projection", smooth: float = 1.0,
                 normalise: bool = False, leaky: bool = False) -> None:
        super().__init__()
        self.normalise = bool(normalise)
        if start not in STARTS or not smooth > 0:
            raise ConfigError(f"subspace restorer: start must be one of {', '.join(STARTS)} and smooth > 0; "
                              f"got start={start!r}, smooth={smooth}")
        self.start, self.smooth = start, float(smooth)
        unshuffle = (2 if scale == 1 else 1) if unshuffle is None else int(unshuffle)
        if bands < 1 or scale < 1 or rank < 1 or features < 1 or depth < 2 or unshuffle < 1 or correction < 0:
            raise ConfigError(f"subspace restorer needs bands, scale, rank, features, unshuffle ≥ 1, depth ≥ 2 "
                              f"and correction ≥ 0; got bands={bands}, scale={scale}, rank={rank}, "
                              f"features={features}, depth={depth}, unshuffle={unshuffle}, correction={correction}")
        self.bands, self.scale, self.rank, self.unshuffle = int(bands), int(scale), int(rank), unshuffle
        up = unshuffle * scale
        self.fold = nn.PixelUnshuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        def act() -> nn.Module:
            return nn.LeakyReLU(0.1, inplace=True) if leaky else nn.ReLU(inplace=True)

        layers: list[nn.Module] = [nn.Conv2d(rank * unshuffle * unshuffle, features, 3, padding=1), act()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), act()]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(features, rank * up * up, 3, padding=1)
        self.shuffle = nn.PixelShuffle(up) if up > 1 else nn.Identity()
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        self.correction = SpectralWindowRestorer(bands, scale, radius=correction_radius, features=correction,
                                                 depth=correction_depth, context=True) if correction else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected (N, B, H, W), got {tuple(x.shape)}")
        pad_h, pad_w = -x.shape[-2] % self.unshuffle, -x.shape[-1] % self.unshuffle
        if pad_h or pad_w:  # odd sizes: pad by edge replication for the fold, crop afterwards
            height, width = x.shape[-2], x.shape[-1]
            return self.forward(F.pad(x, (0, pad_w, 0, pad_h), mode="replicate"))[
                ..., :height * self.scale, :width * self.scale]
        bands = x.shape[1]
        mean, basis = spectral_subspace(x, self.rank)  # (N, B, 1, 1), (N, B, k)
        root = math.sqrt(bands)
        # (N, k, h, w) eigen-images at a B-independent scale.
        eigen = torch.einsum("nbk,nbhw->nkhw", basis, x - mean) / root
        if self.normalise:
            with torch.no_grad():
                spread = eigen.flatten(1).std(dim=1).clamp_min(1e-8)[:, None, None, None]
            residual = self.shuffle(self.tail(self.body(self.fold(eigen / spread)))) * spread
        else:
            residual = self.shuffle(self.tail(self.body(self.fold(eigen))))  # (N, k, h·s, w·s)
        if self.scale == 1:
            base = mean + torch.einsum("nbk,nkhw->nbhw", basis, self._start(eigen)) * root
        else:
            base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        out = base + torch.einsum("nbk,nkhw->nbhw", basis, residual) * root
        if self.correction is not None:
            out = out + self.correction.residual(x)
        return out


    def _start(self, eigen: torch.Tensor) -> torch.Tensor:
        """The training-free estimate of the clean (N, k, h, w) eigen-images."""
        if self.start == "projection":
            return eigen
        smooth = gaussian_blur(eigen, self.smooth)
        if self.start == "blur":
            return smooth
        with torch.no_grad():  # a data-dependent weight, like the basis
            noise = haar_noise_sigma(eigen).square()
            alpha = (noise / eigen.flatten(2).var(dim=2).clamp_min(1e-12)).clamp(0.0, 1.0)[..., None, None]
        return alpha * smooth + (1.0 - alpha) * eigen


def subspace(bands: int = 31, scale: int = 1, rank: int = 8, features: int = 64, depth: int = 8,
             unshuffle: int | None = None, correction: int = 16, correction_radius: int = 2,
             correction_depth: int = 3, start: str = "projection", smooth: float = 1.0,
             normalise: bool = False, leaky: bool = False) -> SubspaceRestorer:
    """ARCHS factory of :class:`SubspaceRestorer`."""
    return SubspaceRestorer(bands=bands, scale=scale, rank=rank, features=features, depth=depth,
                            unshuffle=unshuffle, correction=correction, correction_radius=correction_radius,
                            correction_depth=correction_depth, start=start, smooth=smooth, normalise=normalise,
                            leaky=leaky)
