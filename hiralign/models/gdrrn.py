"""GDRRN: grouped deep recursive residual network for single-HSI super-resolution
(Li, Zhang, Ding, Wei, Zhang, IEEE BigMM 2018).

Written from the paper. The low-resolution cube is first interpolated bicubically to the
target size; the network then predicts the missing detail (global residual):

* an input convolution (3×3, bands → ``features``) after a ReLU;
* a *grouped recursive module*: one residual unit — two pre-activated (ReLU) 3×3 *grouped*
  convolutions — applied ``recursions`` times with shared weights, each time adding the
  input convolution's output back (DRRN-style multi-path local residual); the grouping
  (``groups`` filter groups) is what cuts the parameters relative to DRRN;
* an output convolution (features → bands) after a ReLU, added to the interpolated input.

All convolutions are bias-free. The published ×4 model (128 features, 2 groups,
9 recursions) has 0.219 M parameters at 31 bands. The paper trains it with MSE plus
0.1 × the spectral-angle loss; the loss belongs to the training loop, not to the network.

Shapes: (N, B, h, w) → (N, B, scale·h, scale·w), any band count, any size.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from hiralign.models.blocks import build_checked, check_bands, require_sr_scale

#: Scale factors GDRRN is defined for (bicubic pre-upsampling accepts any integer ≥ 2).
GDRRN_SCALES = (2, 3, 4, 8)


class GDRRN(nn.Module):
    """Grouped deep recursive residual network.

    Args:
        bands: spectral bands of input and output.
        scale: spatial up-sampling factor.
        features: feature channels of the recursive module.
        groups: filter groups of the recursive convolutions (divides ``features``).
        recursions: times the shared residual unit is applied.
    """

    def __init__(self, bands: int, scale: int = 4, features: int = 128, groups: int = 2,
                 recursions: int = 9) -> None:
        super().__init__()
        if features % groups:
            raise ValueError(f"groups {groups} does not divide features {features}")
        if recursions < 1:
            raise ValueError(f"recursions must be ≥ 1, got {recursions}")
        self.scale = scale
        self.recursions = recursions
        self.entry = nn.Conv2d(bands, features, 3, padding=1, bias=False)
        self.unit_a = nn.Conv2d(features, features, 3, padding=1, groups=groups, bias=False)
        self.unit_b = nn.Conv2d(features, features, 3, padding=1, groups=groups, bias=False)
        self.exit = nn.Conv2d(features, bands, 3, padding=1, bias=False)
        for conv in (self.entry, self.unit_a, self.unit_b, self.exit):
            # He initialisation by fan-out, as for the recursive nets this builds on.
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, B, h, w) low-resolution cube → (N, B, scale·h, scale·w)."""
        upsampled = F.interpolate(x, scale_factor=float(self.scale), mode="bicubic",
                                  align_corners=False)
        entry = self.entry(F.relu(upsampled))
        out = entry
        for _ in range(self.recursions):
            out = self.unit_b(F.relu(self.unit_a(F.relu(out)))) + entry
        return self.exit(F.relu(out)) + upsampled


def gdrrn(bands: int, scale: int = 1, **args: Any) -> GDRRN:
    """The published GDRRN (128 features, 2 groups, 9 recursions; 0.22 M parameters).

    ``scale`` must be given (2, 3, 4 or 8): the registry default of 1 is refused.
    """
    check_bands("gdrrn", bands)
    require_sr_scale("gdrrn", scale, GDRRN_SCALES)
    return build_checked("gdrrn", GDRRN, {**args, "bands": bands, "scale": scale})
