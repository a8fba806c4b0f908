"""Source pretraining: the shipped source restorers are made by :func:`pretrain`.

It reads a cube set written by ``hiralign make-source``, holds the last cubes out for
validation, builds the restorer (for the compact one: spectral path initialised to the
PCA projector of the training spectra, FACTS.md), runs the one training loop
(:func:`hiralign.train.train`) and writes a checkpoint bundle whose provenance records the
data, settings, seeds, validation PSNRs and wall time.

Band-agnostic restorers (``band_agnostic = True``) pretrain with ``band_layouts``: every
batch is resampled from a finely sampled source set (``make-source --grid fine``) to a
random band layout (:class:`hiralign.patches.BandLayoutSampler`); validation then scores the
held-out cubes on :data:`VALIDATION_WAVELENGTHS` (the 31 bands of the compact models).
"""
from __future__ import annotations

import dataclasses
import logging
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from hiralign.errors import ConfigError, InputError
from hiralign.progress import Progress

if TYPE_CHECKING:
    from hiralign.patches import BandLayouts
    from hiralign.train import TrainConfig, TrainResult

log = logging.getLogger(__name__)

#: Default rank of the compact restorer's initial spectral projector, per task; None keeps
#: the identity (super-resolution has no spectral noise to project away).
PROJECTOR_RANK: dict[str, int | None] = {"gaussian": 4, "complex": 4, "sr4": None, "deblur": None,
                                         "bandmiss": 8, "inpaint": 8}
#: Band layout of the validation crops (and the nominal layout in the checkpoint config) of
#: band-agnostic pretraining: 400–700 nm every 10 nm, as the 31-band compact models.
VALIDATION_WAVELENGTHS = np.arange(400.0, 701.0, 10.0)


@dataclasses.dataclass(frozen=True)
class PretrainSettings:
    """Model-side settings of a pretraining run (the loop's are in :class:`TrainConfig`).

    Attributes:
        arch: an :data:`hiralign.models.ARCHS` name.
        args: keyword arguments of the architecture factory.
        val_cubes: cubes held out (from the end of the set) for validation PSNR.
        val_size: side of the validation centre crops.
        projector_rank: rank of the initial spectral projector (architectures that have
            one); None picks :data:`PROJECTOR_RANK` for the task, 0 keeps the identity.
        projector_samples: spectra sampled from the training cubes to fit it.
        band_layouts: draw a random band layout per batch (band-agnostic architectures
            only; the source set must carry wavelengths, ideally ``--grid fine``); None
            trains on the set's own bands.
        init: a checkpoint folder to start from instead of a fresh network (continued
            pretraining: a longer schedule or a larger source set without paying again for
            the steps already made). Its arch and args must be ``arch`` and ``args``, its
            task the run's; no projector is fitted (the weights already hold one). Its
            provenance is kept under ``init`` in the new one.
    """

    arch: str = "compact"
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    val_cubes: int = 2
    val_size: int = 128
    projector_rank: int | None = None
    projector_samples: int = 50_000
    band_layouts: BandLayouts | None = None
    init: str | Path | None = None


def pretrain(source: str | Path, out: str | Path, train_config: TrainConfig,
             settings: PretrainSettings = PretrainSettings(), *, device: str = "auto", resume: bool = False,
             progress: Progress | None = None) -> tuple[Path, TrainResult]:
    """Train a source restorer on the set in ``source`` and save it to ``out``.

    The resumable training state lives beside ``out`` (``.<name>.train_state.pt``) until the
    checkpoint is written; ``resume=True`` continues a cancelled run from it.

    Returns:
        (checkpoint folder, training result).
    """
    import torch

    from hiralign import __version__
    from hiralign.degrade import scale_factor
    from hiralign.device import resolve_device
    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint
    from hiralign.models.compact import count_parameters
    from hiralign.patches import BandLayoutSampler, CubeSampler
    from hiralign.source import load_cube_set, read_manifest
    from hiralign.train import make_validation_set, train

    started = time.perf_counter()
    source, out = Path(source), Path(out)
    cubes = load_cube_set(source)
    if len(cubes) <= settings.val_cubes:
        raise InputError(f"{source} holds {len(cubes)} cubes; more than the {settings.val_cubes} held out for "
                         "validation are needed")
    training = cubes[:len(cubes) - settings.val_cubes]
    held_out = cubes[len(cubes) - settings.val_cubes:]
    bands = training[0].n_bands
    wavelengths = training[0].wavelengths
    task, scale = train_config.task, scale_factor(train_config.task)
    if settings.band_layouts is not None:
        held_out, bands, wavelengths = _layout_validation(source, held_out, wavelengths)
        sampler = BandLayoutSampler(training, training[0].wavelengths, settings.band_layouts, name="source cubes")
    else:
        sampler = CubeSampler(training, name="source cubes")
    if settings.init is not None:
        model, init = _initial_model(Path(settings.init), settings, task, bands)
    else:
        model, init = build_model(settings.arch, bands, scale, **settings.args), None
    agnostic = bool(getattr(model, "band_agnostic", False))
    if settings.band_layouts is not None and not agnostic:
        raise ConfigError(f"random band layouts need a band-agnostic architecture; {settings.arch} has a fixed "
                          "band count (use e.g. --arch subspace)")
    projector = None if init is not None else _init_projector(model, training, task, settings, train_config.seed)
    dev = resolve_device(device)
    validation = make_validation_set(held_out, task, seed=0, size=settings.val_size) if held_out else None
    state_path = out.parent / f".{out.name}.train_state.pt"
    result = train(model, sampler, train_config, progress,
                   validation=validation, state_path=state_path, resume=resume, device=dev)
    manifest = read_manifest(source)
    provenance = {
        "kind": "source pretraining",
        "command": "hiralign pretrain",
        "source": {"folder": _display_path(source), "kind": manifest.get("kind"), "config": manifest.get("config"),
                   "train_cubes": [c.name for c in training], "validation_cubes": [c.name for c in held_out],
                   "validation": f"centre {settings.val_size}px crops degraded with seed 0"},
        "arch": settings.arch, "args": dict(settings.args), "parameters": count_parameters(model),
        "band_agnostic": agnostic,
        "band_layouts": settings.band_layouts.to_dict() if settings.band_layouts is not None else None,
        "projector": projector,
        "init": init,
        "train_config": train_config.to_dict(),
        "seeds": {"train": train_config.seed, "validation_degradation": 0},
        "result": result.to_dict(),
        "loss_curve": _decimate(result.losses, 200),
        "metrics": {"validation_psnr": result.final_psnr},
        "device": str(dev), "torch_version": torch.__version__, "hiralign_version": __version__,
        "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform()},
        "wall_s": round(time.perf_counter() - started, 1) if result.resumed_from == 0 else None,
        "train_wall_s": round(result.wall_s, 1),
    }
    config = CheckpointConfig(arch=settings.arch, task=task, bands=bands, wavelengths=wavelengths, scale=scale,
                              args=settings.args)
    save_checkpoint(model, out, config, provenance)
    state_path.unlink(missing_ok=True)
    return out, result


def _initial_model(folder: Path, settings: PretrainSettings, task: str, bands: int) -> tuple[Any, dict[str, Any]]:
    """The network of checkpoint ``folder`` to continue from, and what provenance records of it.

    A checkpoint of another task with the same scale is a warm start for this one.

    Raises:
        ConfigError: its arch, args, scale or band count is not the run's.
    """
    from hiralign.degrade import scale_factor
    from hiralign.models.checkpoint import load_checkpoint, read_provenance

    model, ckpt = load_checkpoint(folder, "cpu")
    model.train()
    agnostic = bool(getattr(model, "band_agnostic", False))
    problems = []
    if ckpt.arch != settings.arch or dict(ckpt.args) != dict(settings.args):
        problems.append(f"it is a {ckpt.arch} with args {dict(ckpt.args)}, the run asks for a {settings.arch} "
                        f"with {dict(settings.args)}")
    # another task of the same scale is a warm start (a denoiser's features suit a masking task);
    # another scale changes the network's up-sampler
    if scale_factor(ckpt.task) != scale_factor(task):
        problems.append(f"it was trained for {ckpt.task} (×{scale_factor(ckpt.task)}), "
                        f"which does not up-scale as {task} (×{scale_factor(task)}) does")
    if not agnostic and ckpt.bands != bands:
        problems.append(f"it has {ckpt.bands} bands, the source set {bands}")
    if problems:
        raise ConfigError(f"cannot continue from {folder}: " + "; ".join(problems))
    previous = read_provenance(folder)
    return model, {"folder": _display_path(folder), "kind": previous.get("kind"), "task": ckpt.task,
                   "steps": (previous.get("result") or {}).get("steps"),
                   "validation_psnr": (previous.get("metrics") or {}).get("validation_psnr"),
                   "provenance": previous}


def _layout_validation(source: Path, held_out: list, grid: np.ndarray | None) -> tuple[list, int, np.ndarray]:
    """Held-out cubes on :data:`VALIDATION_WAVELENGTHS`, and that layout's (bands, wavelengths)."""
    from hiralign.bands import resample_bands

    if grid is None:
        raise InputError(f"{source}: random band layouts need a source set with wavelengths "
                         "(make one with hiralign make-source --grid fine)")
    if grid[0] > VALIDATION_WAVELENGTHS[0] or grid[-1] < VALIDATION_WAVELENGTHS[-1]:
        raise InputError(f"{source}: its wavelengths ({grid[0]:g}–{grid[-1]:g} nm) do not cover the validation "
                         f"layout {VALIDATION_WAVELENGTHS[0]:g}–{VALIDATION_WAVELENGTHS[-1]:g} nm")
    cubes = [resample_bands(c, VALIDATION_WAVELENGTHS) for c in held_out]
    return cubes, VALIDATION_WAVELENGTHS.size, VALIDATION_WAVELENGTHS.copy()


def _display_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it (portable provenance)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _init_projector(model, training, task: str, settings: PretrainSettings, seed: int) -> dict[str, Any] | None:
    """Fit the compact restorer's spectral projector to sampled training spectra."""
    rank = PROJECTOR_RANK.get(task) if settings.projector_rank is None else settings.projector_rank
    if not hasattr(model, "init_spectral_projector") or not rank:
        return None
    if rank < 0:
        raise ConfigError(f"projector rank must be ≥ 0, got {rank}")
    rng = np.random.default_rng(seed)
    pixels = np.concatenate([c.data.reshape(-1, c.n_bands) for c in training])
    take = rng.choice(len(pixels), size=min(settings.projector_samples, len(pixels)), replace=False)
    kept = model.init_spectral_projector(pixels[np.sort(take)], rank)
    log.info("spectral projector: rank %d keeps %.4f of the source variance", rank, kept)
    return {"rank": int(rank), "variance_kept": round(kept, 6), "samples": int(take.size)}


def _decimate(values: list[float], points: int) -> list[list[float]]:
    """[step, mean loss] over ``points`` equal windows (a compact loss curve for provenance)."""
    if not values:
        return []
    edges = np.linspace(0, len(values), min(points, len(values)) + 1).astype(int)
    return [[int(b), round(float(np.mean(values[a:b])), 6)] for a, b in zip(edges[:-1], edges[1:])]
