"""Where training patches come from: random crops of clean cubes, optionally mixed.

A sampler yields *clean* (N, B, h, w) float32 CPU batches; the training loop augments and
degrades them. Pretraining uses one :class:`CubeSampler` over the source set; aligned
finetuning (paper Sec. III-C) mixes proxies and synthesized cubes at a ratio r with
:class:`WeightedCubeSampler`::

    sampler = WeightedCubeSampler([(synthesized, 3.0), (proxies, 1.0)])

All randomness comes from the ``torch.Generator`` passed in, so a run is reproducible and
resumable from the generator's saved state.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError

if TYPE_CHECKING:
    import torch

    CubeLike = Union[Cube, np.ndarray, "torch.Tensor"]  # noqa: UP007 - a runtime alias


@runtime_checkable
class PatchSampler(Protocol):
    """A source of clean training patches."""

    @property
    def bands(self) -> int:
        """Band count B of every patch."""

    @property
    def min_side(self) -> int:
        """Largest square patch side every cube can provide."""

    def sample(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        """(n, B, size, size) float32 CPU tensor of random clean crops."""


class CubeSampler:
    """Uniformly random square crops of uniformly chosen cubes, held in memory.

    Args:
        cubes: (H, W, B) :class:`Cube`\\ s or arrays, or (B, H, W) tensors; all with one band count.
        name: what the cubes are, for messages ("proxies", "source set" ...).
    """

    def __init__(self, cubes: Sequence[CubeLike], name: str = "cubes") -> None:

        if len(cubes) == 0:
            raise InputError(f"no {name} to sample training patches from")
        self.name = name
        self._cubes: list[torch.Tensor] = [_as_bhw(c) for c in cubes]
        band_counts = {c.shape[0] for c in self._cubes}
        if len(band_counts) != 1:
            raise InputError(f"{name} have different band counts {sorted(band_counts)}; "
                             "resample them to one set of wavelengths first")

    def __len__(self) -> int:
        return len(self._cubes)

    @property
    def bands(self) -> int:
        return self._cubes[0].shape[0]

    @property
    def min_side(self) -> int:
        return min(min(c.shape[1], c.shape[2]) for c in self._cubes)

    def sample(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        import torch

        if size > self.min_side:
            raise ConfigError(f"patch size {size} exceeds the smallest of the {self.name} "
                              f"({self.min_side} pixels on its short side)")
        which = torch.randint(len(self._cubes), (n,), generator=generator)
        out = torch.empty((n, self.bands, size, size), dtype=torch.float32)
        for i, k in enumerate(which.tolist()):
            cube = self._cubes[k]
            top = int(torch.randint(cube.shape[1] - size + 1, (1,), generator=generator))
            left = int(torch.randint(cube.shape[2] - size + 1, (1,), generator=generator))
            out[i] = cube[:, top:top + size, left:left + size]
        return out


class WeightedCubeSampler:
    """Each patch comes from group g with probability weight_g / Σ weights.

    Args:
        groups: (sampler or cubes, weight) pairs; weights ≥ 0, not all 0. Cubes are wrapped
            in a :class:`CubeSampler`.
    """

    def __init__(self, groups: Sequence[tuple[PatchSampler | Sequence[CubeLike], float]]) -> None:
        kept = [(g if isinstance(g, PatchSampler) else CubeSampler(g, name=f"group {i}"), float(w))
                for i, (g, w) in enumerate(groups) if float(w) > 0]
        if any(float(w) < 0 for _, w in groups) or not kept:
            raise ConfigError("sampling weights must be ≥ 0 with at least one group weighted above 0")
        if len({s.bands for s, _ in kept}) != 1:
            raise InputError(f"sampler groups have different band counts {sorted({s.bands for s, _ in kept})}")
        self.samplers = [s for s, _ in kept]
        self.weights = np.array([w for _, w in kept]) / sum(w for _, w in kept)

    @property
    def bands(self) -> int:
        return self.samplers[0].bands

    @property
    def min_side(self) -> int:
        return min(s.min_side for s in self.samplers)

    def sample(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        import torch

        group = torch.multinomial(torch.as_tensor(self.weights), n, replacement=True, generator=generator)
        out = torch.empty((n, self.bands, size, size), dtype=torch.float32)
        for g, sampler in enumerate(self.samplers):
            rows = (group == g).nonzero().flatten()
            if rows.numel():
                out[rows] = sampler.sample(int(rows.numel()), size, generator)
        return out


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and 90° rotations, drawn per patch (the 8 symmetries of the square).

    Args:
        batch: (N, B, h, h) square patches.

    Returns:
        A new (N, B, h, h) tensor.
    """
    import torch

    codes = torch.randint(8, (batch.shape[0],), generator=generator)
    out = torch.empty_like(batch)
    for code in codes.unique().tolist():
        rows = (codes == code).nonzero().flatten()
        part = batch[rows]
        if code >= 4:
            part = part.flip(-1)
        out[rows] = torch.rot90(part, code % 4, dims=(-2, -1))
    return out


def _as_bhw(cube: CubeLike) -> torch.Tensor:
    import torch

    if isinstance(cube, Cube):
        tensor = cube.to_torch()
    elif isinstance(cube, torch.Tensor):
        if cube.ndim != 3:
            raise InputError(f"expected a (B, H, W) tensor, got shape {tuple(cube.shape)}")
        tensor = cube.detach().to("cpu", torch.float32)
    else:
        array = np.asarray(cube)
        if array.ndim != 3:
            raise InputError(f"expected an (H, W, B) array, got shape {array.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))
    return tensor.contiguous()
