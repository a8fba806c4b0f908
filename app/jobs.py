"""Background jobs: the only module of the application that knows about threads.

A :class:`Job` wraps a plain function ``fn(progress) -> result`` that runs on its own
:class:`QThread`. The function receives a :class:`QtProgress`, a
:class:`hiralign.progress.Progress` whose ``report``/``preview`` become queued Qt signals
and whose ``check()`` raises :class:`hiralign.progress.Cancelled` once the user pressed
Cancel. Only plain data (numpy arrays, cubes, dicts, paths) crosses threads: stage
functions load their torch models inside the worker and hand back arrays.

The :class:`JobManager` runs one heavy job at a time per device and queues the rest;
:meth:`JobManager.shutdown` cancels everything and waits for the threads, so closing the
window never leaves a worker writing behind the user's back. While any job runs, an
:class:`EventLoopProbe` measures how long the GUI event loop stalls (a 10 ms QTimer that
records how late it fires).
"""
from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal

from hiralign.errors import describe
from hiralign.progress import Cancelled, CancelToken

log = logging.getLogger(__name__)


class QtProgress:
    """The :class:`~hiralign.progress.Progress` a worker function receives.

    ``report``, ``preview`` and ``partial`` are called on the worker thread and forwarded
    as signals of the owning job (queued onto the GUI thread). Reports are throttled to one
    per ``min_interval_s`` (plus the final one) and image previews to one per key per
    ``preview_interval_s`` so a tight loop cannot flood the event loop; small preview values
    (dicts such as loss points) are always delivered. :meth:`partial` carries a finished
    item's result (never throttled, never mixed with previews).
    """

    def __init__(self, job: Job, token: CancelToken, min_interval_s: float = 0.05,
                 preview_interval_s: float = 0.2) -> None:
        self._job = job
        self.token = token
        self._min_interval = min_interval_s
        self._preview_interval = preview_interval_s
        self._last_report = 0.0
        self._last_preview: dict[str, float] = {}

    def report(self, done: float, total: float, message: str = "") -> None:
        now = time.monotonic()
        final = total > 0 and done >= total
        if final or now - self._last_report >= self._min_interval:
            self._last_report = now
            self._job.progressed.emit(float(done), float(total), str(message))

    def preview(self, key: str, value: Any) -> None:
        now = time.monotonic()
        if isinstance(value, np.ndarray):
            if now - self._last_preview.get(key, 0.0) < self._preview_interval:
                return
            self._last_preview[key] = now
        self._job.previewed.emit(str(key), value)

    def partial(self, kind: str, value: Any) -> None:
        """Deliver one finished item (e.g. one target's proxy) as the job's ``partial`` signal."""
        self._job.partial.emit(str(kind), value)

    def check(self) -> None:
        if self.token.cancelled:
            raise Cancelled("cancelled by the user")


#: Devices whose jobs only read files or run light numpy (no torch compute to limit).
LIGHT_DEVICES = ("io", "probe")


def worker_torch_threads(cores: int | None = None) -> int:
    """Torch's intra-op threads for a heavy job: every core but one, which stays with the GUI thread.

    With as many torch threads as cores, the event loop waited behind them for the CPU
    (stalls of 100–250 ms on two cores; FACTS.md saw a >100× slowdown with one core taken).
    """
    import os

    return max(1, (cores if cores is not None else os.cpu_count() or 1) - 1)


def _limit_torch_threads() -> None:
    # Per worker thread: with OpenMP the thread count is an attribute of the calling thread,
    # and every job runs on a new one. Heavy jobs are torch stages, which import it anyway.
    import torch

    torch.set_num_threads(worker_torch_threads())


class _WorkerThread(QThread):
    """Runs one job's function; reports its outcome through the job's signals."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job

    def run(self) -> None:  # runs on the worker thread
        job = self._job
        progress = QtProgress(job, job.token)
        try:
            progress.check()
            if job.device not in LIGHT_DEVICES:
                _limit_torch_threads()
            result = job.fn(progress)
        except Cancelled:
            job.outcome_ready.emit("cancelled", None)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the dialog
            summary, details = describe(exc)
            log.debug("job %s failed:\n%s", job.name, details)
            job.outcome_ready.emit("failed", (summary, details))
        else:
            job.outcome_ready.emit("finished", result)


class Job(QObject):
    """One unit of background work and its life-cycle signals (all on the GUI thread).

    Signals:
        started: the worker thread began running.
        progressed(done, total, message): throttled progress reports.
        previewed(key, value): live previews (images, loss points), possibly throttled.
        partial(kind, value): one finished item's result, as it completes (never throttled).
        finished(result): the function returned ``result``.
        failed(summary, details): it raised; short message and traceback text.
        cancelled: it stopped at a ``check()`` after :meth:`cancel`, or never started.
        ended: emitted after any of the three outcomes.
    """

    started = Signal()
    progressed = Signal(float, float, str)
    previewed = Signal(str, object)
    partial = Signal(str, object)
    finished = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    ended = Signal()
    outcome_ready = Signal(str, object)  # internal: worker thread -> GUI thread

    def __init__(self, name: str, fn: Callable[[QtProgress], Any], device: str = "cpu") -> None:
        super().__init__()
        self.name = name
        self.fn = fn
        self.device = device
        self.token = CancelToken()
        self.state = "queued"  # queued | running | finished | failed | cancelled
        self.started_at: float | None = None
        self.fraction = 0.0
        self.max_stall_ms = 0.0
        self._thread: _WorkerThread | None = None
        self.progressed.connect(self._track_fraction)

    # -- GUI-thread API ---------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop at its next ``check()`` (a queued job is dropped)."""
        self.token.cancel()

    @property
    def is_active(self) -> bool:
        return self.state in ("queued", "running")

    def eta_seconds(self) -> float | None:
        """Remaining time extrapolated from the elapsed time and the reported fraction."""
        if self.started_at is None or self.fraction <= 0.01:
            return None
        elapsed = time.monotonic() - self.started_at
        return elapsed * (1.0 - self.fraction) / self.fraction

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the worker thread exits (True) or ``timeout_ms`` passes (False)."""
        if self._thread is None:
            return True
        return self._thread.wait(timeout_ms) if timeout_ms >= 0 else self._thread.wait()

    def _track_fraction(self, done: float, total: float, _message: str) -> None:
        if total > 0:
            self.fraction = min(max(done / total, 0.0), 1.0)

    def _start(self) -> None:
        self.state = "running"
        self.started_at = time.monotonic()
        self._thread = _WorkerThread(self)
        self.outcome_ready.connect(self._conclude)
        self.started.emit()
        self._thread.start()

    def _conclude(self, outcome: str, payload: object) -> None:
        if self._thread is not None:
            self._thread.wait()  # the run() body has returned; joining is immediate
        self.state = outcome
        if outcome == "finished":
            self.finished.emit(payload)
        elif outcome == "failed":
            summary, details = payload  # type: ignore[misc]
            self.failed.emit(summary, details)
        else:
            self.cancelled.emit()
        self.ended.emit()


class EventLoopProbe(QObject):
    """Measures how late a 10 ms timer fires while work runs: the GUI's worst stall.

    A stall is the time between two ticks minus the interval; a responsive GUI keeps it
    well under 100 ms.
    """

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last: float | None = None
        self.max_stall_ms = 0.0
        self.ticks = 0

    def start(self) -> None:
        self.max_stall_ms = 0.0
        self.ticks = 0
        self._last = time.monotonic()
        self._timer.start()

    def stop(self) -> float:
        """Stop measuring; returns the largest stall seen (ms)."""
        self._timer.stop()
        self._last = None
        return self.max_stall_ms

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def _tick(self) -> None:
        now = time.monotonic()
        if self._last is not None:
            stall = (now - self._last) * 1000.0 - self.interval_ms
            self.max_stall_ms = max(self.max_stall_ms, stall)
        self._last = now
        self.ticks += 1


class JobManager(QObject):
    """Runs jobs one at a time per device; queues the rest; cancels all on shutdown.

    Signals:
        job_started(job), job_ended(job): life cycle, for progress bars and buttons.
        busy_changed(bool): whether any job is queued or running.
    """

    job_started = Signal(object)
    job_ended = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queues: dict[str, collections.deque[Job]] = collections.defaultdict(collections.deque)
        self._running: dict[str, Job] = {}
        self._closing = False
        self.probe = EventLoopProbe(parent=self)
        #: Largest event-loop stall (ms) measured over every job since start-up.
        self.max_stall_ms = 0.0

    def submit(self, name: str, fn: Callable[[QtProgress], Any], device: str = "cpu") -> Job:
        """Queue ``fn`` to run on a worker thread; returns its :class:`Job` (connect to it)."""
        if self._closing:
            raise RuntimeError("the application is closing; no new jobs")
        job = Job(name, fn, device=_device_key(device))
        job.ended.connect(lambda job=job: self._on_ended(job))
        was_busy = self.busy
        self._queues[job.device].append(job)
        # Start on the next event-loop turn so callers can connect signals first.
        QTimer.singleShot(0, lambda key=job.device: self._start_next(key))
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    @property
    def busy(self) -> bool:
        return bool(self._running) or any(self._queues.values())

    @property
    def closing(self) -> bool:
        """True once :meth:`shutdown` began: no new jobs are accepted."""
        return self._closing

    def active_jobs(self) -> list[Job]:
        """Running jobs first, then queued ones."""
        return list(self._running.values()) + [j for q in self._queues.values() for j in q]

    def cancel_all(self) -> None:
        for job in self.active_jobs():
            job.cancel()

    def shutdown(self, timeout_ms: int = 60000) -> bool:
        """Cancel every job and wait for running workers; True when all have stopped."""
        self._closing = True
        for queue in self._queues.values():
            while queue:
                job = queue.popleft()
                job.cancel()
                job.state = "cancelled"
                job.cancelled.emit()
        ok = True
        for job in list(self._running.values()):
            job.cancel()
            ok = job.wait(timeout_ms) and ok
        self.probe.stop()
        return ok

    def _start_next(self, device: str) -> None:
        if device in self._running or self._closing:
            return
        queue = self._queues[device]
        while queue:
            job = queue.popleft()
            if job.token.cancelled:  # cancelled while queued: never starts
                job.state = "cancelled"
                job.cancelled.emit()
                job.ended.emit()
                continue
            self._running[device] = job
            if not self.probe.running:
                self.probe.start()
            job.max_stall_ms = 0.0
            self.job_started.emit(job)
            job._start()
            return

    def _on_ended(self, job: Job) -> None:
        if self._running.get(job.device) is job:
            del self._running[job.device]
        if self.probe.running:
            job.max_stall_ms = self.probe.max_stall_ms
            self.max_stall_ms = max(self.max_stall_ms, self.probe.max_stall_ms)
            if not self._running:
                self.probe.stop()
        log.info("job %r %s (max event-loop stall %.0f ms)", job.name, job.state, job.max_stall_ms)
        self.job_ended.emit(job)
        if not self._closing:
            self._start_next(job.device)
        if not self.busy:
            self.busy_changed.emit(False)


def _device_key(device: str) -> str:
    """Jobs on "cuda" and "cuda:0" share one queue; "auto" resolves like the core does."""
    name = (device or "cpu").lower()
    if name == "auto":
        import torch

        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = "cuda:0"
    return name

