"""One path for every error the user should see: a dialog with a short message and
expandable details (the traceback).

Worker failures arrive through :meth:`ErrorReporter.show`; uncaught exceptions on the GUI
thread (``sys.excepthook``) and on any other thread (``threading.excepthook``) are routed
to the same dialog by :func:`install_excepthooks`. Exceptions from other threads are
marshalled onto the GUI thread through a queued signal.
"""
from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from hiralign.errors import describe

log = logging.getLogger(__name__)

#: More simultaneous dialogs than this are logged instead of shown (an error storm
#: should not bury the window).
MAX_OPEN_DIALOGS = 3


class ErrorReporter(QObject):
    """Shows error dialogs, from any thread.

    Attributes:
        dialogs: the dialogs currently open (tests inspect them).
        history: every (summary, details) reported, newest last.
    """

    _requested = Signal(str, str, str)

    def __init__(self, parent_widget: QWidget | None = None) -> None:
        super().__init__()
        self.parent_widget = parent_widget
        self.dialogs: list[QMessageBox] = []
        self.history: list[tuple[str, str]] = []
        self._requested.connect(self._show_now, Qt.ConnectionType.QueuedConnection)

    def show(self, summary: str, details: str = "", title: str = "hiralign — error") -> None:
        """Show an error dialog (safe to call from any thread)."""
        self._requested.emit(summary, details, title)

    def show_exception(self, exc: BaseException, title: str = "hiralign — error") -> None:
        """Show ``exc``: its message for user errors, type and message for internal ones."""
        summary, details = describe(exc)
        self.show(summary, details, title)

    def close_all(self) -> None:
        for dialog in list(self.dialogs):
            dialog.close()

    def _show_now(self, summary: str, details: str, title: str) -> None:
        self.history.append((summary, details))
        # The summary is what the Messages dock and the status bar show; the traceback stays
        # behind the dialog's "Show Details…" (and on stderr with ``python -m app --debug``).
        log.error("%s", summary)
        if details:
            log.debug("details of %r:\n%s", summary, details)
        self.dialogs = [d for d in self.dialogs if d.isVisible()]
        if len(self.dialogs) >= MAX_OPEN_DIALOGS:
            return
        dialog = QMessageBox(self.parent_widget)
        dialog.setIcon(QMessageBox.Icon.Critical)
        dialog.setWindowTitle(title)
        dialog.setText(summary)
        if details:
            dialog.setDetailedText(details)  # the "Show Details…" expander
        dialog.setStandardButtons(QMessageBox.StandardButton.Close)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _code, d=dialog: self._forget(d))
        self.dialogs.append(dialog)
        dialog.open()  # window-modal but non-blocking: workers keep streaming

    def _forget(self, dialog: QMessageBox) -> None:
        if dialog in self.dialogs:
            self.dialogs.remove(dialog)


def install_excepthooks(reporter: ErrorReporter) -> None:
    """Route uncaught exceptions of every thread to ``reporter``'s dialog."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        reporter.show_exception(exc.with_traceback(tb))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
