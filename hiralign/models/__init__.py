"""Restoration backbones, one file each, registered in the plain :data:`ARCHS` dict.

Every architecture maps a degraded cube batch (N, B, H, W) to the restored (N, B, H, W)
(super-resolution: low-res in, ×scale out) and works for any band count B. A factory is
called as ``factory(bands=B, scale=s, **args)``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

#: Architecture name -> factory(bands, scale=1, **args) -> nn.Module. Entries are added by
#: explicit imports below (no string-built registries).
ARCHS: dict[str, Callable[..., nn.Module]] = {}

from hiralign.models.compact import compact  # noqa: E402
from hiralign.models.spectral_window import spectral_window  # noqa: E402
from hiralign.models.subspace import subspace  # noqa: E402

ARCHS["compact"] = compact
# Band-agnostic (class attribute ``band_agnostic = True``): any band count, no resampling.
ARCHS.update(spectral_window=spectral_window, subspace=subspace)


def build_model(arch: str, bands: int, scale: int = 1, **args: Any) -> nn.Module:
    """Instantiate ``arch`` for ``bands`` spectral bands.

    Raises:
        hiralign.errors.ModelError: unknown architecture name.
    """
    from hiralign.errors import ModelError

    if arch not in ARCHS:
        raise ModelError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[arch](bands=bands, scale=scale, **args)

# Published backbones (docs/backbones.md).
from hiralign.models.essaformer import essaformer  # noqa: E402
from hiralign.models.gdrrn import gdrrn  # noqa: E402
from hiralign.models.qrnn3d import qrnn3d  # noqa: E402
from hiralign.models.sert import sert_base, sert_small, sert_tiny  # noqa: E402

ARCHS.update(sert_tiny=sert_tiny, sert_small=sert_small, sert_base=sert_base, qrnn3d=qrnn3d,
             gdrrn=gdrrn, essaformer=essaformer)
