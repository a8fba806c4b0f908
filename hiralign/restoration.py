"""Restoring new captures with an adapted checkpoint, the way ``hiralign adapt`` restored its targets.

An adapted checkpoint records the run's settings (``provenance.json``: ``settings``) and,
for ``sensor``, the noise model the run estimated from its captures. Its *restoration* is
not always the network alone: with classical proxies (``gaussian``, ``complex``, ``sensor``
by default) ``restored/`` is ``fuse``·proxy + (1 − ``fuse``)·network, where the proxy is the
classical denoiser's restoration of the same capture, and with model proxies (``sr4``) it is
the network averaged over ``restore_transforms`` dihedral views. Restoring a new capture of
the same sensor with the network alone would hand a scientist something else than what the
run showed them (on the KAIST headline scenes 36.26 dB instead of ``restored/``'s 41.66 dB).
:func:`restore_capture` applies the recorded recipe to any capture; :class:`Recipe` reads it.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from hiralign.errors import ModelError

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from hiralign.cube import Cube
    from hiralign.ensemble import ProxyConfig
    from hiralign.models.checkpoint import CheckpointConfig
    from hiralign.noise import NoiseModel
    from hiralign.progress import Progress
    from hiralign.proxy import TileConfig


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a checkpoint's restoration is made.

    Attributes:
        task: the degradation task the checkpoint restores.
        proxy: the stage-1 proxy settings with ``auto`` resolved (its ``restorer`` is the
            classical denoiser that enters the restoration, or None).
        fuse: the classical proxy's weight in the restoration (0: the network alone).
        transforms: dihedral views the network is averaged over (1: one pass).
        noise: ``sensor`` only: the run's noise model on the captures' file scale (counts
            for integer captures), as ``hiralign noise`` reports it; None where none was
            recorded (it is then estimated from the captures being restored).
        adapted: whether the recipe came from an adapted checkpoint (False: a source model,
            restored by the network alone in one pass and, where the task allows, made to
            agree with the capture, as ``hiralign proxy --model`` does).
        source_model: the run's source checkpoint folder: a ``blend`` proxy mixes in *its*
            dihedral ensemble, as the run's proxies did (None: unknown).
        consistency: make the restoration agree exactly with the capture
            (:attr:`hiralign.config.AdaptConfig.consistency`; ``sr4``, ``bandmiss``,
            ``inpaint``). As the run did: False for runs recorded before the setting existed,
            and for ``bandmiss`` / ``inpaint`` runs recorded before those tasks had it.
    """

    task: str
    proxy: ProxyConfig
    fuse: float = 0.0
    transforms: int = 1
    noise: NoiseModel | None = None
    adapted: bool = False
    source_model: str | None = None
    consistency: bool = False

    @property
    def classical(self) -> str | None:
        """The classical denoiser that enters the restoration (None: the network alone)."""
        return self.proxy.restorer if self.fuse > 0 else None

    @property
    def estimates_noise(self) -> bool:
        """Whether the noise model must be estimated from the captures (``sensor``, none recorded)."""
        return self.task == "sensor" and self.noise is None

    @property
    def network_needed(self) -> bool:
        """Whether the network contributes at all (not at ``fuse`` 1)."""
        return self.fuse < 1

    @property
    def proxy_needs_model(self) -> bool:
        """Whether the classical proxy mixes in a model's ensemble (``blend``)."""
        return self.classical is not None and self.proxy.needs_model

    @property
    def projects(self) -> bool:
        """Whether the restoration is made to agree with the observation (:mod:`hiralign.consistency`)."""
        from hiralign.consistency import applies

        return self.consistency and applies(self.task)

    @property
    def plain_network(self) -> bool:
        """Whether the restoration is the network's own output in one pass (no classical share, views or projection)."""
        return self.classical is None and self.transforms == 1 and not self.projects

    def describe(self) -> str:
        """One line for logs and the CLI's JSON: what the restoration is."""
        if self.classical is None:
            views = f" averaged over {self.transforms} dihedral views" if self.transforms > 1 else ""
            projected = f", {_PROJECTION_WORDS[self.task]}" if self.projects else ""
            return f"the network alone{views}{projected}"
        proxy = ("the completion of the observed values (interpolate)" if self.classical == "interpolate"
                 else f"the {self.classical} denoiser")
        if self.proxy_needs_model:
            proxy = (f"{1 - self.proxy.blend_weight:g} × the {self.classical} denoiser + {self.proxy.blend_weight:g} × "
                     f"the source model's {self.proxy.transforms}-view ensemble")
        if not self.network_needed:
            return f"{proxy} (the run's proxy; fuse 1: no network share)"
        return f"{self.fuse:g} × ({proxy}) + {1 - self.fuse:g} × the adapted network"

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "proxy": dataclasses.asdict(self.proxy), "fuse": self.fuse,
                "transforms": self.transforms, "noise": None if self.noise is None else self.noise.to_dict(),
                "adapted": self.adapted, "source_model": self.source_model, "consistency": self.consistency,
                "is": self.describe()}

    @classmethod
    def network_only(cls, task: str, transforms: int = 1, consistency: bool = False) -> Recipe:
        """The network alone (a source model, or ``--network-only``), projected when ``consistency``."""
        from hiralign.ensemble import ProxyConfig

        return cls(task=task, proxy=ProxyConfig(source="model"), transforms=transforms, consistency=consistency)

    @classmethod
    def from_provenance(cls, provenance: Mapping[str, Any], task: str, scale: int = 1,
                        where: str = "checkpoint") -> Recipe:
        """The recipe an adapted checkpoint's ``provenance.json`` records; a source model's is the network alone.

        Args:
            provenance: the checkpoint's provenance.
            task: the checkpoint's task (its ``config.json``).
            scale: the model's up-scaling (resolves ``auto`` proxies as the run did).
            where: names the checkpoint in errors.

        Raises:
            ModelError: the recorded settings or noise model are unreadable.
        """
        from hiralign.config import AdaptConfig
        from hiralign.errors import ConfigError, InputError
        from hiralign.noise import NoiseModel

        settings = provenance.get("settings") if provenance.get("kind") == "hiralign-adapted" else None
        if not isinstance(settings, Mapping):
            # a source model restores as `hiralign proxy --model` does: projected where the task allows
            return cls.network_only(task, consistency=AdaptConfig(task=task).consistency)
        try:
            config = AdaptConfig.from_dict(settings, f"{where}: provenance settings")
        except ConfigError as exc:
            raise ModelError(f"{where}: its recorded settings are unusable ({exc})") from None
        noise = None
        if isinstance(provenance.get("noise"), Mapping):
            try:
                noise = NoiseModel.from_dict(provenance["noise"], f"{where}: provenance noise")
            except InputError as exc:
                raise ModelError(f"{where}: its recorded noise model is unusable ({exc})") from None
        source = provenance.get("source_model")
        proxy = _recorded_proxy(provenance, config, scale)
        return cls(task=task, proxy=proxy, fuse=config.fuse_proxies if proxy.restorer else 0.0,
                   transforms=int(config.restore_transforms), noise=noise, adapted=True,
                   source_model=str(source) if source else None,
                   consistency=_recorded_consistency(provenance, settings, config))

    @classmethod
    def from_checkpoint(cls, folder: str | Path, ckpt: CheckpointConfig) -> Recipe:
        """:meth:`from_provenance` of the checkpoint in ``folder``."""
        from hiralign.models.checkpoint import read_provenance

        return cls.from_provenance(read_provenance(folder), ckpt.task, ckpt.scale, str(folder))


def capture_noise(recipe: Recipe, captures: Sequence[Cube]) -> NoiseModel | None:
    """The noise model a ``sensor`` recipe restores ``captures`` with (file scale).

    The run's recorded model (the same sensor); without one it is estimated from the
    captures themselves, with a warning. None for other tasks.
    """
    if not recipe.estimates_noise:
        return recipe.noise
    from hiralign.noise import estimate_noise

    warnings.warn("the checkpoint records no sensor noise model; it is estimated from the captures being "
                  "restored (run `hiralign noise` on more captures of the sensor for a better one)",
                  UserWarning, stacklevel=2)
    return estimate_noise(list(captures))


def capture_scale(task: str, target: Cube) -> Any:
    """One capture's own robust :class:`~hiralign.intensity.IntensityScale` (as ``hiralign proxy`` uses).

    A dark capture is normal input, so the rescaling warning is not repeated for each one.
    """
    from hiralign.intensity import scale_for_task

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return scale_for_task(task, target)


def proxy_model(recipe: Recipe, adapted: tuple[nn.Module, CheckpointConfig],
                device: str | torch.device = "cpu") -> tuple[nn.Module, CheckpointConfig]:
    """The model whose ensemble a ``blend`` proxy mixes in: the run's source model when it can be loaded.

    Falls back to the adapted network (with a warning) when the recorded source folder is
    gone or restores other bands; returns ``adapted`` when the proxy needs no model.
    """
    if not recipe.proxy_needs_model:
        return adapted
    from hiralign.errors import HiralignError
    from hiralign.models.checkpoint import load_checkpoint

    if recipe.source_model and Path(recipe.source_model).is_dir():
        try:
            source = load_checkpoint(recipe.source_model, device)
        except HiralignError as exc:
            reason = str(exc)
        else:
            if source[1].task == adapted[1].task and source[1].bands == adapted[1].bands:
                return source
            reason = f"{recipe.source_model} restores another task or band count"
    else:
        reason = f"the run's source model {recipe.source_model or '(unrecorded)'} is not here"
    warnings.warn(f"{reason}; the blend proxy mixes in the adapted network's ensemble instead", UserWarning,
                  stacklevel=2)
    return adapted


def restore_capture(model: nn.Module, ckpt: CheckpointConfig, target: Cube, recipe: Recipe, *,
                    tiles: TileConfig, device: str | torch.device | None = None, noise: NoiseModel | None = None,
                    progress: Progress | None = None, name: str | None = None,
                    source: tuple[nn.Module, CheckpointConfig] | None = None) -> Cube:
    """Restore one capture with ``recipe``, on its own bands, scale and value range.

    The capture is divided by its own robust intensity scale (as ``hiralign proxy`` does;
    new captures need not share the run's exposure) and restored by
    :func:`hiralign.stages.restore_target` — the restore stage's own fusion, with the
    capture's classical proxy (:func:`hiralign.ensemble.make_proxy`) made now where the run
    used its stored one — then put back on the capture's scale.

    Args:
        model, ckpt: the checkpoint's restorer and config.
        target: (H, W, B) degraded capture, as loaded.
        recipe: :meth:`Recipe.from_checkpoint`.
        tiles, device, progress: as :func:`hiralign.stages.restore_target`.
        noise: ``sensor`` only: the file-scale noise model (:func:`capture_noise`).
        name: the result's name (default: the target's).
        source: the model a ``blend`` proxy mixes in (:func:`proxy_model`; default ``model``).

    Returns:
        The restored capture with ``target``'s bands and range (``sr4``: 4× its size).
    """
    from hiralign.ensemble import make_proxy
    from hiralign.progress import SubProgress, as_progress
    from hiralign.stages import RunScale, normalised, on_input_scale, restore_target

    name = name or target.name
    scale = RunScale(capture_scale(recipe.task, target), noise)
    progress = as_progress(progress)
    fuse = 0.0 if recipe.classical is None else recipe.fuse
    proxy_share = 1.0 if fuse >= 1 else 0.5

    observed = normalised(target, scale)

    def classical_proxy(grid: Cube) -> Cube:
        return make_proxy(grid, recipe.proxy, model=(source or (model, ckpt))[0], scale=ckpt.scale, tiles=tiles,
                          device=device, progress=SubProgress(progress, 1 - proxy_share, 1.0, "proxy: "),
                          name=name, noise=scale.train_noise, task=recipe.task, own_bands=observed)

    network_progress = progress if fuse == 0 else SubProgress(progress, 0.0, 0.5, "network: ")
    restored = restore_target(model, ckpt, observed, tiles=tiles, device=device,
                              progress=network_progress, name=name, back=True, transforms=recipe.transforms,
                              proxy=classical_proxy, fuse=fuse, consistent=recipe.consistency)
    return on_input_scale(restored, target, scale)


@dataclasses.dataclass(frozen=True)
class CaptureRestorer:
    """:func:`restore_capture` bound to one checkpoint's recipe for a batch of captures.

    What is resolved once per batch — the noise model (``sensor``) and the model a ``blend``
    proxy mixes in — is resolved in :meth:`build`; calling the restorer restores one capture.
    ``hiralign restore``, the window's *New captures restored…* and ``hiralign evaluate`` all
    restore through it.
    """

    model: Any
    ckpt: Any
    recipe: Recipe
    tiles: Any
    device: Any
    noise: NoiseModel | None
    source: tuple[Any, Any]

    @classmethod
    def build(cls, model: nn.Module, ckpt: CheckpointConfig, recipe: Recipe, captures: Sequence[Cube] = (), *,
              tiles: TileConfig, device: str | torch.device = "cpu",
              noise: NoiseModel | None = None) -> CaptureRestorer:
        """Resolve the batch's noise model and proxy model.

        Args:
            model, ckpt: the checkpoint's restorer and config.
            recipe: :meth:`Recipe.from_checkpoint` (or :meth:`Recipe.network_only`).
            captures: the batch, for a ``sensor`` recipe without a recorded noise model
                (estimated from them, :func:`capture_noise`); unused otherwise.
            tiles, device: as :func:`restore_capture`.
            noise: ``sensor``: a file-scale model overriding the recorded one.

        Raises:
            InputError: ``noise`` for a checkpoint that is not a sensor one.
        """
        from hiralign.errors import InputError

        if noise is not None:
            if ckpt.task != "sensor":
                raise InputError(f"a noise model is for sensor checkpoints; this one restores {ckpt.task!r}")
            recipe = dataclasses.replace(recipe, noise=noise)
        return cls(model, ckpt, recipe, tiles, device, capture_noise(recipe, captures),
                   proxy_model(recipe, (model, ckpt), device))

    def __call__(self, target: Cube, progress: Progress | None = None, name: str | None = None) -> Cube:
        return restore_capture(self.model, self.ckpt, target, self.recipe, tiles=self.tiles, device=self.device,
                               noise=self.noise, progress=progress, name=name, source=self.source)


def result_paths(name: str, out: str | Path) -> tuple[Path, Path]:
    """The (cube, RGB) files :func:`restore_files` writes for capture ``name`` into ``out``."""
    return Path(out) / f"{name}.hdr", Path(out) / f"{name}_rgb.png"


def capture_clash(paths: Sequence[str | Path], out: str | Path) -> tuple[Path, Path] | None:
    """(capture, result) where a result of :func:`restore_files` would overwrite one of the captures.

    Every capture against every result: one capture's result can land on another capture
    (an ENVI header and its data count as one file, :func:`hiralign.io.would_replace`).
    """
    from hiralign import io
    from hiralign.runfolder import safe_names

    results = [p for n in safe_names(list(paths)) for p in result_paths(n, out)]
    return next(((Path(c), r) for c in paths for r in results if io.would_replace(c, r)), None)


def restore_files(checkpoint: str | Path, paths: Sequence[str | Path], out: str | Path, *,
                  tiles: TileConfig | None = None, device: str | torch.device = "cpu", network_only: bool = False,
                  consistency: bool | None = None, noise: NoiseModel | None = None,
                  load: Mapping[str, Any] | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """``hiralign restore`` and the GUI's *Restore new captures*: each file restored with the checkpoint's recipe.

    Every capture is opened (its header and size checked, values not read) and the
    checkpoint, recipe and noise model resolved before the first result is written, so a bad
    file refuses the whole request with nothing written; then the captures are read and
    restored one at a time (memory: one capture). Each result is written atomically as
    ``out/<name>.hdr`` (the input's bands, dtype and range) and ``out/<name>_rgb.png``;
    cancelling between captures keeps the finished ones.

    Args:
        checkpoint: an adapted (or source) checkpoint folder.
        paths: the captures.
        out: output folder (created).
        tiles: tiled inference settings (default :class:`~hiralign.proxy.TileConfig`).
        device: where the network runs.
        network_only: the network alone in one pass instead of the recipe.
        consistency: override the recipe's sr4 consistency projection (None: as recorded).
        noise: ``sensor``: a file-scale noise model overriding the recorded one.
        load: keyword options of :func:`hiralign.io.load` (``var``, ``wavelengths``, ...).
        progress: per capture and tile; cancellable.

    Returns:
        The JSON-able report: model, task, device, recipe, noise and one entry per capture.

    Raises:
        HiralignError: an unreadable checkpoint or capture (naming it), a result that would
            overwrite its capture, or ``noise`` for a checkpoint that is not a sensor one.
    """
    import numpy as np

    from hiralign import io
    from hiralign.errors import InputError
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.progress import SubProgress, as_progress
    from hiralign.proxy import TileConfig
    from hiralign.runfolder import safe_names
    from hiralign.stages import RunScale, normalised

    tiles = tiles or TileConfig()
    progress = as_progress(progress)
    load = dict(load or {})
    names = safe_names(list(paths))
    clash = capture_clash(paths, out)
    if clash is not None:
        raise InputError(f"{clash[1]}: the result would overwrite the capture {clash[0]}; choose another --out folder")
    model, ckpt = load_checkpoint(checkpoint, device)
    recipe = Recipe.network_only(ckpt.task) if network_only else Recipe.from_checkpoint(checkpoint, ckpt)
    if consistency is not None:
        recipe = dataclasses.replace(recipe, consistency=consistency)
    for path in paths:
        io.open_cube(path, **load)  # header, type and size: a bad file refuses the request here
    # only an old sensor checkpoint (no recorded noise model) needs every capture at once
    batch = [io.load(path, **load) for path in paths] if noise is None and recipe.estimates_noise else []
    restorer = CaptureRestorer.build(model, ckpt, recipe, batch, tiles=tiles, device=device, noise=noise)
    written = []
    for k, (path, name) in enumerate(zip(paths, names)):
        progress.check()
        target = batch[k] if batch else io.load(path, **load)
        target.name = name
        restored = restorer(target, SubProgress(progress, k / len(paths), (k + 1) / len(paths), f"{name}: "))
        rgb = np.clip(normalised(restored, RunScale(capture_scale(ckpt.task, target))).pseudo_rgb(), 0, 1)
        cube_file, rgb_file = result_paths(name, out)
        rgb_path = io.save_rgb(rgb, rgb_file, bits=16)
        cube_path = io.save(restored, cube_file, dtype="input")
        written.append({"input": str(path), "restored": str(cube_path), "rgb": str(rgb_path),
                        "shape": list(restored.shape)})
    return {"model": str(checkpoint), "task": ckpt.task, "device": str(device), "recipe": restorer.recipe.to_dict(),
            "noise": None if restorer.noise is None else restorer.noise.to_dict(), "restored": written}


#: how :meth:`Recipe.describe` words each task's consistency
_PROJECTION_WORDS = {"sr4": "projected onto the cubes that down-sample exactly to the capture",
                     "bandmiss": "the capture's observed bands kept as they are",
                     "inpaint": "the capture's observed values kept as they are"}


def _recorded_proxy(provenance: Mapping[str, Any], config: Any, scale: int) -> ProxyConfig:
    """The proxy source the run that made a checkpoint used, ``auto`` resolved as it was then."""
    from hiralign.consistency import MASKING_TASKS
    from hiralign.ensemble import PROXY_SOURCES

    recorded = provenance.get("proxy_source")
    if isinstance(recorded, str) and recorded in PROXY_SOURCES and recorded != "auto":
        return dataclasses.replace(config.proxy, source=recorded)
    proxy = config.proxy_for(scale)
    if config.proxy.source == "auto" and config.task in MASKING_TASKS:
        # recorded before auto took interpolate for the masking tasks: it was the model's ensemble then
        return dataclasses.replace(proxy, source="ensemble")
    return proxy


def _recorded_consistency(provenance: Mapping[str, Any], settings: Mapping[str, Any], config: Any) -> bool:
    """Whether the run that made a checkpoint made its restorations agree with the observation."""
    if isinstance(provenance.get("projected_onto_observation"), bool):
        return provenance["projected_onto_observation"]
    if "consistency" not in settings:  # recorded before the setting existed
        return False
    from hiralign.consistency import MASKING_TASKS

    # recorded before the masking tasks had it: only sr4 was projected then
    return bool(config.consistency) and config.task not in MASKING_TASKS


__all__ = ["CaptureRestorer", "Recipe", "capture_clash", "capture_noise", "capture_scale", "proxy_model",
           "restore_capture", "restore_files", "result_paths"]
