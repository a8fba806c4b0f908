"""Background jobs: progress, previews, cancellation, failures, queueing, error routing."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hiralign.errors import InputError

# The offscreen platform warns that it cannot resize native windows; that is not our defect.
pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]


@pytest.fixture
def jobs(qtbot):
    from app.jobs import JobManager

    manager = JobManager()
    yield manager
    manager.shutdown()


def _counting(steps: int, delay: float = 0.005, fail_at: int | None = None):
    def work(progress):
        for i in range(steps):
            progress.check()
            if i == fail_at:
                raise InputError("cube.hdr: band 3 is truncated")
            time.sleep(delay)
            progress.report(i + 1, steps, f"step {i + 1}")
            progress.partial("step", np.full((2, 2), i, dtype=np.float32))
        return {"steps": steps}
    return work


def test_job_reports_progress_previews_and_result_from_a_worker_thread(qtbot, jobs):
    seen_threads = []

    def work(progress):
        seen_threads.append(threading.current_thread())
        return _counting(20)(progress)

    job = jobs.submit("count", work)
    reports, previews = [], []
    job.progressed.connect(lambda d, t, m: reports.append((d, t, m)))
    job.partial.connect(lambda k, v: previews.append(v))
    with qtbot.waitSignal(job.finished, timeout=10000) as blocker:
        pass
    assert blocker.args == [{"steps": 20}]
    assert seen_threads[0] is not threading.main_thread()
    assert reports[-1] == (20.0, 20.0, "step 20")
    assert len(previews) == 20  # finished items (partial results) are never throttled
    assert previews[-1][0, 0] == 19
    assert job.state == "finished" and not jobs.busy


def test_cancel_stops_at_the_next_check_and_nothing_is_returned(qtbot, jobs):
    job = jobs.submit("long", _counting(10000, delay=0.002))
    finished = []
    job.finished.connect(finished.append)
    qtbot.waitUntil(lambda: job.fraction > 0.001, timeout=10000)
    with qtbot.waitSignal(job.cancelled, timeout=10000):
        job.cancel()
    assert job.state == "cancelled" and finished == []
    assert 0 < job.fraction < 1
    assert not jobs.busy


def test_failure_carries_a_short_message_and_the_traceback(qtbot, jobs):
    job = jobs.submit("fails", _counting(10, fail_at=3))
    with qtbot.waitSignal(job.failed, timeout=10000) as blocker:
        pass
    summary, details = blocker.args
    assert summary == "cube.hdr: band 3 is truncated"
    assert "Traceback" in details and "InputError" in details


def test_internal_errors_are_labelled_as_such(qtbot, jobs):
    def broken(progress):
        return [1][5]

    job = jobs.submit("broken", broken)
    with qtbot.waitSignal(job.failed, timeout=10000) as blocker:
        pass
    assert blocker.args[0].startswith("Internal error: IndexError")


def test_one_job_at_a_time_per_device_the_rest_queue(qtbot, jobs):
    order = []

    def make(name):
        def work(progress):
            order.append(f"{name} start")
            time.sleep(0.05)
            order.append(f"{name} end")
        return work

    first, second = jobs.submit("a", make("a"), device="cpu"), jobs.submit("b", make("b"), device="cpu")
    other = jobs.submit("io", make("io"), device="io")
    with qtbot.waitSignals([first.ended, second.ended, other.ended], timeout=10000):
        pass
    cpu_order = [e for e in order if not e.startswith("io")]
    assert cpu_order == ["a start", "a end", "b start", "b end"]


def test_a_queued_job_cancelled_before_it_starts_never_runs(qtbot, jobs):
    ran = []
    first = jobs.submit("a", lambda p: time.sleep(0.1))
    second = jobs.submit("b", lambda p: ran.append(1))
    second.cancel()
    with qtbot.waitSignals([first.ended, second.cancelled], timeout=10000):
        pass
    assert ran == [] and second.state == "cancelled"


def test_shutdown_cancels_and_waits_for_running_workers(qtbot, jobs):
    job = jobs.submit("long", _counting(100000, delay=0.001))
    qtbot.waitUntil(lambda: job.state == "running" and job.fraction > 0, timeout=10000)
    assert jobs.shutdown(timeout_ms=10000)
    assert not job._thread.isRunning()
    with pytest.raises(RuntimeError):
        jobs.submit("late", lambda p: None)


def test_event_loop_probe_measures_the_longest_stall(qtbot):
    from app.jobs import EventLoopProbe

    probe = EventLoopProbe(interval_ms=10)
    probe.start()
    qtbot.wait(50)
    time.sleep(0.15)  # block the GUI thread on purpose
    qtbot.wait(30)
    stall = probe.stop()
    assert 100 <= stall < 1000


def test_error_reporter_shows_a_dialog_with_expandable_details(qtbot):
    from app.errors import ErrorReporter

    reporter = ErrorReporter()
    reporter.show("Short message", "Traceback (most recent call last):\n  ...")
    qtbot.waitUntil(lambda: bool(reporter.dialogs))
    dialog = reporter.dialogs[0]
    assert dialog.text() == "Short message"
    assert dialog.detailedText().startswith("Traceback")
    reporter.close_all()


def test_excepthooks_route_uncaught_exceptions_of_any_thread_to_the_dialog(qtbot, monkeypatch):
    import sys

    from app.errors import ErrorReporter, install_excepthooks

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    reporter = ErrorReporter()
    install_excepthooks(reporter)

    def crash():
        raise ValueError("thread went wrong")

    thread = threading.Thread(target=crash)
    thread.start()
    thread.join()
    try:
        raise InputError("gui.mat: no cube inside")
    except InputError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: len(reporter.history) == 2)
    summaries = sorted(s for s, _ in reporter.history)
    assert summaries == ["Internal error: ValueError: thread went wrong", "gui.mat: no cube inside"]
    reporter.close_all()


def test_none_and_true_survive_pyside_over_releases(qtbot):
    """PySide6 6.12 drops a reference to True per emit and to None per void call (app._compat)."""
    import sys

    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    import app  # noqa: F401 - importing the package applies the protection

    class Emitter(QObject):
        fired = Signal(int)

    emitter, label = Emitter(), QLabel()
    emitter.fired.connect(lambda value: None)
    for k in range(20000):
        emitter.fired.emit(k)
        label.setText("x")
    assert sys.getrefcount(None) > 2**39 and sys.getrefcount(True) > 2**39
