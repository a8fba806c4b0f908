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


def describe(exc: BaseException) -> tuple[str, str]:
    """The one-line message a user sees for ``exc``, and the full traceback text.

    The CLI prints the summary on stderr (the traceback only with ``--debug``); the GUI
    shows it in a dialog with the traceback behind "Show Details…". User errors
    (:class:`HiralignError`) are their own message; running out of memory gets advice;
    anything else is an internal error named by its type.

    Args:
        exc: the exception that ended an operation.

    Returns:
        (summary, details): one line, and the formatted traceback ("" when it has none).
    """
    import traceback

    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) if exc.__traceback__ else ""
    if isinstance(exc, HiralignError):
        return str(exc), details
    if isinstance(exc, MemoryError):
        return "Out of memory: try a smaller image, tile, batch size or fewer guides.", details
    return f"Internal error: {type(exc).__name__}: {exc}", details


class PreflightError(ConfigError, ModelError):
    """A requested chain of stages cannot run; the message lists every problem, one per line.

    Raised before anything is written. It is both a :class:`ConfigError` and a
    :class:`ModelError`, because the problems it collects are of either kind.
    """
