"""The Messages dock: every warning of the core (loader repairs, dark data, band
mismatches...) shown in the window instead of only on stderr.

The core reports through :mod:`logging` (``hiralign.io.common.warn_file`` and friends)
and :mod:`warnings` (routed to logging by ``logging.captureWarnings(True)``, as
``python -m app`` does). :class:`QtLogHandler` forwards records of any thread to the GUI
thread through a queued Qt signal; :class:`MessageLog` lists them with time and source.
"""
from __future__ import annotations

import logging
import time
import warnings

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

#: Records kept in the list (older ones are dropped: a long session must not grow without bound).
MAX_MESSAGES = 500
_LEVEL_COLOURS = {logging.WARNING: "#8a5a00", logging.ERROR: "#b00020", logging.CRITICAL: "#b00020"}


class _Bridge(QObject):
    record = Signal(int, str, str, float)


class QtLogHandler(logging.Handler):
    """A logging handler that emits each record as ``bridge.record(level, source, text, time)``.

    Emitting a Qt signal from a worker thread queues the call into the receiver's thread,
    so the list is only ever touched by the GUI thread.
    """

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.bridge = _Bridge()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.name == "py.warnings":  # "file:line: Category: message\n  source line"
                text = text.strip().splitlines()[0]
                text = text.split(": ", 2)[-1] if text.count(": ") >= 2 else text
            self.bridge.record.emit(record.levelno, record.name, text, record.created)
        except Exception:  # noqa: BLE001 - a logging handler must never raise
            self.handleError(record)


class MessageLog(QWidget):
    """The list of warnings and errors, newest last, with a Clear button.

    Signals:
        message(str): a new message arrived (the window shows it in the status bar).
    """

    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setToolTip("Warnings of the loaders and the pipeline (also written to stderr)")
        self.summary = QLabel("No messages.")
        clear = QPushButton("Clear", toolTip="Remove every message from the list")
        clear.clicked.connect(self.clear)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        self.setMinimumSize(300, 120)
        self.handler = QtLogHandler()
        self.handler.bridge.record.connect(self.add)

    def install(self, logger: logging.Logger | None = None) -> None:
        """Receive WARNING and above of ``logger`` (default: the root logger), and the core's warnings.

        :mod:`warnings` go to logging (``captureWarnings``), and the core's are shown every
        time: Python's default filter shows a message once per code location, so the second
        run's intensity warning, or the same file opened again, would reach nobody.
        """
        logging.captureWarnings(True)
        warnings.filterwarnings("always", category=UserWarning, module=r"(hiralign|app)(\.|$)")
        self._filter = warnings.filters[0]
        (logger or logging.getLogger()).addHandler(self.handler)

    def uninstall(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).removeHandler(self.handler)
        if getattr(self, "_filter", None) in warnings.filters:
            warnings.filters.remove(self._filter)
            warnings._filters_mutated()  # the filters' cache must forget the removed entry

    def add(self, level: int, source: str, text: str, created: float | None = None) -> None:
        """Append one message (any level; colour by severity)."""
        stamp = time.strftime("%H:%M:%S", time.localtime(created or time.time()))
        item = QListWidgetItem(f"{stamp}  {logging.getLevelName(level).lower()}  ·  {text}")
        item.setToolTip(f"{source}: {text}")
        item.setData(Qt.ItemDataRole.UserRole, (level, source, text))
        item.setForeground(QColor(_LEVEL_COLOURS.get(level, "#202020")))
        self.list.addItem(item)
        while self.list.count() > MAX_MESSAGES:
            self.list.takeItem(0)
        self.list.scrollToBottom()
        self._update_summary()
        self.message.emit(text)

    def messages(self) -> list[str]:
        """The texts listed, oldest first."""
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole)[2] for i in range(self.list.count())]

    def clear(self) -> None:
        self.list.clear()
        self._update_summary()

    def _update_summary(self) -> None:
        n = self.list.count()
        self.summary.setText(f"{n} message{'s' * (n != 1)} (newest last)." if n else "No messages.")
