"""User-facing errors.

Every mistake a user can make (a missing file, a truncated cube, a wrong option) raises a
:class:`HiralignError` whose message names the file and the problem. The CLI prints that
message and exits non-zero without a traceback; the GUI shows it in a dialog. Like the
exceptions of ``spectral``, they also subclass the matching builtin so callers that
catch ``ValueError`` or ``FileNotFoundError`` keep working.
"""
from __future__ import annotations


class HiralignError(Exception):
    """Base class of every error caused by user input or settings."""


class InputError(HiralignError, ValueError):
    """A file or array cannot be used: wrong shape, type, values or metadata."""


class MissingFileError(HiralignError, FileNotFoundError):
    """A file or folder that the user named does not exist."""


class ConfigError(HiralignError, ValueError):
    """A setting is out of range or inconsistent with another."""


class ModelError(HiralignError, ValueError):
    """A checkpoint or model folder is missing, incomplete or for another task."""
