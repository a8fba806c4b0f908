"""Better stage-1 labels: dihedral test-time ensembles, classical restorers, their blend.

The proxies p_i are the labels of every finetuning pair, so their error E = p − x (x the
unknown clean scene) is inherited by the adapted model (docs/benchmarks.md: the clean
upper bound is several dB ahead). The ways to shrink E, each measured by
``benchmarks/labels.py``:

- ``ensemble``: the source model restores the 8 dihedral transforms of the target
  (4 quarter turns × optional mirror) and the inverse-transformed results are averaged.
  A convolutional restorer is not equivariant, so its errors partly decorrelate across
  the transforms while the signal does not.
- ``subspace``: the project's training-free denoiser (:mod:`hiralign.classical`: noise
  whitening, the cube's own spectral subspace, non-local means on the eigen-images); no
  optional package, seconds per cube.
- ``subspace-bm3d``: the same denoiser with BM3D on the eigen-images (FastHyDe's own
  choice; ``pip install bm3d``, free for non-commercial use, optional like bm4d): block
  matching gains 0.2–0.4 dB where the noise is Gaussian (``gaussian``, ``sensor``) for 6–16× the
  time; a cube with outliers (``complex``) keeps NLM + Wiener.
- ``bm4d``: BM4D (``pip install bm4d``, free for non-commercial use; an optional
  ``[bench]`` extra, never a runtime dependency) with a blind per-band noise level.
- ``interpolate``: the masking tasks' training-free completion (:mod:`hiralign.completion`):
  the zeros of a ``bandmiss`` / ``inpaint`` observation filled from its observed values
  (spatial interpolation, the spectra's low-rank subspace, interpolation over wavelength);
  the observed values are kept exactly. It restores nothing else (a cube without zeros comes
  back as it is).
- ``blend``: the weighted mean of the ensemble and the ``classical`` restorer (subspace or
  bm4d): their errors come from unrelated methods.
- ``auto`` (the default of ``hiralign adapt``): ``subspace`` for ``gaussian`` and ``complex``,
  ``blend`` of the model's ensemble with it for ``sensor`` (whose shipped model is about as good
  as the denoiser), ``interpolate`` for ``bandmiss`` and ``inpaint``, else ``ensemble``. :func:`resolve_source`
  decides; the run records what it resolved to.

Both classical restorers model white Gaussian noise only; for the ``sensor`` task they run
after a generalised Anscombe transform built from the run's Poisson–Gaussian noise model
(var = a·μ + b per band), so that assumption holds (:func:`stabilise`).

:func:`make_proxy` is the one entry point; :data:`PROXY_SOURCES` names the choices.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from hiralign.classical import noise_sigma, stabilise
from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.progress import Progress, SubProgress, as_progress
from hiralign.proxy import TileConfig, restore_cube

if TYPE_CHECKING:
    import torch

    from hiralign.noise import NoiseModel

#: Where stage-1 proxies come from (see the module docstring).
PROXY_SOURCES: tuple[str, ...] = ("auto", "model", "ensemble", "subspace", "subspace-bm3d", "bm4d", "interpolate",
                                  "blend")

#: The classical (training-free) restorers a proxy can come from or be blended with.
CLASSICAL: tuple[str, ...] = ("subspace", "subspace-bm3d", "bm4d", "interpolate")

#: Tasks whose degradation the subspace denoiser models (where ``auto`` takes classical proxies):
#: noise, and (its robust fit, :mod:`hiralign.outliers`) the stripes, dead lines and impulses of ``complex``.
CLASSICAL_TASKS: tuple[str, ...] = ("gaussian", "complex", "sensor")

#: The 8 dihedral transforms as (quarter turns, mirror left-right first).
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, m) for m in (False, True) for k in range(4))



@dataclasses.dataclass(frozen=True)
class ProxyConfig:
    """How stage-1 proxies are made.

    Attributes:
        source: model (the source restorer), ensemble (its 8 dihedral views averaged),
            subspace (the built-in training-free denoiser), subspace-bm3d (it with BM3D on the
            eigen-images, optional package), bm4d (BM4D, optional package), interpolate
            (the zeros of a bandmiss / inpaint observation filled from its observed values),
            blend (ensemble and the classical restorer mixed), or auto: subspace for
            gaussian and complex, blend for sensor, interpolate for bandmiss and inpaint,
            else ensemble.
        classical: the restorer blend mixes in: subspace, subspace-bm3d, bm4d or interpolate.
        transforms: dihedral transforms averaged by ``ensemble`` and ``blend`` (1–8; the
            first n of :data:`DIHEDRAL`: 4 = quarter turns only, 8 = all).
        blend_weight: weight of the model (ensemble) proxy in ``blend``; the classical
            restorer gets the rest. 0.1 measured best of 0.1 / 0.2 / 0.25 / 0.35 with the
            subspace denoiser on the simulated IMEC captures (the ``sensor`` task that ``auto``
            blends for; real noise: 44.50 / 44.45 / 44.39 / 44.21 dB, 4× variance 42.05 /
            42.06 / 42.04 / 41.94, 4× darker 40.52 / 40.46 / 40.39 / 40.19). With BM4D on
            the ``gaussian`` KAIST crops 0.25 was best of 0.25 / 0.35 / 0.5 (34.37 / 34.18 /
            33.58 dB): a weaker classical restorer wants more of the model.
        bm4d_profile: BM4D's profile (``"np"`` normal, ``"refilter"``; see the bm4d docs).
    """

    source: str = "auto"
    classical: str = "subspace"
    transforms: int = 8
    blend_weight: float = 0.1
    bm4d_profile: str = "np"

    def __post_init__(self) -> None:
        if self.source not in PROXY_SOURCES:
            raise ConfigError(f"unknown proxy source {self.source!r}; choose one of {', '.join(PROXY_SOURCES)}")
        if self.classical not in CLASSICAL:
            raise ConfigError(f"unknown classical restorer {self.classical!r}; choose one of {', '.join(CLASSICAL)}")
        if not 1 <= int(self.transforms) <= len(DIHEDRAL):
            raise ConfigError(f"transforms must be 1–{len(DIHEDRAL)}, got {self.transforms}")
        if not 0.0 <= self.blend_weight <= 1.0:
            raise ConfigError(f"blend_weight must be in [0, 1], got {self.blend_weight}")

    @property
    def needs_model(self) -> bool:
        return self.source not in CLASSICAL

    @property
    def restorer(self) -> str | None:
        """The classical restorer this source runs (None: none)."""
        if self.source in CLASSICAL:
            return self.source
        return self.classical if self.source == "blend" else None

    @property
    def needs_bm4d(self) -> bool:
        return self.restorer == "bm4d"

    @property
    def needs_bm3d(self) -> bool:
        return self.restorer == "subspace-bm3d"

    def resolved(self, task: str, scale: int = 1) -> ProxyConfig:
        """This config with ``auto`` replaced by what it means here (:func:`resolve_source`)."""
        return dataclasses.replace(self, source=resolve_source(self.source, task, scale))


def resolve_source(source: str, task: str, scale: int = 1) -> str:
    """The concrete proxy source ``source`` stands for on ``task`` at spatial ``scale``.

    ``auto`` → ``subspace`` for ``gaussian`` and ``complex`` and ``blend`` (the model's
    ensemble with the subspace denoiser) for ``sensor``, at scale 1; ``interpolate`` for
    ``bandmiss`` and ``inpaint`` (seed-0 KAIST / CAVE, PSNR over the missing values: inpaint
    41.06 / 33.37 dB against the 800-step network's 26.53 / 27.57, bandmiss 30.93 / 40.99
    against 29.52 / 31.30; docs/benchmarks.md, "Session 13"); else ``ensemble`` (the
    model's 8 dihedral views averaged): the denoisers model noise (and the subspace
    denoiser stuck values, dead lines and stripes), so they cannot help super-resolution
    or deblurring, and every task's degradation is symmetric under flips and quarter turns.
    The ensemble's labels are better than one pass (sr4 CAVE, the shipped
    model: 31.53 vs 31.35 dB, SAM 4.73 vs 4.88°) at 8× the proxy time (seconds). Any other
    source is returned unchanged.
    """
    if source != "auto":
        return source
    from hiralign.consistency import MASKING_TASKS

    if task in MASKING_TASKS and scale == 1:
        return "interpolate"
    if task not in CLASSICAL_TASKS or scale != 1:
        return "ensemble"
    # the shipped sensor model is about as good as the denoiser on 16-band captures and its errors
    # are unrelated, so their blend wins (simulated IMEC, 4× variance: model 40.11 dB, subspace 41.95,
    # blend 0.1 42.05); the compact gaussian and complex models are 8–10 dB behind the denoiser
    # (complex KAIST crops: 28.4 vs 36.8 dB), so they stay out
    return "blend" if task == "sensor" else "subspace"


def dihedral(data: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """Transform an (H, W, ...) array: mirror left-right (optional), then ``turns`` quarter turns."""
    out = data[:, ::-1] if mirror else data
    return np.ascontiguousarray(np.rot90(out, turns, axes=(0, 1)))


def undo_dihedral(data: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """The inverse of :func:`dihedral` with the same arguments."""
    out = np.rot90(data, -turns, axes=(0, 1))
    return np.ascontiguousarray(out[:, ::-1] if mirror else out)


def ensemble_restore(model: torch.nn.Module, cube: Cube, *, scale: int = 1, transforms: int = 8,
                     tiles: TileConfig = TileConfig(), device: torch.device | str | None = None,
                     progress: Progress | None = None, name: str | None = None) -> Cube:
    """Mean of the model's restorations of the first ``transforms`` dihedral views of ``cube``.

    Args:
        model: restorer (N, B, h, w) → (N, B, h·scale, w·scale).
        cube: (H, W, B) degraded cube on the model's bands.
        scale: the model's spatial up-scaling.
        transforms: 1–8 (1 is plain :func:`~hiralign.proxy.restore_cube`).
        tiles, device: as :func:`~hiralign.proxy.restore_cube`.
        progress: one sub-range per transform; cancellable.
        name: the result's name (default the cube's).

    Returns:
        (H·scale, W·scale, B) float32 cube with ``cube``'s band metadata.

    Cost: ``transforms`` times one restoration; memory one extra float32 cube.
    """
    progress = as_progress(progress)
    if not 1 <= transforms <= len(DIHEDRAL):
        raise ConfigError(f"transforms must be 1–{len(DIHEDRAL)}, got {transforms}")
    total: np.ndarray | None = None
    for i, (turns, mirror) in enumerate(DIHEDRAL[:transforms]):
        sub = SubProgress(progress, i / transforms, (i + 1) / transforms, f"view {i + 1}/{transforms}: ")
        view = cube.with_data(dihedral(cube.data, turns, mirror))
        out = undo_dihedral(restore_cube(model, view, scale=scale, tiles=tiles, device=device, progress=sub).data,
                            turns, mirror)
        total = out.astype(np.float32) if total is None else total + out  # float32 sum of ≤ 8 terms
    assert total is not None
    return cube.with_data(total / transforms, name=name or cube.name)


def bm4d_available() -> bool:
    """Whether the optional ``bm4d`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("bm4d") is not None


def bm4d_restore(cube: Cube, *, sigma: np.ndarray | None = None, noise: NoiseModel | None = None,
                 profile: str = "np", name: str | None = None) -> Cube:
    """BM4D on unit-variance noise: the cube stabilised by ``noise``, else divided by a blind σ per band.

    Without a noise model each band is divided by its σ (blind, :func:`noise_sigma`, or
    ``sigma``) and the result is ``bm4d(y/σ, 1)·σ``; with one (the ``sensor`` task),
    :func:`stabilise` whitens the Poisson–Gaussian noise first.

    Args:
        cube: (H, W, B) noisy cube.
        sigma: (B,) noise σ per band (default :func:`noise_sigma`); ignored with ``noise``.
        noise: the cube's Poisson–Gaussian noise model on its own scale (B bands).
        profile: BM4D profile name.
        name: the result's name.

    Returns:
        (H, W, B) float32 denoised cube with ``cube``'s band metadata. About 60 s per
        256²×31 cube on 2 CPU cores; BM4D assumes white Gaussian noise, so stripes and
        impulses (the ``complex`` task) largely survive.

    Raises:
        ConfigError: ``bm4d`` is not installed.
    """
    if not bm4d_available():
        raise ConfigError("proxy source 'bm4d' needs the optional bm4d package: pip install bm4d "
                          "(or the [bench] extra); free for non-commercial use only")
    import bm4d

    if noise is not None:
        if noise.n_bands != cube.n_bands:
            raise InputError(f"{cube.name}: a noise model of {noise.n_bands} bands for {cube.n_bands} bands")
        scaled, invert = stabilise(cube.data, noise)
    else:
        sig = noise_sigma(cube.data) if sigma is None else np.asarray(sigma, dtype=np.float64).reshape(-1)
        if sig.shape != (cube.n_bands,):
            raise InputError(f"{cube.name}: {sig.size} noise levels given for {cube.n_bands} bands")
        scaled = cube.data.astype(np.float64) / sig

        def invert(d: np.ndarray) -> np.ndarray:
            return np.asarray(d, dtype=np.float64) * sig

    out = invert(np.asarray(bm4d.bm4d(scaled, 1.0, profile=profile), dtype=np.float64))
    return cube.with_data(out.astype(np.float32), name=name or cube.name)


def blend(a: Cube, b: Cube, weight: float, name: str | None = None) -> Cube:
    """``weight``·a + (1 − ``weight``)·b of two cubes of one shape."""
    if a.shape != b.shape:
        raise InputError(f"cannot blend {a.name} {a.shape} with {b.name} {b.shape}: shapes differ")
    return a.with_data((weight * a.data + (1 - weight) * b.data).astype(np.float32), name=name or a.name)


def make_proxy(cube: Cube, config: ProxyConfig = ProxyConfig(source="model"), *,
               model: torch.nn.Module | None = None, scale: int = 1, tiles: TileConfig = TileConfig(),
               device: torch.device | str | None = None,
               progress: Progress | None = None, classical: Cube | None = None, name: str | None = None,
               noise: NoiseModel | None = None, task: str | None = None, own_bands: Cube | None = None) -> Cube:
    """One stage-1 proxy of a degraded cube from the configured source.

    Args:
        cube: (H, W, B) degraded cube on the model's bands.
        config: the proxy source and its settings; ``auto`` must be resolved first
            (:meth:`ProxyConfig.resolved`).
        model: the source restorer (needed unless the source is classical alone).
        scale: the model's spatial up-scaling; a classical source keeps the size (scale 1).
        tiles, device, progress: as :func:`ensemble_restore`.
        classical: a precomputed classical restoration of ``cube`` (skips the restorer;
            BM4D costs minutes per cube, so callers cache it).
        name: the proxy's name.
        noise: the cube's Poisson–Gaussian noise model (``sensor``): the classical
            restorer then runs on the stabilised cube (:func:`stabilise`); None: a blind σ per band.
        task: the degradation task (``interpolate`` reads which values are missing by it).
        own_bands: ``cube`` before it was resampled onto the model's bands (None: it was not).
            ``interpolate`` completes it there, where its zeros are the observation's, and the
            completion is resampled onto ``cube``'s wavelengths.

    Returns:
        The (H·scale, W·scale, B) proxy.

    Raises:
        ConfigError: the source needs a model that is missing, bm4d or bm3d that is not installed,
            or is classical while the task up-scales.
    """
    if config.source == "auto":
        raise ConfigError("proxy source 'auto' must be resolved for the task first (ProxyConfig.resolved)")
    if config.needs_model and model is None:
        raise ConfigError(f"proxy source {config.source!r} needs the source model")
    if config.restorer and scale != 1:
        raise ConfigError(f"proxy source {config.source!r} keeps the observation's size; "
                          f"it cannot serve a ×{scale} task")
    transforms = 1 if config.source == "model" else config.transforms
    learned = None
    if config.needs_model:
        learned = ensemble_restore(model, cube, scale=scale, transforms=transforms, tiles=tiles, device=device,
                                   progress=progress, name=name)
    if config.restorer is None:
        assert learned is not None
        return learned
    if noise is not None and noise.n_bands != cube.n_bands:
        noise = None  # resampled onto the model's bands: the capture's per-band model no longer applies
    classic = classical
    if classic is None and config.restorer == "interpolate" and own_bands is not None and own_bands is not cube:
        from hiralign.bands import resample_bands

        classic = resample_bands(classical_restore(own_bands, "interpolate", task=task, name=name, progress=progress),
                                 cube.wavelengths_or_default())
    if classic is None:
        classic = classical_restore(cube, config.restorer, noise=noise, profile=config.bm4d_profile, name=name,
                                    progress=progress, task=task)
    if learned is None:
        return classic.with_data(classic.data, name=name or cube.name)
    return blend(learned, classic, config.blend_weight, name=name or cube.name)


def classical_restore(cube: Cube, restorer: str, *, noise: NoiseModel | None = None, profile: str = "np",
                      name: str | None = None, progress: Progress | None = None, task: str | None = None) -> Cube:
    """The ``restorer`` (one of :data:`CLASSICAL`) restoration of ``cube``: a denoiser's, its noise
    whitened by ``noise`` or blindly, or ``interpolate``'s completion of its zeros (noise unused)."""
    if restorer == "interpolate":
        from hiralign.completion import complete_cube

        return complete_cube(cube, task=task, progress=progress, name=name)
    if restorer in ("subspace", "subspace-bm3d"):
        from hiralign.classical import SubspaceConfig, subspace_denoise

        config = SubspaceConfig(eigen_filter="bm3d" if restorer == "subspace-bm3d" else "nlm")
        return subspace_denoise(cube, config, noise=noise, name=name, progress=progress)
    if restorer == "bm4d":
        return bm4d_restore(cube, noise=noise, profile=profile, name=name)
    raise ConfigError(f"unknown classical restorer {restorer!r}; choose one of {', '.join(CLASSICAL)}")

__all__ = ["CLASSICAL", "CLASSICAL_TASKS", "DIHEDRAL", "PROXY_SOURCES", "ProxyConfig", "blend",
           "bm4d_available", "bm4d_restore", "classical_restore", "dihedral", "ensemble_restore", "make_proxy",
           "noise_sigma", "resolve_source", "stabilise", "undo_dihedral"]
