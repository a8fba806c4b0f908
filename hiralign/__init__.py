"""hiralign: adapt hyperspectral restoration networks to a target domain (HIR-ALIGN).

The core library never imports Qt; the GUI lives in ``app/``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from hiralign.cube import Cube  # noqa: E402
from hiralign.errors import HiralignError, InputError  # noqa: E402
from hiralign.progress import Cancelled, NullProgress, Progress  # noqa: E402

__all__ = ["Cube", "HiralignError", "InputError", "Cancelled", "NullProgress", "Progress", "__version__"]
