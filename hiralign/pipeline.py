"""``hiralign adapt``: proxy → generate → warp → finetune → restore, into a run folder.

Each stage is one method of :class:`Adaptation`; the CLI, the GUI's *Run all* and the
distributed launcher call the same methods. Per-image stages loop over this process's
share of the images (:class:`Workers`), write every output atomically and skip outputs that
already exist, so a cancelled or crashed run resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from hiralign import __version__
from hiralign.atomic import write_json
from hiralign.bands import match_bands, resample_bands
from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError, ModelError
from hiralign.finetune import FinetuneConfig
from hiralign.progress import Progress, SubProgress, as_progress
from hiralign.proxy import TileConfig
from hiralign.runfolder import RunFolder, safe_names

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Stage names in order, with their share of the overall progress bar.
STAGES: tuple[tuple[str, float], ...] = (
    ("proxy", 0.05), ("generate", 0.15), ("warp", 0.35), ("finetune", 0.40), ("restore", 0.05),
)


@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    """Every setting of an adaptation run (recorded in ``config.json``).

    Attributes:
        task: degradation task of the targets and the model.
        model: source checkpoint folder; None uses the shipped source model for ``task``.
        generator: guide generator name (:data:`hiralign.generate.GENERATORS`).
        generator_settings: keyword settings of that generator.
        guides: M, guides per proxy (paper default 3).
        warp_settings: overrides of :class:`hiralign.warp.WarpConfig` fields.
        finetune: aligned finetuning settings (ratio r, steps, mode...).
        tiles: tiled inference settings for proxies and restoration.
        seed: seeds generation (per image) and finetuning.
        device: "auto", "cpu", "cuda" or "cuda:N".
    """

    task: str
    model: str | None = None
    generator: str = "patchnn"
    generator_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    guides: int = 3
    warp_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    finetune: FinetuneConfig = FinetuneConfig()
    tiles: TileConfig = TileConfig()
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        from hiralign.degrade import check_task

        check_task(self.task)
        if self.guides < 0:
            raise ConfigError(f"guides per proxy must be ≥ 0 (got {self.guides})")
        if self.guides == 0 and self.finetune.mode != "proxy-only":
            raise ConfigError("with 0 guides per proxy only --mode proxy-only can finetune")
        object.__setattr__(self, "generator_settings", dict(self.generator_settings))
        object.__setattr__(self, "warp_settings", dict(self.warp_settings))

    @property
    def needs_synthesis(self) -> bool:
        return self.guides > 0 and self.finetune.mode != "proxy-only"

    def model_folder(self) -> Path:
        from hiralign.resources import shipped_model

        return Path(self.model).expanduser() if self.model else shipped_model(self.task)

    def warp_config(self) -> Any:
        from hiralign.warp import WarpConfig

        try:
            return WarpConfig(**self.warp_settings)
        except TypeError as exc:
            raise ConfigError(f"unknown warp setting: {exc}") from None

    def record(self) -> dict[str, Any]:
        """JSON-able settings, with every default spelled out."""
        out = {
            "task": self.task, "model": str(self.model_folder()), "generator": self.generator,
            "generator_settings": dict(self.generator_settings), "guides": self.guides,
            "finetune": dataclasses.asdict(self.finetune), "tiles": dataclasses.asdict(self.tiles),
            "seed": self.seed, "device": self.device,
        }
        if self.needs_synthesis:
            out["warp"] = dataclasses.asdict(self.warp_config())
        return out


@dataclasses.dataclass(frozen=True)
class Workers:
    """This process's place among the processes sharing a run (1 of 1 when alone).

    Attributes:
        rank: index of this process.
        size: number of processes.
        barrier: waits until every process reached it.
        device: the device this process must compute on (``cuda:LOCAL_RANK`` in a
            multi-GPU job, see :mod:`hiralign.distributed`); None follows the config.
    """

    rank: int = 0
    size: int = 1
    barrier: Callable[[], None] = lambda: None
    device: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[Any]) -> list[Any]:
        """Round-robin share of ``items`` handled by this process (each item exactly once)."""
        return list(items[self.rank::self.size])

    def todo(self, stage: str, items: Sequence[Any], done: Callable[[Any], bool]) -> list[Any]:
        """This process's share of ``items`` that are not ``done`` yet.

        Sharding comes first: every rank shares the same full list, so a fast rank's fresh
        outputs cannot shift a slower rank's share (each item is handled exactly once).
        """
        mine = [item for item in self.share(items) if not done(item)]
        if self.size > 1:
            log.info("%s: rank %d of %d handles %s", stage, self.rank, self.size,
                     ", ".join(_item_label(item) for item in mine) or "nothing")
        return mine


def _item_label(item: Any) -> str:
    # (index, name) of per-target stages, (name, guide) of the warp stage
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str):
        return item[1]
    if isinstance(item, tuple) and len(item) == 2:
        return f"{item[0]}_g{item[1]}"
    return str(item)


class Adaptation:
    """One adaptation run over a set of degraded target cubes.

    Args:
        targets: the observed (degraded) target files.
        config: all settings.
        out: the run folder (created; an existing one with the same settings is resumed).
        clean: optional clean references of the targets, same order, for the report.
        load_options: keyword options of :func:`hiralign.io.load` (var, wavelengths...).
        workers: this process's share (distributed runs).
        progress: overall progress across the stages; cancellable.
    """

    def __init__(self, targets: Sequence[str | Path], config: AdaptConfig, out: str | Path, *,
                 clean: Sequence[str | Path] | None = None, load_options: Mapping[str, Any] | None = None,
                 workers: Workers = Workers(), progress: Progress | None = None) -> None:
        if not targets:
            raise InputError("no target files given")
        if clean and len(clean) != len(targets):
            raise InputError(f"{len(clean)} clean references given for {len(targets)} targets; give one per target")
        self.config = config
        self.paths = [Path(t).expanduser() for t in targets]
        self.clean_paths = [Path(c).expanduser() for c in clean] if clean else []
        self.names = safe_names(self.paths)
        self.run = RunFolder(out)
        self.load_options = dict(load_options or {})
        self.workers = workers
        self.progress = as_progress(progress)
        self.timings: dict[str, float] = {}
        self._targets: list[Cube] | None = None
        self._model: tuple[Any, Any] | None = None
        self._device: torch.device | None = None

    # ---------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        if self._device is None:
            from hiralign.device import resolve_device

            self._device = resolve_device(self.workers.device or self.config.device)
        return self._device

    def targets(self) -> list[Cube]:
        """The observed target cubes, loaded once."""
        if self._targets is None:
            from hiralign import io

            self._targets = [io.load(p, **self.load_options) for p in self.paths]
            for cube, name in zip(self._targets, self.names):
                cube.name = name
        return self._targets

    def source_model(self) -> tuple[Any, Any]:
        """(model, checkpoint config) of the source restorer, checked against the task."""
        if self._model is None:
            from hiralign.models.checkpoint import load_checkpoint

            model, ckpt = load_checkpoint(self.config.model_folder(), self.device)
            if ckpt.task != self.config.task:
                raise ModelError(f"{self.config.model_folder()}: the model restores {ckpt.task!r}, "
                                 f"not {self.config.task!r}")
            self._model = (model, ckpt)
        return self._model

    def _model_grid(self, cube: Cube) -> tuple[Cube, bool]:
        _, ckpt = self.source_model()
        wl = None if ckpt.wavelengths is None else np.asarray(ckpt.wavelengths)
        return match_bands(cube, ckpt.bands, wl)

    def _stage(self, name: str) -> SubProgress:
        start = sum(share for stage, share in STAGES[:[s for s, _ in STAGES].index(name)])
        share = dict(STAGES)[name]
        return SubProgress(self.progress, start, start + share, f"{name}: ")

    def _timed(self, name: str, work: Callable[[SubProgress], None]) -> None:
        begin = time.perf_counter()
        sub = self._stage(name)
        work(sub)
        sub.report(1, 1, "done")
        self.workers.barrier()
        self.timings[name] = round(time.perf_counter() - begin, 2)

    # ----------------------------------------------------------------- stages
    def prepare(self) -> bool:
        """Claim the run folder (or check it matches these settings). True on resume."""
        record = {"hiralign_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "targets": [str(p) for p in self.paths], "clean": [str(p) for p in self.clean_paths],
                  "load_options": {k: str(v) for k, v in self.load_options.items() if v not in (None, False)},
                  "settings": self.config.record()}
        if self.workers.is_main:
            resumed = self.run.claim(record)
        self.workers.barrier()
        if not self.workers.is_main:
            resumed = self.run.claim(record)
        return resumed

    def stage_proxy(self, progress: Progress) -> None:
        """Stage 1: the source model restores each target into a proxy cube and RGB."""
        from hiralign import io
        from hiralign.proxy import restore_cube

        model, ckpt = self.source_model()
        mine = self.workers.todo("proxy", list(enumerate(self.names)), lambda item: self.run.proxy(item[1]).is_file())
        for k, (i, name) in enumerate(mine):
            cube, _ = self._model_grid(self.targets()[i])
            sub = SubProgress(progress, k / len(mine), (k + 1) / len(mine), f"{name}: ")
            proxy = restore_cube(model, cube, scale=ckpt.scale, tiles=self.config.tiles, device=self.device,
                                 progress=sub, name=name)
            io.save_rgb(np.clip(proxy.pseudo_rgb(), 0, 1), self.run.proxy_rgb(name), bits=16)
            io.save(proxy, self.run.proxy(name))
            progress.preview("proxy", {"name": name, "rgb": np.clip(proxy.pseudo_rgb(), 0, 1)})

    def stage_generate(self, progress: Progress) -> None:
        """Stage 2a: M guide RGBs per proxy RGB."""
        from hiralign import io
        from hiralign.generate import get_generator

        generator = get_generator(self.config.generator, **self.config.generator_settings)
        mine = self.workers.todo("generate", list(enumerate(self.names)), lambda item: all(
            self.run.guide(item[1], j).is_file() for j in range(self.config.guides)))
        for k, (i, name) in enumerate(mine):
            rgb = io.load_rgb(self.run.proxy_rgb(name))
            sub = SubProgress(progress, k / len(mine), (k + 1) / len(mine), f"{name}: ")
            guides = generator.generate(rgb, self.config.guides, self.config.seed + 7919 * i, sub)
            for j, guide in enumerate(guides):
                io.save_rgb(guide, self.run.guide(name, j), bits=16)

    def stage_warp(self, progress: Progress) -> None:
        """Stage 2b: move each proxy's spectra onto each of its guides."""
        from hiralign import io
        from hiralign.warp import warp

        config = self.config.warp_config()
        jobs = [(n, j) for n in self.names for j in range(self.config.guides)]
        mine = self.workers.todo("warp", jobs, lambda job: self.run.synth(*job).is_file())
        for k, (name, j) in enumerate(mine):
            proxy = io.load(self.run.proxy(name))
            proxy.name = name
            proxy_rgb = io.load_rgb(self.run.proxy_rgb(name))
            guide = io.load_rgb(self.run.guide(name, j))
            sub = SubProgress(progress, k / len(mine), (k + 1) / len(mine), f"{name} guide {j}: ")
            result = warp(proxy, guide, config, proxy_rgb=proxy_rgb, device=self.device, progress=sub)
            diagnostics = dict(result.diagnostics)
            write_json(self.run.warp_diagnostics(name, j), diagnostics)
            io.save(proxy.with_data(result.synthesized, name=f"{name}_g{j}"), self.run.synth(name, j))
            progress.preview("warp", {"name": name, "guide": j, "rgb": result.transported_rgb,
                                      "displacement": result.displacement})
        self.workers.barrier()
        if self.workers.is_main:
            import json

            merged = {f"{n}_g{j}": json.loads(self.run.warp_diagnostics(n, j).read_text())
                      for n in self.names for j in range(self.config.guides)
                      if self.run.warp_diagnostics(n, j).is_file()}
            write_json(self.run.warp_json, merged)

    def stage_finetune(self, progress: Progress) -> None:
        """Stage 3: finetune the source model on aligned pairs; write the checkpoint."""
        from hiralign import io
        from hiralign.finetune import finetune
        from hiralign.models.checkpoint import read_provenance, save_checkpoint

        if (self.run.checkpoint / "config.json").is_file():
            return
        model, ckpt = self.source_model()
        proxies = [io.load(self.run.proxy(n)) for n in self.names]
        synth = [io.load(self.run.synth(n, j)) for n in self.names for j in range(self.config.guides)] \
            if self.config.needs_synthesis else []
        trained, settings, state_path = model, self.config.finetune, self.run.train_state
        if self.workers.size > 1:
            # DDP: gradients averaged over ranks, each rank its own patches and state file
            from hiralign.distributed import agree_on_resume, data_parallel, rank_state_path

            trained = data_parallel(model, self.device)
            settings = dataclasses.replace(settings, seed=settings.seed + self.workers.rank)
            state_path = rank_state_path(state_path, self.workers.rank)
            agree_on_resume(state_path, self.workers)
        result = finetune(trained, self.config.task, proxies, synth, settings,
                          state_path=state_path, resume=True, device=self.device, progress=progress)
        if self.workers.is_main:
            source_prov = read_provenance(self.config.model_folder())
            provenance = {
                "kind": "hiralign-adapted", "source_model": str(self.config.model_folder()),
                "source_provenance": source_prov, "targets": [str(p) for p in self.paths],
                "settings": self.config.record(), "training": result.to_dict(),
                "pairs": {"proxies": len(proxies), "synthesized": len(synth)},
                "processes": self.workers.size,
            }
            save_checkpoint(model, self.run.checkpoint, ckpt, provenance)
        self.workers.barrier()  # states go only once the checkpoint is complete
        state_path.unlink(missing_ok=True)

    def stage_restore(self, progress: Progress) -> None:
        """Apply the adapted model to the observed targets (back on their own bands)."""
        from hiralign import io
        from hiralign.models.checkpoint import load_checkpoint
        from hiralign.proxy import restore_cube

        model, ckpt = load_checkpoint(self.run.checkpoint, self.device)
        mine = self.workers.todo("restore", list(enumerate(self.names)),
                                 lambda item: self.run.restored(item[1]).is_file())
        for k, (i, name) in enumerate(mine):
            target = self.targets()[i]
            cube, mapped = self._model_grid(target)
            sub = SubProgress(progress, k / len(mine), (k + 1) / len(mine), f"{name}: ")
            restored = restore_cube(model, cube, scale=ckpt.scale, tiles=self.config.tiles, device=self.device,
                                    progress=sub, name=name)
            if mapped:
                restored = resample_bands(restored, target.wavelengths_or_default())
            io.save(restored, self.run.restored(name))

    # -------------------------------------------------------------- the whole
    def run_all(self) -> dict[str, Any]:
        """Run every stage not yet done; write and return the report."""
        self.source_model()  # a wrong or missing model fails before the run folder is made
        resumed = self.prepare()
        self._timed("proxy", self.stage_proxy)
        if self.config.needs_synthesis:
            self._timed("generate", self.stage_generate)
            self._timed("warp", self.stage_warp)
        self._timed("finetune", self.stage_finetune)
        self._timed("restore", self.stage_restore)
        report = self.write_report(resumed)
        self.progress.report(1, 1, "done")
        return report

    def write_report(self, resumed: bool = False) -> dict[str, Any]:
        """Timings and, with clean references, source-vs-adapted metrics; rank 0 writes it."""
        report: dict[str, Any] = {"hiralign_version": __version__, "resumed": resumed,
                                  "device": str(self.device), "processes": self.workers.size,
                                  "timings_s": dict(self.timings)}
        if self.clean_paths and self.workers.is_main:
            report["metrics"] = self.score()
        if self.workers.is_main:
            write_json(self.run.report, report)
        return report

    def score(self) -> dict[str, Any]:
        """PSNR/SSIM/SAM of the source model's proxies and the adapted restorations."""
        from hiralign import io
        from hiralign.degrade import crop_to_scale
        from hiralign.evaluate import score_cube

        rows: dict[str, list[dict[str, Any]]] = {"source": [], "adapted": []}
        for name, clean_path in zip(self.names, self.clean_paths):
            clean = crop_to_scale(io.load(clean_path, **self.load_options), self.config.task)
            clean.name = name
            proxy = io.load(self.run.proxy(name))
            if proxy.n_bands != clean.n_bands and clean.wavelengths is not None:
                proxy = resample_bands(proxy, clean.wavelengths)
            for label, cube in (("source", proxy), ("adapted", io.load(self.run.restored(name)))):
                if cube.shape != clean.shape:
                    raise InputError(f"{clean_path}: clean reference shape {clean.shape} does not match the "
                                     f"restored {cube.shape} of {name}")
                rows[label].append(dataclasses.asdict(score_cube(cube, clean)))
        means = {label: {k: float(np.mean([r[k] for r in values])) for k in ("psnr", "ssim", "sam")}
                 for label, values in rows.items()}
        return {"per_image": rows, "mean": means,
                "gain": {k: means["adapted"][k] - means["source"][k] for k in ("psnr", "ssim", "sam")}}
