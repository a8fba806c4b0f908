"""``patchnn``: single-image generative patch nearest neighbours (GPNN-style).

After Granot et al., "Drop the GAN: in defense of patches nearest neighbors as single
image generative models" (CVPR 2022). The source image is put in a coarse-to-fine pyramid
(ratio 4/3). At the coarsest level the output starts as the source plus Gaussian noise;
at every level each query patch of the current output is replaced by its nearest key
patch of the source at that level, and overlapping patches are averaged back into an
image (fold). The first iteration of a level matches against the blurry upsampled
coarser source (its queries are blurry upsampled outputs too) and copies the sharp
patches at the same place; later iterations match sharp against sharp. Diversity comes
from the coarsest-level noise and from how many levels the pyramid has.

Optionally, GPNN's completeness term divides each query-key distance by
``alpha + min_q D(q, key)``, so keys that no query uses become cheaper: more of the
source appears in the output and repeated objects become rarer. It is applied to the
``candidates`` nearest keys of each query.

Speed (target ≤ 10 s per 256² variation on 2 CPU cores): the finest levels dominate, so
levels whose shorter side exceeds ``fine_side`` run ``fine_iterations`` iterations with
queries and keys taken every ``fine_stride`` pixels, big searches use an IVF index
(:mod:`patch_search`), and source pyramids and key indexes are built once per input and
reused by all its variations. ``docs/generators.md`` lists the measured costs of each
choice; ``PatchNNConfig.gpnn()`` gives the slow original recipe for comparison.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math

import numpy as np

from hiralign.errors import ConfigError
from hiralign.generate.base import check_count, check_rgb, cpu_threads, finish_variation, variation_seeds
from hiralign.progress import Progress, as_progress

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PatchNNConfig:
    """Settings of the patch nearest-neighbour generator.

    Attributes:
        patch_size: side of the square patches, pixels (GPNN: 7).
        scale_ratio: size ratio between consecutive pyramid levels (GPNN: 4/3).
        coarsest_side: shorter side of the coarsest level, pixels; smaller means more
            levels and more diversity (layouts are re-drawn at coarser scales).
        noise_std: std of the noise added at the coarsest level, in units of the
            coarsest source's per-channel std. GPNN adds 0.75 on [-1, 1] images, i.e.
            0.375 on [0, 1], ≈ 4 stds of the dark KAIST scenes. On them (6 seeds each)
            5 kept every scene recognisable with mean absolute differences to the input
            of 0.017–0.047 on textured scenes, but some seeds of the flat ones (a grid,
            text on paper) stayed within 0.004–0.007; 7 lifted those to ≥ 0.009 at the
            price of more broken letters and grid lines.
        iterations: iterations per level below ``fine_side`` (GPNN: 10).
        coarsest_iterations: iterations at the coarsest level; more than one snaps the
            output back to the input layout (FACTS.md).
        fine_side: levels whose shorter side exceeds this are "fine".
        fine_iterations: iterations per fine level.
        fine_stride: query and key stride at fine levels, pixels (1 = every patch).
        alpha: completeness weight (GPNN: 0.005, here on per-value squared
            differences of [0, 1] images); 0 switches the term off. Off by default: on the
            four KAIST scenes it doubled the cost and changed completeness by −27 % to
            +41 % (mixed, no gain on average; docs/generators.md).
        candidates: nearest keys per query re-ranked by the completeness term.
        nprobe: inverted lists visited per query by the approximate search.
        search_dims: compare patches by their leading principal components (PCA of the
            level's source patches) instead of all C·patch² values; 0 = all values.
        threads: CPU threads for torch and FAISS during generation; 0 keeps the process
            settings. One thread measured 2–4× faster than two on the shared 2-core
            machine (OpenMP threads spin while other processes hold the cores).
        device: "auto", "cpu" or "cuda[:N]".
    """

    patch_size: int = 7
    scale_ratio: float = 4.0 / 3.0
    coarsest_side: int = 24
    noise_std: float = 5.0
    iterations: int = 10
    coarsest_iterations: int = 1
    fine_side: int = 100
    fine_iterations: int = 2
    fine_stride: int = 2
    alpha: float = 0.0
    candidates: int = 8
    nprobe: int = 8
    search_dims: int = 0
    threads: int = 1
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.patch_size < 3 or self.patch_size % 2 == 0:
            raise ConfigError(f"patchnn: patch_size must be an odd integer ≥ 3, got {self.patch_size}")
        if not 1.05 <= self.scale_ratio <= 4.0:
            raise ConfigError(f"patchnn: scale_ratio must lie in [1.05, 4], got {self.scale_ratio}")
        if self.coarsest_side < self.patch_size + 1:
            raise ConfigError(f"patchnn: coarsest_side ({self.coarsest_side}) must exceed patch_size "
                              f"({self.patch_size})")
        if self.noise_std < 0:
            raise ConfigError(f"patchnn: noise_std must be ≥ 0, got {self.noise_std}")
        if self.threads < 0:
            raise ConfigError(f"patchnn: threads must be ≥ 0 (0 = keep), got {self.threads}")
        if self.search_dims < 0:
            raise ConfigError(f"patchnn: search_dims must be ≥ 0 (0 = off), got {self.search_dims}")
        for name in ("iterations", "coarsest_iterations", "fine_iterations", "fine_stride",
                     "candidates", "nprobe"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"patchnn: {name} must be ≥ 1, got {getattr(self, name)}")
        if self.alpha < 0:
            raise ConfigError(f"patchnn: alpha must be ≥ 0, got {self.alpha}")

    @classmethod
    def gpnn(cls, **overrides: object) -> PatchNNConfig:
        """GPNN's schedule: completeness on, 10 iterations, every patch at every level (slow)."""
        base = dict(alpha=0.005, fine_side=10**6, fine_iterations=10, fine_stride=1)
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]


class PatchNNGenerator:
    """Guide generator by single-image patch nearest neighbours. See the module docstring."""

    name = "patchnn"

    def __init__(self, settings: PatchNNConfig | None = None, **overrides: object) -> None:
        base = settings or PatchNNConfig()
        self.settings = dataclasses.replace(base, **overrides) if overrides else base

    def generate(self, rgb: np.ndarray, n: int, seed: int, progress: Progress | None = None) -> list[np.ndarray]:
        """Generate ``n`` guides from one RGB image.

        Args:
            rgb: (H, W, 3) float32 in [0, 1].
            n: number of variations.
            seed: base seed; variation j uses ``variation_seeds(seed, n)[j]``.
            progress: receives one unit per pyramid level of every variation.

        Returns:
            ``n`` arrays (H, W, 3) float32 in [0, 1].
        """
        import torch

        from hiralign.device import configure_torch, resolve_device

        configure_torch()
        rgb = check_rgb(rgb)
        n = check_count(n)
        progress = as_progress(progress)
        device = resolve_device(self.settings.device)
        height, width = rgb.shape[:2]
        source = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device)
        min_side = 2 * self.settings.patch_size
        if min(height, width) < min_side:
            factor = min_side / min(height, width)
            log.info("patchnn: image %d×%d is smaller than the %d px the patches need; upscaling by %.2f "
                     "and resizing the guides back", height, width, min_side, factor)
            source = _resize(source, (math.ceil(height * factor), math.ceil(width * factor)))
        model = _SourceModel(source, self.settings)
        guides = []
        with torch.no_grad(), cpu_threads(self.settings.threads if device.type == "cpu" else 0):
            for j, vseed in enumerate(variation_seeds(seed, n)):
                out = model.sample(vseed, progress, j, n)
                if out.shape[-2:] != (height, width):
                    out = _resize(out, (height, width))
                guide = out[0].permute(1, 2, 0).cpu().numpy()
                guides.append(finish_variation(progress, guide))
        return guides


class _SourceModel:
    """The source pyramid and its key indexes, shared by all variations of one input."""

    def __init__(self, source: torch.Tensor, settings: PatchNNConfig) -> None:  # noqa: F821
        self.settings = settings
        self.device = source.device
        self.sizes = pyramid_sizes(tuple(source.shape[-2:]), settings)
        if len(self.sizes) == 1:
            log.info("patchnn: image %s is too small for a pyramid (coarsest side %d); using one level, "
                     "which gives less diverse guides", tuple(source.shape[-2:]), settings.coarsest_side)
        self.levels = [source if k == 0 else _resize(source, size) for k, size in enumerate(self.sizes)]
        self._indexes: dict[tuple[int, str], object] = {}
        self._projections: dict[int, tuple[torch.Tensor, torch.Tensor] | None] = {}  # noqa: F821

    def _project(self, patches: torch.Tensor, level: int) -> np.ndarray:  # noqa: F821
        """(N, D) patches → (N, search_dims) float32 search vectors (all of D when off)."""
        basis = self._projections.get(level)
        if basis is not None:
            mean, vectors = basis
            patches = (patches - mean) @ vectors
        return np.ascontiguousarray(patches.cpu().numpy(), dtype=np.float32)

    def sample(self, seed: int, progress: Progress, variation: int, n_variations: int) -> torch.Tensor:  # noqa: F821
        import torch

        s = self.settings
        top = len(self.sizes) - 1
        coarsest = self.levels[top]
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(coarsest.shape, generator=gen).to(self.device)
        spread = coarsest.std(dim=(2, 3), keepdim=True)
        out = coarsest + s.noise_std * spread * noise
        total = n_variations * len(self.sizes)
        for level in range(top, -1, -1):
            if level < top:
                out = _resize(out, self.sizes[level])
            iters, stride = self._schedule(level)
            for it in range(iters):
                progress.check()
                blurry = it == 0 and level < top
                out = self._replace_patches(out, level, stride, blurry)
            done = variation * len(self.sizes) + (top - level + 1)
            progress.report(done, total, f"guide {variation + 1}/{n_variations}: scale {top - level + 1}/{top + 1}")
        return out

    def _schedule(self, level: int) -> tuple[int, int]:
        s = self.settings
        if level == len(self.sizes) - 1:
            return s.coarsest_iterations, 1
        if min(self.sizes[level]) > s.fine_side:
            return s.fine_iterations, s.fine_stride
        return s.iterations, 1

    def _keys(self, level: int, stride: int, blurry: bool) -> tuple[object, torch.Tensor]:  # noqa: F821
        """(index over key patches, value patches) of one level, built once per input.

        The sharp keys are the values themselves; the blurry keys (the coarser level
        upsampled) share the sharp index's trained cells, so each level trains once.
        """
        from hiralign.generate.patch_search import PatchIndex, use_approximate

        patch = self.settings.patch_size
        sharp = self._indexes.get((level, "sharp"))
        if sharp is None:
            values = unfold_patches(self.levels[level], patch, stride)
            self._projections[level] = _pca_basis(values, self.settings.search_dims)
            keys_np = self._project(values, level)
            approximate = use_approximate(len(keys_np), len(keys_np), self.device)
            index = PatchIndex(keys_np, self.device, approximate, nprobe=self.settings.nprobe, seed=level)
            sharp = self._indexes[(level, "sharp")] = (index, values)
        if not blurry:
            return sharp  # type: ignore[return-value]
        cached = self._indexes.get((level, "blurry"))
        if cached is None:
            keys_img = _resize(self.levels[level + 1], self.sizes[level])
            keys_np = self._project(unfold_patches(keys_img, patch, stride), level)
            cached = self._indexes[(level, "blurry")] = (sharp[0].same_cells(keys_np), sharp[1])  # type: ignore[attr-defined]
        return cached  # type: ignore[return-value]

    def _replace_patches(self, image: torch.Tensor, level: int, stride: int,  # noqa: F821
                         blurry: bool) -> torch.Tensor:  # noqa: F821
        """One patch nearest-neighbour iteration: every query patch → its nearest key's value."""
        import torch

        s = self.settings
        height, width = image.shape[-2:]
        padded = _pad_to_stride(image, s.patch_size, stride)
        queries = unfold_patches(padded, s.patch_size, stride)
        index, values = self._keys(level, stride, blurry)
        queries_np = self._project(queries, level)
        k = s.candidates if s.alpha > 0 else 1
        dist, idx = index.search(queries_np, k)  # type: ignore[attr-defined]
        missing = idx[:, 0] < 0
        if missing.any():  # an approximate search can come back empty-handed: redo those exactly
            import faiss

            d_ex, i_ex = faiss.knn(queries_np[missing], index.keys, k)  # type: ignore[attr-defined]
            dist[missing], idx[missing] = d_ex, i_ex
        if s.alpha > 0 and k > 1:
            # Completeness: distance of each key to its nearest query.
            key_min, _ = index.same_cells(queries_np).search(index.keys, 1)  # type: ignore[attr-defined]
            key_min = np.where(np.isfinite(key_min[:, 0]) & (key_min[:, 0] >= 0), key_min[:, 0], np.inf)
            dim = queries.shape[1]
            safe = np.where(idx >= 0, idx, 0)
            score = dist / (s.alpha * dim + np.minimum(key_min[safe], 1e6))
            score[idx < 0] = np.inf
            best = idx[np.arange(len(idx)), np.argmin(score, axis=1)]
        else:
            best = idx[:, 0]
        chosen = values[torch.from_numpy(best).to(values.device)]
        folded = fold_patches(chosen, padded.shape[-2:], s.patch_size, stride)
        return folded[..., :height, :width]


def _pca_basis(patches: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor] | None:  # noqa: F821
    """(mean (D,), leading principal directions (D, dims)) of (N, D) patches; None when off."""
    import torch

    if dims <= 0 or dims >= patches.shape[1]:
        return None
    mean = patches.mean(0)
    centred = patches - mean
    cov = (centred.T @ centred).double() / max(1, patches.shape[0] - 1)
    _, vectors = torch.linalg.eigh(cov)
    return mean, vectors[:, -dims:].flip(1).to(patches.dtype).contiguous()


def pyramid_sizes(size: tuple[int, int], settings: PatchNNConfig) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level, finest first, down to ``coarsest_side``."""
    height, width = size
    sizes = [(height, width)]
    k = 1
    while True:
        scale = settings.scale_ratio ** k
        h, w = int(round(height / scale)), int(round(width / scale))
        if min(h, w) < settings.coarsest_side or (h, w) == sizes[-1]:
            break
        sizes.append((h, w))
        k += 1
    return sizes


def unfold_patches(image: torch.Tensor, patch: int, stride: int) -> torch.Tensor:  # noqa: F821
    """(1, C, H, W) → (L, C·patch²) patches at ``stride``, row-major over positions."""
    import torch.nn.functional as F

    return F.unfold(image, patch, stride=stride)[0].T.contiguous()


def fold_patches(patches: torch.Tensor, size: tuple[int, int], patch: int,  # noqa: F821
                 stride: int) -> torch.Tensor:  # noqa: F821
    """Average overlapping (L, C·patch²) patches back into a (1, C, H, W) image."""
    import torch.nn.functional as F

    summed = F.fold(patches.T[None], size, patch, stride=stride)
    return summed * _inverse_coverage(tuple(size), patch, stride, patches.dtype, patches.device)


@functools.lru_cache(maxsize=64)
def _inverse_coverage(size: tuple[int, int], patch: int, stride: int, dtype: torch.dtype,  # noqa: F821
                      device: torch.device) -> torch.Tensor:  # noqa: F821
    """1 / (number of patches covering each pixel), (1, 1, H, W)."""
    import torch
    import torch.nn.functional as F

    n_patches = ((size[0] - patch) // stride + 1) * ((size[1] - patch) // stride + 1)
    ones = torch.ones((1, patch * patch, n_patches), dtype=dtype, device=device)
    return 1.0 / F.fold(ones, size, patch, stride=stride).clamp_min(1.0)


def _pad_to_stride(image: torch.Tensor, patch: int, stride: int) -> torch.Tensor:  # noqa: F821
    """Replicate-pad bottom/right so patches at ``stride`` cover every pixel."""
    import torch.nn.functional as F

    height, width = image.shape[-2:]
    pad_h, pad_w = (-(height - patch)) % stride, (-(width - patch)) % stride
    if pad_h == 0 and pad_w == 0:
        return image
    return F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:  # noqa: F821
    """Antialiased bilinear down-sampling, bicubic up-sampling, clipped to [0, 1]."""
    import torch.nn.functional as F

    if tuple(image.shape[-2:]) == tuple(size):
        return image
    if size[0] <= image.shape[-2] and size[1] <= image.shape[-1]:
        out = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
    else:
        out = F.interpolate(image, size=size, mode="bicubic", align_corners=False)
    return out.clamp_(0.0, 1.0)
