"""Band-agnostic candidate A: a 2-D CNN over a sliding window of neighbouring bands.

Every output band is predicted from its ±K neighbour bands (reflected at the ends of the
band axis) and the mean image of all bands (a global, nearly noise-free guide: its noise is
σ/√B). One set of weights serves every band: the bands are folded into the batch
dimension, so the network takes any number of bands at any wavelengths and never
resamples them. The wavelengths themselves are not an input; what the network learns is
how neighbouring bands of natural spectra co-vary at 3–15 nm spacings.

As in :class:`~hiralign.models.compact.CompactRestorer`, the branch runs on a pixel-
unshuffled (2×2-folded) copy of its input (≈4× fewer pixels per layer) and its last layer
starts at zero, so training starts from the identity (the bicubic up-sampling for
super-resolution, where the branch runs on the low-resolution input and its pixel shuffle
does the ×scale up-sampling).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from hiralign.errors import ConfigError


def band_windows(x: torch.Tensor, radius: int) -> torch.Tensor:
    """The ±``radius`` band neighbourhood of every band, reflected at both ends.

    Args:
        x: (N, B, H, W).
        radius: K ≥ 0.

    Returns:
        (N, B, 2K+1, H, W); entry [:, b, K] is band b itself.
    """
    bands = x.shape[1]
    offsets = torch.arange(-radius, radius + 1, device=x.device)
    index = torch.arange(bands, device=x.device)[:, None] + offsets[None, :]
    if bands > 1:
        # Reflection (… 2 1 | 0 1 2 … B-1 | B-2 …), repeated for windows wider than the cube.
        period = 2 * (bands - 1)
        index = index.remainder(period)
        index = torch.where(index >= bands, period - index, index)
    else:
        index = torch.zeros_like(index)
    return x[:, index]


class SpectralWindowRestorer(nn.Module):
    """Shared-weight band-window CNN with a residual output (band-agnostic).

    Args:
        bands: nominal band count (recorded in checkpoints; any count is accepted).
        scale: spatial up-sampling factor (1 for denoising-type tasks, 4 for ``sr4``).
        radius: K, neighbour bands on each side of the band being restored.
        features: channels of the conv branch.
        depth: 3×3 conv layers (≥ 2).
        unshuffle: resolution reduction of the branch (None: 2 for scale 1, else 1).
        context: also feed the mean image of all bands (a global spectral guide).
        chunk: band images per forward pass of the branch at inference (bounds memory on
            many-band cubes; training runs all at once).

    Shapes:
        input (N, B, h, w) → output (N, B, h·scale, w·scale), any B ≥ 1.
    """

    band_agnostic = True

    def __init__(self, bands: int = 31, scale: int = 1, radius: int = 3, features: int = 48, depth: int = 6,
                 unshuffle: int | None = None, context: bool = True, chunk: int = 64) -> None:
        super().__init__()
        unshuffle = (2 if scale == 1 else 1) if unshuffle is None else int(unshuffle)
        if bands < 1 or scale < 1 or radius < 0 or features < 1 or depth < 2 or unshuffle < 1 or chunk < 1:
            raise ConfigError(f"spectral-window restorer needs bands, scale, features, unshuffle, chunk ≥ 1, "
                              f"radius ≥ 0 and depth ≥ 2; got bands={bands}, scale={scale}, radius={radius}, "
                              f"features={features}, depth={depth}, unshuffle={unshuffle}, chunk={chunk}")
        self.bands, self.scale, self.radius = int(bands), int(scale), int(radius)
        self.unshuffle, self.context, self.chunk = unshuffle, bool(context), int(chunk)
        inputs = (2 * radius + 1 + int(context)) * unshuffle * unshuffle
        up = unshuffle * scale
        self.fold = nn.PixelUnshuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        layers: list[nn.Module] = [nn.Conv2d(inputs, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(features, up * up, 3, padding=1)
        self.shuffle = nn.PixelShuffle(up) if up > 1 else nn.Identity()
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def _branch(self, stack: torch.Tensor) -> torch.Tensor:
        """(M, C, h, w) band windows → (M, 1, h·s, w·s) residuals."""
        return self.shuffle(self.tail(self.body(self.fold(stack))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected (N, B, H, W), got {tuple(x.shape)}")
        base = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode="bicubic",
                                                       align_corners=False)
        return base + self.residual(x)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The branch's correction alone: (N, B, h, w) → (N, B, h·s, w·s) (zero at initialisation)."""
        pad_h, pad_w = -x.shape[-2] % self.unshuffle, -x.shape[-1] % self.unshuffle
        if pad_h or pad_w:  # odd sizes: pad by edge replication for the fold, crop afterwards
            height, width = x.shape[-2], x.shape[-1]
            return self.residual(F.pad(x, (0, pad_w, 0, pad_h), mode="replicate"))[
                ..., :height * self.scale, :width * self.scale]
        n, bands, height, width = x.shape
        windows = band_windows(x, self.radius)  # (N, B, 2K+1, h, w)
        if self.context:
            mean = x.mean(dim=1, keepdim=True)[:, :, None].expand(n, bands, 1, height, width)
            windows = torch.cat([windows, mean], dim=2)
        stack = windows.reshape(n * bands, -1, height, width)
        if self.training or stack.shape[0] <= self.chunk:
            residual = self._branch(stack)
        else:
            residual = torch.cat([self._branch(part) for part in stack.split(self.chunk)])
        return residual.reshape(n, bands, height * self.scale, width * self.scale)


def spectral_window(bands: int = 31, scale: int = 1, radius: int = 3, features: int = 48, depth: int = 6,
                    unshuffle: int | None = None, context: bool = True, chunk: int = 64) -> SpectralWindowRestorer:
    """ARCHS factory of :class:`SpectralWindowRestorer`."""
    return SpectralWindowRestorer(bands=bands, scale=scale, radius=radius, features=features, depth=depth,
                                  unshuffle=unshuffle, context=context, chunk=chunk)
