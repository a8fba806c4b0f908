"""Work-arounds for defects of the Qt bindings this application runs on.

PySide6 6.12.0 on CPython 3.11 drops one reference to ``True`` on every ``Signal.emit()``
made from Python (measured: 100 emits → ``sys.getrefcount(True)`` 100 lower, whatever the
slot). ``True`` starts with ~2000 references, so after a few thousand emissions — a minute
of panning a pyqtgraph view — the interpreter aborts with "Fatal Python error:
bool_dealloc". CPython 3.12 made ``True``/``False`` immortal (PEP 683), which hides the
defect there. :func:`protect_bool_singletons` gives them the same effective immortality on
older interpreters by raising their reference counts far beyond reach.
"""
from __future__ import annotations

import ctypes
import platform
import sys

#: Added to the reference counts of True and False (2**40 ≈ 10^12 emits of headroom).
_HEADROOM = 1 << 40


def protect_bool_singletons() -> bool:
    """Make ``True``/``False`` practically immortal on CPython < 3.12; returns True if applied.

    The reference count is the first ``Py_ssize_t`` of every CPython object; it is written
    while holding the GIL, so no other thread can race the update.
    """
    if sys.version_info >= (3, 12) or platform.python_implementation() != "CPython":
        return False
    for singleton in (True, False):
        count = ctypes.c_ssize_t.from_address(id(singleton))
        if count.value < _HEADROOM:
            count.value += _HEADROOM
    return True
