"""Progress reporting and cancellation shared by every long stage.

A stage receives a :class:`Progress` and calls ``report`` as it advances, ``preview``
with small numpy images worth showing live, and ``check`` at safe points, which raises
:class:`Cancelled` when the user asked to stop. Stages must leave files consistent when
``Cancelled`` propagates (write to temporary names, rename when complete).
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np


class Cancelled(Exception):
    """Raised by :meth:`Progress.check` when the user cancelled the running work."""


@runtime_checkable
class Progress(Protocol):
    """What a long-running stage may tell its caller."""

    def report(self, done: float, total: float, message: str = "") -> None:
        """Report that ``done`` of ``total`` units are finished."""

    def preview(self, key: str, value: Any) -> None:
        """Offer an intermediate result (numpy array or small dict) for live display."""

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""


class NullProgress:
    """Progress that ignores everything and never cancels."""

    def report(self, done: float, total: float, message: str = "") -> None:
        pass

    def preview(self, key: str, value: Any) -> None:
        pass

    def check(self) -> None:
        pass


class CancelToken:
    """Thread-safe flag that a UI sets and a worker's progress checks."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class CallbackProgress:
    """Progress that forwards to plain callbacks and honours a :class:`CancelToken`.

    Args:
        on_report: called with ``(done, total, message)``.
        on_preview: called with ``(key, value)``.
        token: cancellation flag checked by :meth:`check`.
    """

    def __init__(
        self,
        on_report: Callable[[float, float, str], None] | None = None,
        on_preview: Callable[[str, Any], None] | None = None,
        token: CancelToken | None = None,
    ) -> None:
        self._on_report = on_report
        self._on_preview = on_preview
        self.token = token or CancelToken()

    def report(self, done: float, total: float, message: str = "") -> None:
        if self._on_report is not None:
            self._on_report(done, total, message)

    def preview(self, key: str, value: Any) -> None:
        if self._on_preview is not None:
            self._on_preview(key, value)

    def check(self) -> None:
        if self.token.cancelled:
            raise Cancelled("cancelled by the user")


class SubProgress:
    """Maps a child stage's 0..total onto the span [start, end] of a parent's 0..1.

    Used by pipelines that chain stages so one bar covers the whole job.
    """

    def __init__(self, parent: Progress, start: float, end: float, prefix: str = "") -> None:
        self.parent = parent
        self.start = float(start)
        self.end = float(end)
        self.prefix = prefix

    def report(self, done: float, total: float, message: str = "") -> None:
        frac = 0.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        text = f"{self.prefix}{message}" if self.prefix else message
        self.parent.report(self.start + frac * (self.end - self.start), 1.0, text)

    def preview(self, key: str, value: Any) -> None:
        self.parent.preview(key, value)

    def check(self) -> None:
        self.parent.check()


class ConsoleProgress:
    """A terminal progress bar (tqdm on stderr) for the CLI; never cancels by itself.

    Ctrl-C in the CLI raises KeyboardInterrupt, which stages treat like cancellation.
    """

    def __init__(self, description: str = "", disable: bool | None = None) -> None:
        from tqdm import tqdm

        if disable is None:
            disable = not sys.stderr.isatty()
        self._bar = tqdm(total=1000, desc=description, file=sys.stderr, disable=disable,
                         bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")
        self._last_log = 0.0
        self._quiet = not disable
        self._description = description

    def report(self, done: float, total: float, message: str = "") -> None:
        frac = 0.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        self._bar.n = int(frac * 1000)
        if message:
            self._bar.set_postfix_str(message[:60], refresh=False)
        self._bar.refresh()
        now = time.monotonic()
        if not self._quiet and now - self._last_log > 10.0:
            # Without a terminal, print a sparse log line instead of a bar.
            self._last_log = now
            print(f"[{self._description}] {100 * frac:5.1f}% {message}", file=sys.stderr, flush=True)

    def preview(self, key: str, value: Any) -> None:
        pass

    def check(self) -> None:
        pass

    def close(self) -> None:
        self._bar.close()


def as_progress(progress: Progress | None) -> Progress:
    """Return ``progress`` or a :class:`NullProgress` when it is None."""
    return NullProgress() if progress is None else progress


def preview_image(array: np.ndarray, max_side: int = 256) -> np.ndarray:
    """Decimate an (H, W[, C]) array so previews crossing threads stay small."""
    step = max(1, int(np.ceil(max(array.shape[:2]) / max_side)))
    return np.ascontiguousarray(array[::step, ::step])
