"""Atomic writes: a file or folder appears complete or not at all.

Writers create a temporary sibling (same filesystem), fill it, flush it and rename it
over the target with :func:`os.replace`, so a crash or cancel never leaves a partial
output behind and never destroys an existing file.

A write that fails (disk full, permission denied, the folder removed meanwhile) removes
its temporary, keeps the previous ``target`` as it was and raises :class:`OutputError`,
whose message names the target and the reason ("RUN/proxies/a.hdr: cannot write: No space
left on device"). Libraries that hide the operating system's error in their own exception
(safetensors, h5py, torch) are recognised by the errno they quote, or by a full disk.

A process killed with SIGKILL cannot remove its temporaries; they are hidden names
(``.NAME.XXXXXXXX.tmp…``) that :func:`remove_stale_temporaries` deletes once the writer
is known to be gone (a run folder does so when it is locked, see :mod:`hiralign.runfolder`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from hiralign.errors import HiralignError

#: Names of the temporaries this module creates: ``.<stem>.<8 random>.tmp[<suffix>]``
#: (files, from mkstemp) and ``.<name>.<8 random>.tmp`` (folders, from mkdtemp).
TEMP_NAME = re.compile(r"^\..*\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$")
#: Below this many free bytes an opaque library failure during a write is reported as a full disk.
FULL_DISK_BYTES = 1 << 20
# fsync is not supported everywhere (some network and virtual filesystems); those errors
# say nothing about the data, unlike EIO / ENOSPC / EDQUOT which must reach the caller.
_FSYNC_UNSUPPORTED = {errno.EINVAL, errno.EBADF, getattr(errno, "ENOTSUP", -1), getattr(errno, "EOPNOTSUPP", -1)}
# "os error 28" (Rust: safetensors), "errno = 28" (HDF5), "[Errno 28]" (Python text re-wrapped).
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
_ERRNO_IN_TEXT = re.compile(r"(?:os error|errno\s*=?|\[errno)\s*(\d+)", re.IGNORECASE)


class OutputError(HiralignError, OSError):
    """An output cannot be written: disk full, permission denied, folder removed.

    Also an :class:`OSError` (``errno``, ``strerror`` and ``filename`` are set), so callers
    that catch ``OSError`` keep working. ``str()`` is the one-line user message.
    """

    def __str__(self) -> str:
        return f"{self.filename}: cannot write: {self.strerror}"


def output_error(target: str | os.PathLike, exc: BaseException) -> OutputError | None:
    """The :class:`OutputError` that ``exc``, raised while writing ``target``, amounts to.

    Returns:
        None when ``exc`` is not a failed write (a cancel, a bug, or already a
        :class:`HiralignError`): the caller re-raises it unchanged.
    """
    if isinstance(exc, HiralignError) or not isinstance(exc, Exception):
        return None
    target = Path(target)
    code: int | None = None
    exc = _underlying_os_error(exc)
    if isinstance(exc, OSError):
        code = exc.errno
        reason = exc.strerror or str(exc) or type(exc).__name__
    else:
        match = _ERRNO_IN_TEXT.search(str(exc))
        if match:
            code = int(match.group(1))
            reason = os.strerror(code)
        elif (free := _free_bytes(target.parent)) is not None and free < FULL_DISK_BYTES:
            code, reason = errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free} bytes free; {type(exc).__name__}: {exc})"
        else:
            return None
    if code is None and _SHORT_WRITE.search(reason):
        # numpy/tifffile's "N requested and M written": the operating system's reason is lost
        reason = f"only part of the data could be written ({reason})"
    if code is None and (free := _free_bytes(target.parent)) is not None and free < FULL_DISK_BYTES:
        reason = f"{reason}: {os.strerror(errno.ENOSPC)} ({free} bytes free)"
    if code == errno.ENOENT and not target.parent.is_dir():
        reason = f"{reason} (the folder {target.parent} was removed while writing)"
    return OutputError(code, reason, str(target))


def _underlying_os_error(exc: BaseException) -> BaseException:
    # torch.save on a Python file re-raises the file's OSError as RuntimeError("unexpected pos…")
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return exc


def _free_bytes(folder: Path) -> int | None:
    for candidate in (folder, *folder.parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(candidate).free
    return None


def _raise_output_error(target: Path, exc: BaseException) -> None:
    error = output_error(target, exc)
    if error is not None:
        raise error from exc


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create private (0600/0700) entries; outputs get the permissions a plain
# open() would give them. Read once at import: os.umask cannot be queried thread-safely.
_UMASK = _read_umask()


def plain_permissions(path: str | os.PathLike) -> None:
    """Give ``path`` the permissions a plain ``open()`` would (0666 less the umask).

    For files a library writes through its own private temporary (safetensors' weights come
    out 0600, so a checkpoint shared with a group would be unreadable but for its JSON).
    """
    os.chmod(path, 0o666 & ~_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The temporary name keeps ``target``'s suffix (or ``suffix``) so libraries that pick
    a format by suffix behave. On any exception the temporary file is removed and an
    existing ``target`` is left untouched.

    Raises:
        OutputError: the folder, the temporary or the rename failed (disk full,
            permissions, folder removed), also when the failure happened inside the block.
    """
    target = Path(target)
    sfx = target.suffix if suffix is None else suffix
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{sfx}", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        _raise_output_error(target, exc)
        raise
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        _raise_output_error(target, exc)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; swap it into place on success.

    An existing ``target`` is replaced only after the new one is complete and flushed; if
    the swap fails the previous folder is put back. A previous folder left aside by a
    process killed in the middle of a swap (``.NAME.old`` without ``NAME``) is restored
    first.

    Raises:
        OutputError: as :func:`atomic_path`.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _restore_set_aside(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        _raise_output_error(target, exc)
        raise
    try:
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file():
                _fsync(path)
        os.chmod(tmp, 0o777 & ~_UMASK)
        _swap_in(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_output_error(target, exc)
        raise


def _set_aside_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def _restore_set_aside(target: Path) -> None:
    old = _set_aside_name(target)
    if old.is_dir() and not target.exists():
        os.replace(old, target)  # killed between the two renames of _swap_in: the old one is complete
    elif old.exists():
        shutil.rmtree(old)


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    # No portable atomic exchange of two folders: set the old one aside, move the new one
    # in, and put the old one back if that fails.
    old = _set_aside_name(target)
    if old.exists():
        shutil.rmtree(old)
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def remove_stale_temporaries(folder: str | os.PathLike, depth: int = 1) -> list[Path]:
    """Delete the temporaries of dead writers in ``folder`` and its subfolders.

    Only safe while no other process writes there (e.g. under a run folder's lock): a
    live writer's temporary looks the same. Folders set aside by an interrupted
    :func:`atomic_dir` swap are restored when their target is missing.

    Args:
        folder: the folder to clean.
        depth: how many levels of subfolders to visit (1: ``folder`` and its children).

    Returns:
        The paths removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        if TEMP_NAME.match(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            removed.append(entry)
        elif entry.name.startswith(".") and entry.name.endswith(".old") and entry.is_dir():
            _restore_set_aside(entry.with_name(entry.name[1:-4]))
        elif depth > 0 and entry.is_dir() and not entry.is_symlink():
            removed += remove_stale_temporaries(entry, depth - 1)
    return removed


def write_text(target: str | os.PathLike, text: str) -> None:
    """Atomically write a UTF-8 text file.

    Raises:
        OutputError: the file cannot be written; an existing one is kept.
    """
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Atomically write a binary file (e.g. a serialised model or state).

    Raises:
        OutputError: the file cannot be written; an existing one is kept.
    """
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: str | os.PathLike, obj: object) -> None:
    """Atomically write ``obj`` as indented JSON.

    Raises:
        OutputError: the file cannot be written; an existing one is kept.
    """
    import json

    write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: object) -> object:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _fsync(path: Path) -> None:
    """Flush ``path`` to disk; a full disk or I/O error found only now is raised."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except OSError:
        return  # not ours to flush (e.g. a read-only file a library produced); the rename still applies
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)
