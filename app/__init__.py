"""The hiralign desktop application (PySide6 + pyqtgraph) over the Qt-free core.

Run it with ``python -m app`` (or ``make run``). Only this package imports Qt; the only
module that knows about threads is :mod:`app.jobs`.
"""
from __future__ import annotations

import os

# Compiled libraries that start their own thread pools (OpenMP: torch, BM4D's libbm4d, BLAS)
# read this once, when they load: every core but one, so the GUI thread always finds a free
# core (BM4D on both of two cores stalled the event loop 100–190 ms, with one 34 ms). Set
# before any of them is imported; a value the user exported wins.
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) - 1)))

from app._compat import protect_singletons  # noqa: E402 - after the thread setting above
from hiralign import __version__  # noqa: E402

protect_singletons()  # before any Qt signal is emitted (see app._compat)

__all__ = ["__version__"]
