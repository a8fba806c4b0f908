"""``hiralign adapt``: proxy → generate → warp → finetune → restore, into a run folder.

Each stage is one method of :class:`Adaptation` that loops the per-item stage functions of
:mod:`hiralign.stages` (the same ones the GUI's workers call) over this process's share of
the targets (:class:`~hiralign.distributed.Workers`). Every output is written atomically
and outputs that already exist are skipped, so a cancelled or crashed run resumes where it
stopped. :func:`hiralign.stages.preflight` checks the whole chain before anything starts.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from hiralign import __version__, stages
from hiralign.config import AdaptConfig
from hiralign.cube import Cube
from hiralign.distributed import Workers
from hiralign.errors import InputError
from hiralign.progress import Progress, SubProgress, as_progress
from hiralign.runfolder import RunFolder, safe_names

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Stage names in order, with their share of the overall progress bar.
STAGES: tuple[tuple[str, float], ...] = (
    ("proxy", 0.05), ("generate", 0.15), ("warp", 0.35), ("finetune", 0.40), ("restore", 0.05),
)


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
        #: Seconds spent outside the stages: deciding the scale (and noise model), the quality reports.
        self.extra_timings: dict[str, float] = {}
        self._targets: list[Cube] | None = None
        self._model: tuple[Any, Any] | None = None
        self._device: torch.device | None = None
        self._scale: stages.RunScale | None = None

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
            self._model = stages.load_source(self.config, self.device, self.targets())
        return self._model

    @property
    def scale(self) -> stages.RunScale:
        """The run's intensity scale and (sensor) noise model: computed once from all targets and
        stored in the run folder (``intensity.json``, ``noise.json``), read back on resume."""
        if self._scale is None:
            self._scale = stages.run_scale(self.run, self.config, self.targets(), write=self.workers.is_main)
        return self._scale

    def preflight(self) -> None:
        """Check the whole chain before anything is written: every target readable, the device,
        the model and its task, each target's bands, the generator's weights.

        Raises:
            PreflightError: every problem found, one per line.
        """
        from hiralign import io
        from hiralign.errors import HiralignError

        chain = ["proxy", "generate", "warp", "finetune", "restore"] if self.config.needs_synthesis \
            else ["proxy", "finetune", "restore"]
        problems, loaded, names = [], [], []
        for path, name in zip(self.paths, self.names):
            try:
                cube = io.load(path, **self.load_options)
            except HiralignError as exc:
                problems.append(str(exc))
                continue
            cube.name = name
            loaded.append(cube)
            names.append(name)
        if not problems:
            self._targets = loaded
        stages.preflight(self.config, loaded, chain, device=self.workers.device or self.config.device,
                         bands_of=names, problems=problems)

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

    @staticmethod
    def _span(progress: Progress, k: int, n: int, prefix: str) -> SubProgress:
        return SubProgress(progress, k / max(n, 1), (k + 1) / max(n, 1), prefix)

    def record(self) -> dict[str, Any]:
        """The run folder's ``config.json``: inputs, the settings' ``to_dict`` and the version."""
        return {"hiralign_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "targets": [str(p) for p in self.paths], "clean": [str(p) for p in self.clean_paths],
                "load_options": {k: str(v) for k, v in self.load_options.items() if v not in (None, False)},
                "settings": self.config.to_dict()}

    # ----------------------------------------------------------------- stages
    def prepare(self) -> bool:
        """Claim the run folder (or check it matches these settings). True on resume."""
        record = self.record()
        if self.workers.is_main:
            resumed = self.run.claim(record)
        self.workers.barrier()
        if not self.workers.is_main:
            resumed = self.run.claim(record, lock=False)  # the main process holds the folder's lock
        return resumed

    def stage_proxy(self, progress: Progress) -> None:
        """Stage 1: the source model restores each target into a proxy cube and RGB."""
        model, ckpt = self.source_model()
        mine = self.workers.todo("proxy", list(enumerate(self.names)), lambda item: self.run.proxy(item[1]).is_file())
        for k, (i, name) in enumerate(mine):
            stages.proxy_item(self.run, name, self.targets()[i], model, ckpt, tiles=self.config.tiles,
                              device=self.device, progress=self._span(progress, k, len(mine), f"{name}: "),
                              scale=self.scale, source=self.config.proxy_for(ckpt.scale),
                              consistent=self.config.consistency)

    def stage_generate(self, progress: Progress) -> None:
        """Stage 2a: M guide RGBs per proxy RGB, target i seeded with seed + 7919·i."""
        from hiralign import io

        generator = stages.make_generator(self.config, self.workers.device or self.config.device)
        mine = self.workers.todo("generate", list(enumerate(self.names)), lambda item: all(
            self.run.guide(item[1], j).is_file() for j in range(self.config.guides)))
        for k, (i, name) in enumerate(mine):
            rgb = io.load_rgb(self.run.proxy_rgb(name))
            stages.guides_item(self.run, name, i, rgb, generator, self.config,
                               self._span(progress, k, len(mine), f"{name}: "))

    def stage_warp(self, progress: Progress) -> None:
        """Stage 2b: move each proxy's spectra onto each of its guides."""
        from hiralign import io

        jobs = [(n, j) for n in self.names for j in range(self.config.guides)]
        mine = self.workers.todo("warp", jobs, lambda job: self.run.synth(*job).is_file())
        for k, (name, j) in enumerate(mine):
            proxy = io.load(self.run.proxy(name))
            proxy.name = name
            stages.warp_item(self.run, name, j, proxy, io.load_rgb(self.run.proxy_rgb(name)),
                             io.load_rgb(self.run.guide(name, j)), self.config, device=self.device,
                             progress=self._span(progress, k, len(mine), f"{name} guide {j}: "))
        self.workers.barrier()
        if self.workers.is_main:
            stages.merge_warp_diagnostics(self.run, self.names, self.config.guides)

    def stage_finetune(self, progress: Progress) -> None:
        """Stage 3: finetune the source model on aligned pairs; write the checkpoint."""
        from hiralign import io

        if (self.run.checkpoint / "config.json").is_file():
            return
        model, ckpt = self.source_model()
        proxies = [io.load(self.run.proxy(n)) for n in self.names]
        synth = [io.load(self.run.synth(n, j)) for n in self.names for j in range(self.config.guides)] \
            if self.config.needs_synthesis else []
        stages.finetune_bundle(model, ckpt, self.config, proxies, synth, run=self.run,
                               provenance=stages.adapted_provenance(self.config, self.paths, self.targets(),
                                                                         self.scale.noise, ckpt.scale),
                               device=self.device, progress=progress, workers=self.workers,
                               noise=self.scale.train_noise)

    def stage_restore(self, progress: Progress) -> None:
        """Apply the adapted model to the observed targets (back on their own bands)."""
        from hiralign.models.checkpoint import load_checkpoint

        model, ckpt = load_checkpoint(self.run.checkpoint, self.device)
        mine = self.workers.todo("restore", list(enumerate(self.names)),
                                 lambda item: self.run.restored(item[1]).is_file())
        for k, (i, name) in enumerate(mine):
            stages.restore_item(self.run, name, self.targets()[i], model, ckpt, tiles=self.config.tiles,
                                device=self.device, progress=self._span(progress, k, len(mine), f"{name}: "),
                                scale=self.scale, fuse=self.config.proxy_fusion(ckpt.scale),
                                transforms=self.config.restore_transforms, consistent=self.config.consistency)

    # -------------------------------------------------------------- the whole
    def run_all(self) -> dict[str, Any]:
        """Check the chain, then run every stage not yet done; write and return the report."""
        self.preflight()  # a wrong model, device, band set or generator fails before the folder is touched
        resumed = self.prepare()
        begin = time.perf_counter()
        _ = self.scale  # decided once, from all targets, before the first stage (stored for resumption)
        self.workers.barrier()
        self.extra_timings["scale"] = round(time.perf_counter() - begin, 2)
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
        """Timings, the run's scale and noise model, the no-reference quality of every restoration
        and, with clean references, source-vs-adapted metrics; rank 0 writes it."""
        from hiralign.consistency import applies
        from hiralign.degrade import scale_factor  # the task's scale: no need to load the source model

        report: dict[str, Any] = {"hiralign_version": __version__, "resumed": resumed,
                                  "device": str(self.device), "processes": self.workers.size,
                                  "timings_s": dict(self.timings), **self.scale.to_report(),
                                  "proxy_source": self.config.proxy_for(scale_factor(self.config.task)).source,
                                  "fused_proxy_weight": self.config.proxy_fusion(scale_factor(self.config.task)),
                                  "projected_onto_observation": self.config.consistency and applies(self.config.task)}
        if self.workers.is_main:
            begin = time.perf_counter()
            report["quality"] = self.quality()
            self.extra_timings["quality"] = round(time.perf_counter() - begin, 2)
            report["other_timings_s"] = dict(self.extra_timings)
        if self.clean_paths and self.workers.is_main:
            report["metrics"] = self.score()
        if self.workers.is_main:
            stages.write_report(self.run, report)
        return report

    def quality(self) -> dict[str, Any]:
        """The no-reference quality report of each restored target (as stored) against its input."""
        from hiralign import io
        from hiralign.degrade import scale_factor

        return {name: stages.quality_item(target, io.load(self.run.restored(name)), self.config,
                                          scale_factor(self.config.task))
                for name, target in zip(self.names, self.targets())}

    def score(self) -> dict[str, Any]:
        """PSNR/SSIM/SAM of the source model's proxies and the adapted restorations."""
        from hiralign import io
        from hiralign.evaluate import metrics_report

        rows: dict[str, list[Any]] = {"source": [], "adapted": []}
        for name, clean_path in zip(self.names, self.clean_paths):
            scores = stages.score_item(name, io.load(clean_path, **self.load_options), io.load(self.run.proxy(name)),
                                       io.load(self.run.restored(name)), self.config.task, where=clean_path,
                                       scale=self.scale)
            for label, score in scores.items():
                rows[label].append(score)
        return {**metrics_report(rows), "peak": stages.score_peak(self.scale)}
