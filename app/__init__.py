"""The hiralign desktop application (PySide6 + pyqtgraph) over the Qt-free core.

Run it with ``python -m app`` (or ``make run``). Only this package imports Qt; the only
module that knows about threads is :mod:`app.jobs`.
"""
from __future__ import annotations

from app._compat import protect_singletons
from hiralign import __version__

protect_singletons()  # before any Qt signal is emitted (see app._compat)

__all__ = ["__version__"]
