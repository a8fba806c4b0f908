"""Runs pipeline stages as jobs and commits their results into the session.

The runner snapshots what a stage needs from the session (cubes and arrays) on the GUI
thread, submits the matching :mod:`app.stages` function as a job, and applies each
finished item (the job's ``partial`` signal) to the session as it arrives, so views fill
in image by image. *Run all* chains the stages; its first job checks the whole chain
(:func:`hiralign.stages.preflight`) before anything is written, and cancelling stops the
chain. Because every result replaces one complete layer of one target (and clears what
derived from the old one), a cancelled stage leaves the session consistent.

Results are written into a run folder with the layout of ``hiralign adapt``
(:class:`~hiralign.runfolder.RunFolder`, locked while the window uses it), one per set of
settings: running a stage with other settings than the current folder's starts a new one
under the work folder.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from app import stages
from app.errors import ErrorReporter
from app.jobs import Job, JobManager
from app.session import Session
from hiralign.config import AdaptConfig
from hiralign.errors import ConfigError
from hiralign.runfolder import RunFolder, safe_names

log = logging.getLogger(__name__)


class PipelineRunner(QObject):
    """Starts stages, streams their results into the session, chains *Run all*.

    Signals:
        stage_started(str, object): a stage's job was submitted (name, :class:`Job`).
        stage_ended(str, str): a stage ended: (name, "finished" | "failed" | "cancelled").
        previewed(str, object): live previews of the running stage (images, loss points).
    """

    stage_started = Signal(str, object)
    stage_ended = Signal(str, str)
    previewed = Signal(str, object)

    def __init__(self, session: Session, jobs: JobManager, errors: ErrorReporter, work_dir: Path) -> None:
        super().__init__()
        self.session = session
        self.jobs = jobs
        self.errors = errors
        self.work_dir = Path(work_dir)
        self.current: Job | None = None
        self.current_stage = ""
        #: The run folder results are written into (None until a stage runs).
        self.run_folder: RunFolder | None = None
        self._folder_key: Any = None
        self._chain: list[str] = []
        self._config: AdaptConfig | None = None
        self._live_losses: list[tuple[int, float]] = []
        #: Wall time (s) and largest event-loop stall (ms) of each finished stage.
        self.timings: dict[str, dict[str, float]] = {}

    # -- public API --------------------------------------------------------------------
    def missing_inputs(self, stage: str) -> str | None:
        """Why ``stage`` cannot start with the session as it is (None when it can)."""
        targets = self.session.targets
        if not targets:
            return "Open target cubes first."
        if stage in ("generate", "finetune") and not any(t.proxy is not None for t in targets):
            return "Run the Proxy stage first."
        if stage == "warp" and not any(t.guides for t in targets):
            return "Run the Generate stage first."
        if stage == "evaluate" and self.session.adapted_checkpoint is None:
            return "Run the Finetune stage first."
        return None

    def start(self, stage: str, config: AdaptConfig) -> Job:
        """Run one stage now (or after the job already running on the device)."""
        self._chain = []
        return self._submit(stage, config, (stage,))

    def run_all(self, config: AdaptConfig) -> Job:
        """Proxy → Generate → Warp → Finetune → Evaluate, each after the previous succeeds.

        The first job checks the whole chain before it writes anything; proxy-only
        finetuning skips Generate and Warp, as ``hiralign adapt`` does.
        """
        chain = [s for s in stages.STAGES if config.needs_synthesis or s not in ("generate", "warp")]
        self._chain = chain[1:]
        return self._submit(chain[0], config, tuple(chain))

    def cancel(self) -> None:
        self._chain = []
        if self.current is not None:
            self.current.cancel()

    @property
    def busy(self) -> bool:
        return self.current is not None and self.current.is_active

    @property
    def live_losses(self) -> list[tuple[int, float]]:
        return list(self._live_losses)

    def names(self) -> list[str]:
        """The run-folder names of the session's targets (as ``hiralign adapt`` names them)."""
        return safe_names([t.path if t.path is not None else t.name for t in self.session.targets])

    # -- submitting --------------------------------------------------------------------
    def _folder_for(self, config: AdaptConfig) -> tuple[RunFolder, dict[str, Any]]:
        """The run folder of these settings and targets: the current one, or a new one."""
        from hiralign import __version__

        targets = self.session.targets
        record = {"hiralign_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "targets": [str(t.path) if t.path else t.name for t in targets],
                  "clean": [str(t.clean_path) for t in targets if t.clean_path is not None],
                  "load_options": {}, "settings": config.to_dict(), "written_by": "hiralign desktop application"}
        key = (tuple(record["targets"]), tuple(record["clean"]), repr(record["settings"]))
        if self.run_folder is None or key != self._folder_key:
            if self.run_folder is not None:
                self.run_folder.release()
            stamp, n = time.strftime("run-%Y%m%d-%H%M%S"), 1
            root = self.work_dir / stamp
            while root.exists():
                n += 1
                root = self.work_dir / f"{stamp}-{n}"
            self.run_folder, self._folder_key = RunFolder(root, owner="hiralign desktop application"), key
        return self.run_folder, record

    def _submit(self, stage: str, config: AdaptConfig, chain: tuple[str, ...]) -> Job:
        reason = self.missing_inputs(stage)
        if reason:
            raise ConfigError(reason)
        self._config = config
        run, record = self._folder_for(config)
        targets = self.session.targets
        job_run = stages.StageRun(config=config, run=run, record=record, chain=chain, names=tuple(self.names()),
                                  targets=tuple(t.degraded for t in targets),
                                  sources=tuple(str(t.path) if t.path else t.name for t in targets))
        work = getattr(self, f"_work_{stage}")(job_run)
        job = self.jobs.submit(stage, work, device=config.device)
        self.current, self.current_stage = job, stage
        started = time.monotonic()
        job.previewed.connect(self._on_preview)
        job.partial.connect(self._on_partial)
        job.finished.connect(lambda result: self._on_finished(stage, result))
        job.failed.connect(lambda summary, details: self.errors.show(f"{stage.capitalize()} failed: {summary}",
                                                                     details))
        job.ended.connect(lambda: self._on_ended(stage, job, started))
        self.stage_started.emit(stage, job)
        return job

    def _work_proxy(self, job: stages.StageRun) -> Callable:
        items = [(t.uid, i) for i, t in enumerate(self.session.targets)]
        return lambda progress: stages.run_proxy(job, items, progress)

    def _work_generate(self, job: stages.StageRun) -> Callable:
        items = [(t.uid, i, t.proxy_rgb) for i, t in enumerate(self.session.targets) if t.proxy is not None]
        return lambda progress: stages.run_generate(job, items, progress)

    def _work_warp(self, job: stages.StageRun) -> Callable:
        items = [(t.uid, i, t.proxy, t.proxy_rgb, list(t.guides)) for i, t in enumerate(self.session.targets)
                 if t.proxy is not None and t.guides]
        return lambda progress: stages.run_warp(job, items, progress)

    def _work_finetune(self, job: stages.StageRun) -> Callable:
        targets = [t for t in self.session.targets if t.proxy is not None]
        proxies = [t.proxy for t in targets]
        synthesized = [c for t in targets for c in t.synth]
        if job.config.finetune.pairs != "proxy-only" and not synthesized:
            raise ConfigError(f"finetuning mode {job.config.finetune.mode!r} needs synthesized cubes: run Generate "
                              "and Warp first, or choose mode proxy-only")
        self._live_losses = []
        return lambda progress: stages.run_finetune(job, proxies, synthesized, progress)

    def _work_evaluate(self, job: stages.StageRun) -> Callable:
        items = [(t.uid, i, t.clean, t.proxy, t.clean_path) for i, t in enumerate(self.session.targets)]
        adapted = Path(self.session.adapted_checkpoint)
        return lambda progress: stages.run_evaluate(job, adapted, items, progress)

    # -- results -----------------------------------------------------------------------
    def _on_partial(self, kind: str, value: Any) -> None:
        session = self.session
        index = session.index_of(value[0])
        if index is None:
            return  # the target was removed while the stage ran
        if kind == "proxy":
            session.set_proxy(index, value[1], value[2], value[3] if len(value) > 3 else None)
        elif kind == "guides":
            session.set_guides(index, value[1])
        elif kind == "warps":
            session.set_warps(index, value[1])
        elif kind == "evaluation":
            session.set_evaluation(index, value[1], value[2])
        elif kind == "quality":
            session.set_quality(index, value[1])

    def _on_preview(self, key: str, value: object) -> None:
        if key == "loss" and isinstance(value, dict):
            self._live_losses.append((int(value["step"]), float(value["loss"])))
        self.previewed.emit(key, value)

    def _on_finished(self, stage: str, result: Any) -> None:
        if stage == "finetune":
            self.session.set_training(Path(result["checkpoint"]), result["losses"])

    def _on_ended(self, stage: str, job: Job, started: float) -> None:
        if job.state == "finished":
            self.timings[stage] = {"seconds": time.monotonic() - started, "max_stall_ms": job.max_stall_ms}
        if self.current is job:
            self.current = None
        self.stage_ended.emit(stage, job.state)
        if self.jobs.closing:
            self._chain = []
            if self.run_folder is not None:
                self.run_folder.release()
        if job.state == "finished" and self._chain:
            following = self._chain.pop(0)
            if following == "evaluate" and self.missing_inputs(following):
                self._chain = []
                return  # nothing to score: the chain ends after finetuning
            try:
                self._submit(following, self._config, (following,))
            except Exception as exc:  # noqa: BLE001 - a chained stage that cannot start is shown
                self._chain = []
                self.errors.show_exception(exc)
        elif job.state != "finished":
            self._chain = []
