"""Work-arounds for defects of the Qt bindings this application runs on.

PySide6 6.12.0 on CPython 3.11 over-releases two singletons (measured per 1000 calls):

- every ``Signal.emit()`` made from Python drops one reference to ``True``;
- every call of a Qt method returning ``void`` (``label.setText``, ``processEvents``…) and
  every Python slot invoked from C++ (a ``QTimer`` timeout, ``valueChanged``…) drops one
  reference to ``None``.

``True`` starts with ~2000 references and ``None`` with a few tens of thousands, so the
interpreter aborts with "Fatal Python error: bool_dealloc" after a minute of panning and
"none_dealloc" after ~30 minutes of a running stage (its progress timer alone calls 100
slots a second). PySide6 6.11.3 does neither. CPython 3.12 made these objects immortal
(PEP 683), which hides the defect there. :func:`protect_singletons` gives ``None``,
``True`` and ``False`` the same effective immortality on older interpreters by raising
their reference counts far beyond reach.
"""
from __future__ import annotations

import ctypes
import platform
import sys

#: Added to the reference counts of None, True and False (2**40 ≈ 10^12 calls of headroom).
_HEADROOM = 1 << 40


def protect_singletons() -> bool:
    """Make ``None``/``True``/``False`` practically immortal on CPython < 3.12; True if applied.

    The reference count is the first ``Py_ssize_t`` of every CPython object; it is written
    while holding the GIL, so no other thread can race the update.
    """
    if sys.version_info >= (3, 12) or platform.python_implementation() != "CPython":
        return False
    for singleton in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(singleton))
        if count.value < _HEADROOM:
            count.value += _HEADROOM
    return True
