"""Where training patches come from: random crops of clean cubes, optionally mixed.

A sampler yields *clean* (N, B, h, w) float32 CPU batches; the training loop augments and
degrades them. Pretraining uses one :class:`CubeSampler` over the source set; aligned
finetuning (paper Sec. III-C) mixes proxies and synthesized cubes at a ratio r with
:class:`WeightedCubeSampler`::

    sampler = WeightedCubeSampler([(synthesized, 3.0), (proxies, 1.0)])

Band-agnostic restorers pretrain on :class:`BandLayoutSampler`: crops of finely sampled
source cubes resampled, per batch, to a random band count, spacing and range.

All randomness comes from the ``torch.Generator`` passed in, so a run is reproducible and
resumable from the generator's saved state.
"""
from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class BandLayouts:
    """How :class:`BandLayoutSampler` draws a random band layout for every batch.

    Band count, spacing and position are uniform draws; the band centres are then moved by
    up to ``jitter`` of the spacing each (irregular layouts, e.g. a cube with bad bands
    removed). Spacings of 3–15 nm cover the sensors in ``../shared/data``: IMEC 10 nm,
    CAVE/KAIST 10 nm, MUUFL 9.5 nm, ROSIS 4.2 nm, AVIRIS 9.4 nm, Fenix 4.7 nm.

    Attributes:
        min_bands: fewest bands of a layout (≥ 3).
        max_bands: most bands of a layout.
        min_step_nm: smallest mean band spacing, nm.
        max_step_nm: largest mean band spacing, nm (shrunk when the span would not fit).
        jitter: largest move of a band centre, as a fraction of the spacing (0 ≤ jitter < 0.5).
    """

    min_bands: int = 8
    max_bands: int = 64
    min_step_nm: float = 3.0
    max_step_nm: float = 15.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if not 3 <= self.min_bands <= self.max_bands:
            raise ConfigError(f"band layouts need 3 ≤ min_bands ≤ max_bands (got {self.min_bands}, {self.max_bands})")
        if not 0 < self.min_step_nm <= self.max_step_nm:
            raise ConfigError(f"band spacing needs 0 < min ≤ max (got {self.min_step_nm}, {self.max_step_nm} nm)")
        if not 0 <= self.jitter < 0.5:
            raise ConfigError(f"band jitter must be in [0, 0.5), got {self.jitter}")

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


class BandLayoutSampler:
    """Crops of finely sampled cubes, resampled per batch to a random band layout.

    The source spectra are continuous (measured reflectances on a fine grid, e.g. 380–780 nm
    every 5 nm), so a layout of any count and spacing inside that range is an exact linear
    interpolation of them. Every :meth:`sample` call draws one layout for the whole batch
    (a batch tensor has one band count); :attr:`last_wavelengths` holds it.

    Args:
        cubes: (H, W, F) cubes on one common fine grid ``wavelengths``.
        wavelengths: (F,) the grid, nm, increasing.
        layouts: the layout distribution.
        name: what the cubes are, for messages.
    """

    def __init__(self, cubes: Sequence[CubeLike], wavelengths: Sequence[float], layouts: BandLayouts = BandLayouts(),
                 name: str = "cubes") -> None:
        self._crops = CubeSampler(cubes, name=name)
        self.grid = np.asarray(wavelengths, dtype=np.float64).ravel()
        if self.grid.size != self._crops.bands or self.grid.size < 2 or np.any(np.diff(self.grid) <= 0):
            raise InputError(f"{name}: need {self._crops.bands} increasing wavelengths, got {self.grid.size}")
        self.layouts = layouts
        self.last_wavelengths: np.ndarray | None = None

    @property
    def bands(self) -> int:
        """Bands of the fine grid the layouts are drawn from (each batch has its own count)."""
        return self._crops.bands

    @property
    def min_side(self) -> int:
        return self._crops.min_side

    def draw_layout(self, generator: torch.Generator) -> np.ndarray:
        """One random (B,) increasing layout of band centres inside the grid, nm."""
        import torch

        lay = self.layouts
        u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
        count = int(torch.randint(lay.min_bands, lay.max_bands + 1, (1,), generator=generator))
        available = float(self.grid[-1] - self.grid[0])
        step = lay.min_step_nm + u[0] * (lay.max_step_nm - lay.min_step_nm)
        step = min(step, available / (count - 1))
        span = step * (count - 1)
        start = float(self.grid[0]) + u[1] * (available - span)
        centres = start + step * np.arange(count)
        moves = (torch.rand(count, generator=generator, dtype=torch.float64).numpy() * 2 - 1) * lay.jitter * step
        # Moves below half the spacing keep the order; the ends stay inside the grid.
        return np.clip(centres + moves, self.grid[0], self.grid[-1])

    def interpolation(self, wavelengths: np.ndarray) -> np.ndarray:
        """(B, F) linear-interpolation weights from the grid to ``wavelengths``."""
        idx = np.clip(np.searchsorted(self.grid, wavelengths) - 1, 0, self.grid.size - 2)
        frac = np.clip((wavelengths - self.grid[idx]) / (self.grid[idx + 1] - self.grid[idx]), 0.0, 1.0)
        weights = np.zeros((wavelengths.size, self.grid.size))
        rows = np.arange(wavelengths.size)
        weights[rows, idx] = 1.0 - frac
        weights[rows, idx + 1] += frac
        return weights

    def sample(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        """(n, B, size, size) crops on a freshly drawn layout of B bands."""
        import torch

        wavelengths = self.draw_layout(generator)
        crops = self._crops.sample(n, size, generator)
        weights = torch.from_numpy(self.interpolation(wavelengths).astype(np.float32))
        self.last_wavelengths = wavelengths
        return torch.einsum("bf,nfhw->nbhw", weights, crops).contiguous()


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
