"""The method's stages, one item at a time: what ``hiralign adapt`` and the GUI both run.

Each function does one stage for one item (a target, or one guide of a target) and writes
its output into a :class:`~hiralign.runfolder.RunFolder` (atomically). It returns the
output **as read back from the run folder**, so what a later stage receives is what the
folder holds (16-bit PNG guides, float32 cubes) whether it comes from memory (the GUI) or
from disk (a resumed run): the two faces cannot drift apart.

:class:`~hiralign.pipeline.Adaptation` loops these over a run's targets (sharding,
resumption); the GUI's workers (:mod:`app.stages`) call them per target and stream each
result into the window. :func:`preflight` checks a whole requested chain before any stage
deletes or overwrites anything.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import ConfigError, HiralignError, InputError, ModelError, PreflightError
from hiralign.progress import Progress, as_progress

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from hiralign.config import AdaptConfig
    from hiralign.distributed import Workers
    from hiralign.ensemble import ProxyConfig
    from hiralign.evaluate import ImageScore
    from hiralign.intensity import IntensityScale
    from hiralign.models.checkpoint import CheckpointConfig
    from hiralign.noise import NoiseModel
    from hiralign.proxy import TileConfig
    from hiralign.runfolder import RunFolder
    from hiralign.train import TrainResult
    from hiralign.warp import WarpResult

#: The stages of a run in order (the GUI's Evaluate is restore + score).
STAGE_NAMES = ("proxy", "generate", "warp", "finetune", "restore")
#: Files of a run folder holding the run's intensity scale and (task ``sensor``) noise model.
INTENSITY_FILE, NOISE_FILE = "intensity.json", "noise.json"
#: The smallest capture (pixels per side) the sensor task estimates a noise model from.
MIN_NOISE_SIDE = 8


# ------------------------------------------------------------------ models
def load_source(config: AdaptConfig, device: str | torch.device = "cpu",
                targets: Sequence[Cube] = ()) -> tuple[nn.Module, CheckpointConfig]:
    """The source restorer of ``config`` on ``device``, checked against the run's task.

    Args:
        config: the run's settings.
        device: where the model goes.
        targets: the run's targets (without ``config.model`` they choose the shipped model,
            :func:`hiralign.config.default_model_folder`).

    Raises:
        MissingFileError, ModelError: no such checkpoint, a broken one, or another task.
    """
    from hiralign.models.checkpoint import load_checkpoint

    folder = config.model_folder(targets)
    model, ckpt = load_checkpoint(folder, device)
    if ckpt.task != config.task:
        raise ModelError(f"{folder}: the model restores {ckpt.task!r}, not {config.task!r}")
    return model, ckpt


def on_model_bands(cube: Cube, model: Any, ckpt: CheckpointConfig) -> tuple[Cube, bool]:
    """``cube`` on the bands the model restores, and whether it was resampled.

    A band-agnostic model (class attribute ``band_agnostic = True``) takes the cube as it
    is; any other is fed the checkpoint's band set (:func:`hiralign.bands.match_bands`).

    Raises:
        InputError: band counts differ and cannot be matched (names the cube and both
            band counts).
    """
    from hiralign.bands import match_bands
    from hiralign.models.build import is_band_agnostic

    if is_band_agnostic(model):
        return cube, False
    wl = None if ckpt.wavelengths is None else np.asarray(ckpt.wavelengths)
    try:
        return match_bands(cube, ckpt.bands, wl)
    except InputError as exc:
        raise InputError(f"{exc} (the model restores {ckpt.bands}-band cubes, {cube.name} has "
                         f"{cube.n_bands} bands)") from None


def restore_target(model: nn.Module, ckpt: CheckpointConfig, cube: Cube, *, tiles: TileConfig,
                   device: str | torch.device | None, progress: Progress | None = None, name: str | None = None,
                   back: bool = False, transforms: int = 1, proxy: Callable[[Cube], Cube] | None = None,
                   fuse: float = 0.0, consistent: bool = False) -> Cube:
    """Restore one cube on the model's bands (tiled), optionally fused with a proxy and mapped back.

    Args:
        model, ckpt: the restorer and its checkpoint config.
        cube: (h, w, B) degraded cube.
        tiles: tiled inference settings.
        device: where the model runs.
        progress: per-tile progress; cancellable.
        name: name of the result (default: the cube's).
        back: resample a resampled result back onto ``cube``'s wavelengths (the restore
            stage); False keeps the model's bands (a proxy, the finetuning target).
        transforms: dihedral views restored and averaged (1: one pass;
            :func:`hiralign.ensemble.ensemble_restore`).
        proxy: the proxy of ``cube`` from ``cube`` on the model's bands (a run's stored one, or
            a classical restoration made now); called once, only when ``fuse`` > 0.
        fuse: the restore stage's fusion: ``fuse``·proxy + (1 − ``fuse``)·network on the
            model's bands, before mapping back; at 1 the result is the proxy and the network
            is not run.
        consistent: project the result onto the cubes the checkpoint's task maps exactly to
            ``cube`` (:mod:`hiralign.consistency`; ``sr4``, ``bandmiss``, ``inpaint``, else no
            effect): on ``cube``'s own bands when mapped back, else on the model's (``sr4``
            only: the masking tasks' observed values do not survive resampled bands).

    Returns:
        (h·s, w·s, B') restored cube; B' is the model's band count unless ``back``.
    """
    from hiralign.bands import resample_bands
    from hiralign.ensemble import blend, ensemble_restore
    from hiralign.proxy import restore_cube

    if fuse > 0 and proxy is None:
        raise ConfigError("fusing with a proxy needs the proxy")
    name = name or cube.name
    grid, mapped = on_model_bands(cube, model, ckpt)
    if fuse >= 1:
        restored = proxy(grid)
        restored = restored.with_data(restored.data, name=name)
    elif transforms > 1:
        restored = ensemble_restore(model, grid, scale=ckpt.scale, transforms=transforms, tiles=tiles, device=device,
                                    progress=progress, name=name)
    else:
        restored = restore_cube(model, grid, scale=ckpt.scale, tiles=tiles, device=device, progress=progress,
                                name=name)
    if 0 < fuse < 1:
        restored = blend(proxy(grid), restored, fuse, name=name)
    if back and mapped:
        restored = resample_bands(restored, cube.wavelengths_or_default())
    if consistent:  # against what the result is compared with: the cube itself once mapped back
        from hiralign.consistency import consistent_cube

        restored = (consistent_cube(restored, cube, ckpt.task) if back and mapped
                    else consistent_cube(restored, grid, ckpt.task, resampled=mapped))
    return restored


def proxy_rgb(proxy: Cube) -> np.ndarray:
    """r_i = Γ(p_i) clipped to [0, 1], (H, W, 3) float32: what the generator and the warp see (Eq. 4)."""
    return np.clip(proxy.pseudo_rgb(), 0.0, 1.0).astype(np.float32)


def _load_cube(path: Path, name: str) -> Cube:
    from hiralign import io

    cube = io.load(path)
    cube.name = name
    return cube


# ------------------------------------------------------- the run's scale
@dataclasses.dataclass(frozen=True)
class RunScale:
    """What a run's network sees: the intensity scale of its targets and (``sensor``) their noise.

    Attributes:
        intensity: the targets' shared scale: the network sees ``target / s``
            (:mod:`hiralign.intensity`); proxies and synthesized cubes stay on that scale.
        noise: ``sensor`` only: the targets' shared noise model on their file scale (counts
            for integer captures), as ``hiralign noise`` reports it; else None.
        warnings: why the data were rescaled when a protocol task's targets did not fill
            [0, 1] (shown when the scale is computed, kept in ``intensity.json``).
    """

    intensity: IntensityScale
    noise: NoiseModel | None = None
    warnings: tuple[str, ...] = ()

    @property
    def train_noise(self) -> NoiseModel | None:
        """The noise model on the network's (normalised) scale, what finetuning degrades with."""
        from hiralign.intensity import noise_on_network_scale

        return None if self.noise is None else noise_on_network_scale(self.noise, self.intensity)

    def to_report(self) -> dict[str, Any]:
        """The report's ``intensity`` and ``noise`` entries (and the scale's warnings)."""
        return {"intensity": self.intensity.to_dict(), "noise": None if self.noise is None else self.noise.to_dict(),
                "warnings": list(self.warnings)}


def run_scale(run: RunFolder | None, config: AdaptConfig, targets: Sequence[Cube], *,
              write: bool = True) -> RunScale:
    """The run's :class:`RunScale`: read from the run folder, or computed from all targets and written.

    Computed from every target together (one scale, one noise model shared by all, so a
    target's restoration does not depend on which process or GUI job handles it):
    :func:`hiralign.intensity.scale_for_task` and, for ``sensor``,
    :func:`hiralign.noise.estimate_noise`. A resumed run reads ``intensity.json`` and
    ``noise.json`` back instead, so its later stages see exactly what the first ones saw.

    Args:
        run: the run folder (None: compute only).
        config: the run's settings (its task).
        targets: all of the run's observed targets, on the loaded scale.
        write: write the files when they are missing (only the main process writes).

    Raises:
        InputError: a stored file is malformed (naming it), the targets are empty or all
            zero, or (``sensor``) the noise cannot be estimated from them.
    """
    import warnings

    from hiralign.intensity import IntensityScale, scale_for_task
    from hiralign.noise import NoiseModel, estimate_noise

    if run is not None and (run.root / INTENSITY_FILE).is_file():
        path = run.root / INTENSITY_FILE
        data = _read_json(path)
        intensity = IntensityScale.from_dict(data, str(path))
        noise = None
        if config.task == "sensor":
            noise_path = run.root / NOISE_FILE
            if not noise_path.is_file():
                raise InputError(f"{noise_path}: missing; the sensor run's noise model is gone (delete "
                                 f"{path.name} too to estimate both again)")
            noise = NoiseModel.from_dict(_read_json(noise_path), str(noise_path))
        return RunScale(intensity, noise, tuple(str(w) for w in data.get("warnings", ())))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        intensity = scale_for_task(config.task, list(targets))
    messages = tuple(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    for message in messages:  # shown once, when the scale is decided (the CLI's stderr, the GUI's log)
        warnings.warn(message, UserWarning, stacklevel=2)
    noise = estimate_noise(list(targets)) if config.task == "sensor" else None
    scale = RunScale(intensity, noise, messages)
    if run is not None and write:
        from hiralign.atomic import write_json

        if noise is not None:
            write_json(run.root / NOISE_FILE, noise.to_dict())
        write_json(run.root / INTENSITY_FILE, {**intensity.to_dict(), "warnings": list(messages)})
    return scale


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read it ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def normalised(cube: Cube, scale: RunScale | None) -> Cube:
    """``cube`` as the network sees it (divided by the run's intensity scale; itself without one)."""
    if scale is None or scale.intensity.is_identity:
        return cube
    from hiralign.intensity import normalise

    return normalise(cube, scale.intensity)


def on_input_scale(restored: Cube, target: Cube, scale: RunScale | None) -> Cube:
    """A restoration of the normalised ``target`` back on the target's scale, range and metadata.

    Multiplied by the intensity scale, clipped to what the target's stored dtype holds, with
    its dtype/scale-factor metadata (so ``io.save(..., dtype="input")`` writes counts like
    the input). A super-resolved restoration (another size) keeps its own shape.
    """
    from hiralign.intensity import denormalise, to_input_range

    out = restored if scale is None or scale.intensity.is_identity else denormalise(restored, scale.intensity)
    like = target if out.shape == target.shape else target.with_data(out.data, name=target.name)
    return to_input_range(out, like)


# ------------------------------------------------------------- stage 1
def proxy_item(run: RunFolder, name: str, target: Cube, model: nn.Module, ckpt: CheckpointConfig, *,
               tiles: TileConfig, device: str | torch.device | None, progress: Progress | None = None,
               scale: RunScale | None = None, source: ProxyConfig | None = None,
               consistent: bool = False) -> tuple[Cube, np.ndarray]:
    """Stage 1 for one target: p_i = Φ_src(x_i / s) on the model's bands (Eq. 3).

    The target is divided by the run's intensity scale first (:func:`run_scale`), and the
    proxy stays on that normalised scale: it is what finetuning trains on. With a ``source``
    other than ``model`` the proxy is the model's dihedral ensemble, BM4D or their blend
    (:func:`hiralign.ensemble.make_proxy`; a ``sensor`` run's BM4D uses the run's noise
    model). Writes ``proxies/<name>.hdr`` and the 16-bit ``proxies/<name>_rgb.png``.

    Args:
        source: the resolved proxy config (:meth:`AdaptConfig.proxy_for`); None: the model.
        consistent: project the proxy onto the cubes the task maps exactly to the target
            (:attr:`AdaptConfig.consistency`; ``sr4``, ``bandmiss``, ``inpaint``).

    Returns:
        (proxy cube, proxy RGB (H, W, 3) float32), both as the run folder holds them.
    """
    from hiralign import io

    if source is None or source.source == "model":
        proxy = restore_target(model, ckpt, normalised(target, scale), tiles=tiles, device=device,
                               progress=progress, name=name, consistent=consistent)
    else:
        from hiralign.consistency import consistent_cube
        from hiralign.ensemble import make_proxy

        observed = normalised(target, scale)
        grid, mapped = on_model_bands(observed, model, ckpt)
        proxy = make_proxy(grid, source, model=model, scale=ckpt.scale, tiles=tiles, device=device,
                           progress=progress, name=name, noise=None if scale is None else scale.train_noise,
                           task=ckpt.task, own_bands=observed)
        if consistent:
            proxy = consistent_cube(proxy, grid, ckpt.task, resampled=mapped)
    proxy.metadata.pop("intensity_scale", None)
    io.save_rgb(proxy_rgb(proxy), run.proxy_rgb(name), bits=16)
    io.save(proxy, run.proxy(name))
    rgb = io.load_rgb(run.proxy_rgb(name))
    as_progress(progress).preview("proxy", rgb)
    return _load_cube(run.proxy(name), name), rgb


# ------------------------------------------------------------ stage 2a
def make_generator(config: AdaptConfig, device: str) -> Any:
    """The run's guide generator; its device follows ``device`` unless set on its own."""
    from hiralign.generate import get_generator

    chosen = config.generator_for(device)
    return get_generator(config.generator, **{f.name: getattr(chosen, f.name) for f in dataclasses.fields(chosen)})


def guides_item(run: RunFolder, name: str, index: int, rgb: np.ndarray, generator: Any, config: AdaptConfig,
                progress: Progress | None = None) -> list[np.ndarray]:
    """Stage 2a for target ``index``: M guide RGBs g_ij from its proxy RGB, seeded per target.

    Target i draws with :meth:`AdaptConfig.target_seed` (seed + 7919·i). Writes
    ``guides/<name>_g<j>.png`` (16-bit).

    Returns:
        M (H, W, 3) float32 guides as the run folder holds them.
    """
    from hiralign import io

    guides = generator.generate(rgb, config.guides, config.target_seed(index), progress)
    for j, guide in enumerate(guides):
        io.save_rgb(guide, run.guide(name, j), bits=16)
    return [io.load_rgb(run.guide(name, j)) for j in range(len(guides))]


# ------------------------------------------------------------ stage 2b
def warp_item(run: RunFolder, name: str, j: int, proxy: Cube, rgb: np.ndarray, guide: np.ndarray,
              config: AdaptConfig, *, device: str | torch.device | None,
              progress: Progress | None = None) -> WarpResult:
    """Stage 2b for guide ``j`` of a target: ỹ_ij = T_ij p_i (Eqs. 9–26).

    Writes ``synth/<name>_g<j>.hdr`` and its diagnostics ``synth/<name>_g<j>.json``.

    Returns:
        The warp result; its ``synthesized`` is the cube as the run folder holds it.
    """
    from hiralign import io
    from hiralign.atomic import write_json
    from hiralign.warp import warp

    result = warp(proxy, guide, config.warp, proxy_rgb=rgb, device=device, progress=progress)
    write_json(run.warp_diagnostics(name, j), dict(result.diagnostics))
    io.save(proxy.with_data(result.synthesized, name=f"{name}_g{j}"), run.synth(name, j))
    as_progress(progress).preview("warp", result.transported_rgb)
    return dataclasses.replace(result, synthesized=io.load(run.synth(name, j)).data)


def merge_warp_diagnostics(run: RunFolder, names: Sequence[str], guides: int) -> None:
    """Collect the per-guide diagnostics into ``warp.json`` (those present)."""
    from hiralign.atomic import write_json

    merged = {f"{n}_g{j}": json.loads(run.warp_diagnostics(n, j).read_text(encoding="utf-8"))
              for n in names for j in range(guides) if run.warp_diagnostics(n, j).is_file()}
    write_json(run.warp_json, merged)


# ------------------------------------------------------------- stage 3
def finetune_bundle(model: nn.Module, ckpt: CheckpointConfig, config: AdaptConfig, proxies: Sequence[Cube],
                    synthesized: Sequence[Cube], *, run: RunFolder, provenance: Mapping[str, Any],
                    device: str | torch.device | None, progress: Progress | None = None,
                    workers: Workers | None = None, resume: bool = True,
                    noise: NoiseModel | None = None) -> TrainResult:
    """Stage 3: finetune ``model`` in place on the aligned pairs; write ``checkpoint/``.

    The training pairs follow ``config.finetune.pairs`` (the one place the mode is
    decided); synthesized cubes are used only when the run synthesizes. With several
    processes the model is wrapped for DDP (seed + rank, a state file per rank).

    Args:
        model, ckpt: the source restorer (trained in place) and its config.
        config: the run's settings.
        proxies: p_i, one per target, on the model's bands.
        synthesized: ỹ_ij, target-major (all guides of target 0 first).
        run: where the checkpoint and the resumable training state go.
        provenance: facts recorded in ``provenance.json`` (targets, source model...).
        device: where to train.
        progress: per-step progress with the running loss; cancellable.
        workers: this process's share of a distributed run (default: alone).
        resume: continue from ``run.train_state`` when it exists.
        noise: ``sensor`` only: the targets' noise model on the network's scale
            (:attr:`RunScale.train_noise`), what D_task draws from.

    Returns:
        The training loop's result.
    """
    from hiralign.distributed import Workers
    from hiralign.finetune import finetune
    from hiralign.models.checkpoint import save_checkpoint
    from hiralign.replay import replay_for

    workers = workers or Workers()
    synth = list(synthesized) if config.needs_synthesis else []
    weight = config.replay_weight(ckpt.scale)
    if weight > 0:  # rebuilding the source set takes seconds before the first step
        as_progress(progress).report(0, max(1, config.finetune.steps), "rebuilding the source set for replay")
    replay = replay_for(weight, provenance, proxies)
    trained, settings, state_path = model, dataclasses.replace(config.finetune, source_replay=weight), run.train_state
    if workers.size > 1:
        # DDP: gradients averaged over ranks, each rank its own patches and state file
        from hiralign.distributed import agree_on_resume, data_parallel, rank_state_path

        trained = data_parallel(model, device)
        settings = dataclasses.replace(settings, seed=settings.seed + workers.rank)
        state_path = rank_state_path(state_path, workers.rank)
        agree_on_resume(state_path, workers)
    elif not resume:
        state_path.unlink(missing_ok=True)
    result = finetune(trained, config.task, list(proxies), synth, settings, state_path=state_path, resume=True,
                      device=device, progress=progress, noise=noise, replay=replay.cubes)
    if workers.is_main:
        record = {**dict(provenance), "mode": config.finetune.pairs, "settings": config.to_dict(),
                  "training": result.to_dict(), "pairs": {"proxies": len(proxies), "synthesized": len(synth)},
                  "source_replay": {"weight": weight, **replay.to_dict()},
                  "processes": workers.size}
        save_checkpoint(model, run.checkpoint, ckpt, record)
    workers.barrier()  # states go only once the checkpoint is complete
    state_path.unlink(missing_ok=True)
    return result


def adapted_provenance(config: AdaptConfig, targets: Sequence[str | Path],
                       cubes: Sequence[Cube] = (), noise: NoiseModel | None = None,
                       model_scale: int = 1) -> dict[str, Any]:
    """What an adapted checkpoint records about its origin (besides settings and training).

    ``cubes`` (the loaded targets) choose the shipped source model as :func:`load_source` does.
    ``noise`` (``sensor``: :attr:`RunScale.noise`, the captures' file scale) is recorded so that
    new captures of the sensor are restored as the run's were (:mod:`hiralign.restoration`).
    ``model_scale`` (the source model's up-scaling) resolves the proxy source, recorded as
    ``proxy_source`` because what ``auto`` means changes between versions.
    """
    from hiralign.consistency import applies
    from hiralign.models.checkpoint import read_provenance

    folder = config.model_folder(cubes)
    # what the run did, so new captures are restored alike even where a later version projects more tasks
    record = {"kind": "hiralign-adapted", "source_model": str(folder), "source_provenance": read_provenance(folder),
              "targets": [str(t) for t in targets],
              "projected_onto_observation": bool(config.consistency and applies(config.task)),
              "proxy_source": config.proxy_for(model_scale).source}
    if noise is not None:
        record["noise"] = noise.to_dict()
    return record


# -------------------------------------------------------- restore, score
def restore_item(run: RunFolder, name: str, target: Cube, model: nn.Module, ckpt: CheckpointConfig, *,
                 tiles: TileConfig, device: str | torch.device | None, progress: Progress | None = None,
                 scale: RunScale | None = None, fuse: float = 0.0, transforms: int = 1,
                 consistent: bool = False) -> Cube:
    """The adapted model applied to one observed target, back on its own bands and scale.

    The network restores ``target / s``; with ``fuse`` > 0 the result is mixed with the run's
    stored proxy (``fuse``·proxy + (1 − ``fuse``)·network, on the model's bands and the
    normalised scale; :meth:`AdaptConfig.proxy_fusion`; at 1 the proxy alone, the network not
    run). It is then multiplied by s and put into the target's range (:func:`on_input_scale`).
    ``transforms`` > 1 averages the network over that many dihedral views
    (:attr:`AdaptConfig.restore_transforms`); ``consistent`` projects the result onto the
    cubes the task down-samples exactly to the target (:attr:`AdaptConfig.consistency`).
    Written as the target was stored (uint16 counts
    stay uint16 counts): ``restored/<name>.hdr`` has the target's bands,
    wavelengths, dtype range and units. Returns the cube as the run folder holds it.
    """
    from hiralign import io

    # the stored proxy is on the model's bands and the normalised scale, as the network's output
    restored = restore_target(model, ckpt, normalised(target, scale), tiles=tiles, device=device, progress=progress,
                              name=name, back=True, transforms=transforms, fuse=fuse, consistent=consistent,
                              proxy=lambda _grid: _load_cube(run.proxy(name), name))
    io.save(on_input_scale(restored, target, scale), run.restored(name), dtype="input")
    return _load_cube(run.restored(name), name)


def quality_item(target: Cube, restored: Cube, config: AdaptConfig, scale: int = 1) -> dict[str, Any]:
    """The no-reference quality report of one restoration (:func:`hiralign.quality.quality_report`).

    Seams are measured on the run's inference tile grid when a tiled network output reaches
    the restoration (:meth:`AdaptConfig.network_in_restoration`; the subspace denoiser's
    whole-cube output alone has no grid, so no seam line); a super-resolved restoration
    (another size than its target, ``scale`` > 1) has no pixel-wise report.
    """
    from hiralign.quality import quality_report

    if restored.shape != target.shape:
        return {"skipped": f"the restoration's shape {list(restored.shape)} is not the target's "
                           f"{list(target.shape)} (super-resolution): no method noise to measure"}
    if not config.network_in_restoration(scale):
        return quality_report(target, restored)
    return quality_report(target, restored, tile=config.tiles.tile, overlap=config.tiles.overlap)


#: A clean reference's band centres may differ from its target's by this much (nm, rounding).
REFERENCE_TOLERANCE_NM = 1.0


def check_reference(clean: Cube, target: Cube, where: str | Path) -> None:
    """Refuse a clean reference that is not on its target's bands.

    Args:
        clean: the clean reference (H·s, W·s, B).
        target: the observed target it belongs to.
        where: how to name the reference (its file).

    Raises:
        InputError: another band count, or band centres more than
            :data:`REFERENCE_TOLERANCE_NM` apart (both ranges named in nm).
    """
    if clean.n_bands != target.n_bands:
        raise InputError(f"{where}: the clean reference has {clean.n_bands} bands but {target.name} has "
                         f"{target.n_bands}")
    if clean.wavelengths is not None and target.wavelengths is not None:
        shift = float(np.max(np.abs(np.asarray(clean.wavelengths) - np.asarray(target.wavelengths))))
        if shift > REFERENCE_TOLERANCE_NM:
            cw, tw = clean.wavelengths, target.wavelengths
            raise InputError(f"{where}: the clean reference's bands ({cw[0]:.0f}–{cw[-1]:.0f} nm) are not "
                             f"{target.name}'s ({tw[0]:.0f}–{tw[-1]:.0f} nm; up to {shift:.0f} nm apart)")


def score_item(name: str, clean: Cube, proxy: Cube, restored: Cube, task: str, *,
               maps: bool = False, where: str | Path | None = None,
               scale: RunScale | None = None) -> dict[str, ImageScore]:
    """Source (the proxy) and adapted restorations of one target against its clean reference.

    The proxy is on the model's bands; it is resampled onto the reference's when they
    differ. A super-resolution reference is cropped to the scale first.

    Args:
        name: the target's name (names the scores).
        clean: (H, W, B) clean reference.
        proxy: the source model's restoration p_i.
        restored: the adapted model's restoration, on the target's bands.
        task: the degradation task (its scale crops the reference).
        maps: also compute the per-band PSNR and the SAM map.
        where: how to name the reference in messages (its file).
        scale: the run's scale; the proxy (on the network's normalised scale) is multiplied
            back by it, so both restorations are scored on the reference's scale, with the
            PSNR peak of :func:`score_peak`.

    Raises:
        InputError: the reference is on other bands, or its shape does not match the
            restorations (naming ``where``).
    """
    from hiralign.bands import resample_bands
    from hiralign.degrade import crop_to_scale
    from hiralign.evaluate import score_cube

    check_reference(clean, restored, where or name)  # the restoration is on the target's bands
    reference = crop_to_scale(clean, task).with_data(crop_to_scale(clean, task).data, name=name)
    if proxy.n_bands != reference.n_bands and reference.wavelengths is not None:
        proxy = resample_bands(proxy, reference.wavelengths)
    if scale is not None and not scale.intensity.is_identity:
        from hiralign.intensity import denormalise

        proxy = denormalise(proxy, scale.intensity)
    peak = score_peak(scale)
    if peak != 1.0:
        reference = reference.with_data((reference.data / peak).astype(np.float32))
    scores = {}
    for label, cube in (("source", proxy), ("adapted", restored)):
        if cube.shape != reference.shape:
            raise InputError(f"{where or name}: clean reference shape {reference.shape} does not match the "
                             f"restored {cube.shape} of {name}")
        if peak != 1.0:
            cube = cube.with_data((cube.data / peak).astype(np.float32))
        scores[label] = score_cube(cube, reference, maps=maps)
    return scores


def score_peak(scale: RunScale | None) -> float:
    """The peak a run's PSNR and SSIM are taken at (PROTOCOL.md: 1; for real sensors the scene's top).

    1 for a run on the [0, 1] scale; where the run rescaled its targets (:func:`run_scale`: a
    dark uint16 capture reaching 0.4 % of full scale), the largest of its intensity scales,
    i.e. about the targets' 99.9th percentile. With peak 1 such a capture scores 76 dB for
    anything near it, and SSIM's constants swamp its structure. SAM does not depend on it.
    """
    if scale is None or scale.intensity.is_identity:
        return 1.0
    return float(np.max(scale.intensity.values))


def write_report(run: RunFolder, report: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``report.json`` (timings, metrics...) atomically; returns it as a dict."""
    from hiralign.atomic import write_json

    out = dict(report)
    write_json(run.report, out)
    return out


# -------------------------------------------------------------- preflight
def sensor_problems(targets: Sequence[Cube], bands_of: Sequence[str] | None = None) -> list[str]:
    """Why a noise model cannot be estimated from ``targets`` for a ``sensor`` run (empty: it can).

    The model is shared by all targets, so they must come from one sensor (one band count),
    and each must be large enough for the Haar level sets (:data:`MIN_NOISE_SIDE`).
    """
    names = list(bands_of) if bands_of is not None else [t.name for t in targets]
    problems = [f"{name}: {cube.shape[0]}×{cube.shape[1]} pixels are too few to estimate the sensor's noise "
                f"from (need at least {MIN_NOISE_SIDE}×{MIN_NOISE_SIDE})"
                for cube, name in zip(targets, names) if min(cube.shape[:2]) < MIN_NOISE_SIDE]
    counts = sorted({t.n_bands for t in targets})
    if len(counts) > 1:
        listed = ", ".join(f"{n} ({t.n_bands})" for t, n in zip(targets, names))
        problems.append(f"the sensor task shares one noise model between its captures, which need one band "
                        f"count; got {listed}: run each sensor's captures separately")
    return problems


def proxy_problems(config: AdaptConfig, scale: int = 1) -> list[str]:
    """Why the configured proxy source cannot run (empty: it can): a classical restorer
    that is not installed, or that cannot up-scale a ×``scale`` task."""
    from hiralign.classical import bm3d_available
    from hiralign.ensemble import bm4d_available

    chosen = config.proxy_for(scale)
    problems = []
    if chosen.restorer and scale != 1:
        problems.append(f"proxy source {chosen.source!r} keeps the observation's size; it cannot make ×{scale} "
                        f"proxies for {config.task!r} (use model or ensemble)")
    if chosen.needs_bm4d and not bm4d_available():
        problems.append(f"proxy source {chosen.source!r} needs the optional bm4d package (pip install bm4d; free for "
                        f"non-commercial use only), or choose model or ensemble")
    if chosen.needs_bm3d and not bm3d_available():
        problems.append(f"proxy source {chosen.source!r} needs the optional bm3d package (pip install bm3d; free for "
                        f"non-commercial use only), or choose subspace")
    return problems


def preflight(config: AdaptConfig, targets: Sequence[Cube], stages: Sequence[str] = STAGE_NAMES, *,
              device: str | None = None, model_folder: str | Path | None = None,
              bands_of: Sequence[str] | None = None, problems: Sequence[str] = ()) -> tuple[Any, Any]:
    """Check the whole requested chain before anything is deleted or overwritten.

    Checks the device, the source (or ``model_folder``) checkpoint and its task, that
    every target's bands can be fed to the model, and that the generator can run (its
    weights are present) when the chain generates guides. A ``sensor`` run also needs a
    model on the captures' own bands (band-agnostic, or the same bands) and captures a
    shared noise model can be estimated from (:func:`sensor_problems`). Every problem is
    collected and reported at once.

    Args:
        config: the run's settings.
        targets: the observed target cubes (only their band sets are used).
        stages: the stages about to run (a subset of :data:`STAGE_NAMES`, plus the GUI's
            ``"evaluate"``).
        device: the device to check (default: ``config.device``).
        model_folder: the checkpoint the first model stage loads (default: the source).
        bands_of: names of the targets in messages (default: the cubes' names).
        problems: problems the caller found already (e.g. targets that cannot be read),
            reported with the others.

    Returns:
        (model, checkpoint config) loaded on the CPU when a stage needs the model, else
        (None, None).

    Raises:
        PreflightError: one message listing every problem found, one per line (a
            ConfigError and a ModelError).
    """
    from hiralign.device import resolve_device

    problems = list(problems)
    stages = list(stages)
    try:
        resolve_device(device or config.device)
    except HiralignError as exc:
        problems.append(str(exc))
    model = ckpt = None
    needs_model = any(s in stages for s in ("proxy", "finetune", "restore", "evaluate"))
    if needs_model:
        from hiralign.models.checkpoint import load_checkpoint

        try:
            folder = Path(model_folder) if model_folder is not None else config.model_folder(targets)
            model, ckpt = load_checkpoint(folder, "cpu")
            if ckpt.task != config.task:
                problems.append(f"{folder}: the model restores {ckpt.task!r}, not {config.task!r}")
        except HiralignError as exc:
            problems.append(str(exc))
    if ckpt is not None:
        names = list(bands_of) if bands_of is not None else [t.name for t in targets]
        for cube, name in zip(targets, names):
            probe = cube.with_data(cube.data[:1, :1], name=name)  # the band rules need no pixels
            try:
                _, mapped = on_model_bands(probe, model, ckpt)
            except InputError as exc:
                problems.append(str(exc))
                continue
            if mapped and config.task == "sensor":
                problems.append(f"{name}: the sensor task needs a band-agnostic model or one on the capture's own "
                                f"{cube.n_bands} bands (the noise model is estimated on them); the model restores "
                                f"{ckpt.bands} bands")
    if config.task == "sensor":
        problems.extend(sensor_problems(targets, bands_of))
    if "proxy" in stages:
        problems.extend(proxy_problems(config, 1 if ckpt is None else ckpt.scale))
    if "generate" in stages and config.needs_synthesis:
        from hiralign.generate import check_available

        try:
            check_available(config.generator, config.generator_config)
        except HiralignError as exc:
            problems.append(f"generator {config.generator}: {exc}")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PreflightError(f"cannot run {' → '.join(stages)} ({len(problems)} problem"
                          f"{'s' * (len(problems) != 1)}):\n{lines}")
    return model, ckpt
