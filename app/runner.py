"""Runs pipeline stages as jobs and commits their results into the session.

The runner snapshots what a stage needs from the session (cubes and arrays) on the GUI
thread, submits the matching :mod:`app.stages` function as a job, and applies each
streamed ``"result-…"`` preview to the session as it arrives, so views fill in image by
image. *Run all* chains the stages; cancelling stops the chain. Because every result
replaces one complete layer of one target (and clears what derived from the old one), a
cancelled stage leaves the session consistent: finished targets keep their new layer,
the others keep their old state.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from app import stages
from app.errors import ErrorReporter
from app.jobs import Job, JobManager
from app.session import Session
from hiralign.errors import ConfigError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    """The pipeline panel's choices.

    Attributes:
        task: degradation task (hiralign.degrade.TASKS).
        source_model: folder of the source checkpoint (shipped or chosen).
        generator: generator name; ``generator_settings`` its settings (a dataclass or dict).
        guides_per_proxy: M, guides generated per proxy (paper: 3).
        ratio: r, synthesized:proxy sampling ratio of finetuning patches (paper: 3).
        steps: finetuning steps.
        device: "auto", "cpu" or "cuda".
        warp_config: the warp settings (a WarpConfig; None = the paper's defaults).
        seed: seeds generation and finetuning.
    """

    task: str = "gaussian"
    source_model: Path | None = None
    generator: str = "patchnn"
    generator_settings: Any = None
    guides_per_proxy: int = 3
    ratio: float = 3.0
    steps: int = 400
    device: str = "auto"
    warp_config: Any = None
    seed: int = 0


def generator_settings(settings: PipelineSettings) -> dict[str, Any]:
    """Every setting of the chosen generator as a dict (its defaults where the panel set none)."""
    chosen = settings.generator_settings
    if chosen is None:
        from hiralign.generate import settings_class

        chosen = settings_class(settings.generator)()
    return dataclasses.asdict(chosen) if dataclasses.is_dataclass(chosen) else dict(chosen)


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
        self._chain: list[str] = []
        self._settings = PipelineSettings()
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

    def start(self, stage: str, settings: PipelineSettings) -> Job:
        """Run one stage now (or after the job already running on the device)."""
        self._chain = []
        return self._submit(stage, settings)

    def run_all(self, settings: PipelineSettings) -> Job:
        """Proxy → Generate → Warp → Finetune → Evaluate, each after the previous succeeds."""
        self._chain = list(stages.STAGES[1:])
        return self._submit(stages.STAGES[0], settings)

    def cancel(self) -> None:
        self._chain = []
        if self.current is not None:
            self.current.cancel()

    @property
    def busy(self) -> bool:
        return self.current is not None and self.current.is_active

    # -- submitting --------------------------------------------------------------------
    def _submit(self, stage: str, settings: PipelineSettings) -> Job:
        reason = stages.unavailable_stages().get(stage) or self.missing_inputs(stage)
        if reason:
            raise ConfigError(reason)
        self._settings = settings
        work = getattr(self, f"_work_{stage}")(settings)
        job = self.jobs.submit(stage, work, device=settings.device)
        self.current, self.current_stage = job, stage
        started = time.monotonic()
        job.previewed.connect(self._on_preview)
        job.finished.connect(lambda result: self._on_finished(stage, result))
        job.failed.connect(lambda summary, details: self.errors.show(f"{stage.capitalize()} failed: {summary}",
                                                                     details))
        job.ended.connect(lambda: self._on_ended(stage, job, started))
        self.stage_started.emit(stage, job)
        return job

    def _work_proxy(self, s: PipelineSettings) -> Callable:
        if s.source_model is None:
            raise ConfigError(f"no source model for task {s.task!r}: choose a checkpoint folder")
        items = [(t.uid, t.degraded) for t in self.session.targets]
        self.session.source_model = Path(s.source_model)
        return lambda progress: stages.run_proxy(Path(s.source_model), items, s.device, progress)

    def _work_generate(self, s: PipelineSettings) -> Callable:
        items = [(t.uid, stages.proxy_rgb(t.proxy)) for t in self.session.targets if t.proxy is not None]
        settings = generator_settings(s)
        if "device" in settings:  # the panel's device choice applies to every stage
            settings["device"] = s.device
        return lambda progress: stages.run_generate(s.generator, settings, items, s.guides_per_proxy, s.seed,
                                                    progress)

    def _work_warp(self, s: PipelineSettings) -> Callable:
        from hiralign.warp import WarpConfig

        config = s.warp_config or WarpConfig()
        items = [(t.uid, t.proxy, list(t.guides)) for t in self.session.targets if t.proxy is not None and t.guides]
        return lambda progress: stages.run_warp(config, items, s.device, progress)

    def _work_finetune(self, s: PipelineSettings) -> Callable:
        if s.source_model is None:
            raise ConfigError(f"no source model for task {s.task!r}: choose a checkpoint folder")
        targets = [t for t in self.session.targets if t.proxy is not None]
        out_dir = self.work_dir / time.strftime("adapted-%Y%m%d-%H%M%S")
        request = stages.FinetuneRequest(
            source_model=Path(s.source_model), task=s.task, proxies=tuple(t.proxy for t in targets),
            synthesized=tuple(c for t in targets for c in t.synth), steps=s.steps, ratio=s.ratio,
            out_dir=out_dir, device=s.device, seed=s.seed,
            provenance=(("generator", s.generator), ("guides_per_proxy", s.guides_per_proxy)))
        self._live_losses: list[tuple[int, float]] = []
        return lambda progress: stages.run_finetune(request, progress)

    def _work_evaluate(self, s: PipelineSettings) -> Callable:
        items = [(t.uid, t.degraded, t.clean, t.proxy) for t in self.session.targets]
        adapted, source = Path(self.session.adapted_checkpoint), s.source_model
        return lambda progress: stages.run_evaluate(adapted, source, items, s.device, progress)

    # -- results -----------------------------------------------------------------------
    def _on_preview(self, key: str, value: object) -> None:
        session = self.session
        if key.startswith("result-"):
            uid = value[0]
            index = session.index_of(uid)
            if index is None:
                return  # the target was removed while the stage ran
            if key == "result-proxy":
                session.set_proxy(index, value[1])
            elif key == "result-guides":
                session.set_guides(index, value[1])
            elif key == "result-warps":
                session.set_warps(index, value[1])
            elif key == "result-evaluation":
                session.set_evaluation(index, value[1], value[2])
            return
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
        if job.state == "finished" and self._chain:
            following = self._chain.pop(0)
            reason = stages.unavailable_stages().get(following) or self.missing_inputs(following)
            if following == "evaluate" and reason:
                self._chain = []
                return  # nothing to score: the chain ends after finetuning
            try:
                self._submit(following, self._settings)
            except Exception as exc:  # noqa: BLE001 - a chained stage that cannot start is shown
                self._chain = []
                self.errors.show_exception(exc)
        elif job.state != "finished":
            self._chain = []

    @property
    def live_losses(self) -> list[tuple[int, float]]:
        return list(getattr(self, "_live_losses", []))
