"""The run folder of ``hiralign adapt``: layout, settings record, resumption and its lock.

Layout::

    RUN/config.json      every setting, seed, input path and the hiralign version
    RUN/.hiralign.lock   the writer's lock: who holds the folder (PID, host, command, start)
    RUN/proxies/         <target>.hdr/.img proxy cubes and <target>_rgb.png proxy RGBs
    RUN/guides/          <target>_g<j>.png generated RGB guides (16-bit)
    RUN/synth/           <target>_g<j>.hdr/.img synthesized cubes
    RUN/warp.json        warp diagnostics per guide
    RUN/checkpoint/      the adapted model bundle
    RUN/restored/        <target>.hdr/.img: the adapted model applied to the observed targets
    RUN/report.json      timings per stage, metrics when clean references were given

Every file is written atomically, so an existing output is complete and a stage resumes by
skipping what exists. A folder made with other settings is refused rather than mixed.

One writer per folder: :meth:`RunFolder.claim` takes an operating-system lock on
``.hiralign.lock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows) and holds it until
:meth:`RunFolder.release` (or ``close``, the end of a ``with`` block, the object's garbage
collection, or the process's death: the kernel drops the lock, so a SIGKILLed run leaves
no stale lock). Another process is refused with :class:`FolderInUseError` naming the
folder and the holder. RunFolder objects of one process share the lock (a GUI runs its
stages one after another; several objects may name the same folder). The lock file stays
in the folder: deleting a lock file while others may open it would let two writers in.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from hiralign.atomic import output_error, remove_stale_temporaries, write_json
from hiralign.errors import ConfigError

log = logging.getLogger(__name__)

CUBE_SUFFIX = ".hdr"
#: Settings whose change invalidates earlier stages of a run (all of them, for now).
CONFIG_FILE = "config.json"
#: The writer's lock inside the run folder.
LOCK_FILE = ".hiralign.lock"
# flock errors meaning "this filesystem has no locks", not "someone holds it".
_LOCKS_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, getattr(errno, "ENOTSUP", -1), getattr(errno, "EOPNOTSUPP", -1)}
# Windows locks byte ranges and forbids reading them; the holder's description sits at the
# start of the file and the lock far beyond it (locking past the end of a file is allowed).
_WINDOWS_LOCK_OFFSET = 1 << 30


class FolderInUseError(ConfigError):
    """The run folder is locked by another process (a second run, CLI or GUI)."""


def safe_names(paths: Sequence[str | Path]) -> list[str]:
    """Unique, filesystem-safe names for targets, from their file stems (any suffix the loader reads)."""
    from hiralign.io import CUBE_SUFFIXES

    names: list[str] = []
    for p in paths:
        stem = Path(p).name
        suffix = Path(stem).suffix.lower()
        if suffix in CUBE_SUFFIXES:
            stem = stem[: -len(suffix)]
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "target"
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


class RunFolder:
    """Paths of one adaptation run, its settings record and its writer's lock.

    Args:
        root: the run folder (created by :meth:`claim`).
        owner: how the lock describes this process to a refused one (default: the
            command line, e.g. ``"hiralign adapt"``); the GUI passes its own name.
    """

    def __init__(self, root: str | Path, owner: str | None = None) -> None:
        self.root = Path(root).expanduser()
        self.owner = owner or _process_label()
        self._key: tuple[int, int] | None = None

    # ------------------------------------------------------------------ paths
    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

    def proxy(self, name: str) -> Path:
        return self.root / "proxies" / f"{name}{CUBE_SUFFIX}"

    def proxy_rgb(self, name: str) -> Path:
        return self.root / "proxies" / f"{name}_rgb.png"

    def guide(self, name: str, j: int) -> Path:
        return self.root / "guides" / f"{name}_g{j}.png"

    def synth(self, name: str, j: int) -> Path:
        return self.root / "synth" / f"{name}_g{j}{CUBE_SUFFIX}"

    def warp_diagnostics(self, name: str, j: int) -> Path:
        return self.root / "synth" / f"{name}_g{j}.json"

    @property
    def warp_json(self) -> Path:
        return self.root / "warp.json"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def train_state(self) -> Path:
        return self.root / "finetune_state.pt"

    def restored(self, name: str) -> Path:
        return self.root / "restored" / f"{name}{CUBE_SUFFIX}"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    # ------------------------------------------------------------------- lock
    @property
    def locked(self) -> bool:
        """Whether this object holds the folder's lock."""
        return self._key is not None

    def acquire(self) -> bool:
        """Take the folder's writer lock (creating the folder); idempotent.

        Returns:
            True when this call took it, False when this object already held it.

        Raises:
            FolderInUseError: another process holds it; the message names the folder and
                that process (PID, host, command, start time).
            OutputError: the folder or its lock file cannot be created.
        """
        if self._key is not None:
            return False
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise (output_error(self.root, exc) or exc) from exc
        self._key = _REGISTRY.acquire(self.lock_file, self.root, self.owner)
        return True

    def release(self) -> None:
        """Give the lock up (no-op when not held). The lock file stays, unlocked."""
        key, self._key = self._key, None
        if key is not None:
            _REGISTRY.release(key)

    close = release

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunFolder]:
        """``with run.lock():`` holds the writer lock for the block (kept if held before)."""
        took = self.acquire()
        try:
            yield self
        finally:
            if took:
                self.release()

    def holder(self) -> dict[str, Any] | None:
        """What the lock file says about its last holder ({pid, host, command, started}), or None."""
        try:
            text = self.lock_file.read_text(encoding="utf-8")
            info = json.loads(text)
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown may have torn the registry down
            self.release()

    # --------------------------------------------------------------- settings
    def claim(self, record: dict[str, Any], *, lock: bool = True) -> bool:
        """Lock the folder, then write the settings record or check an existing one matches.

        Nothing is written before the lock is held, so a refused second run leaves the
        folder as it was. Under the lock, temporaries of a killed earlier writer are removed.

        Args:
            record: the run's settings (``config.json``).
            lock: take the writer lock (held until :meth:`release`). False only for the
                non-main processes of one distributed job, whose main process holds it.

        Returns:
            True when the folder already held this run (a resume).

        Raises:
            FolderInUseError: another process is writing this folder.
            ConfigError: the folder holds a run with other settings, or other files.
            OutputError: the folder or ``config.json`` cannot be written.
        """
        took = self.acquire() if lock else False
        try:
            # Sweep temporaries only as this process's first holder: another RunFolder of this
            # process (a GUI job still running) may be writing one right now.
            resumed = self._check_or_write(record, clean=took and _REGISTRY.count(self._key) == 1)
        except BaseException:
            if took:
                self.release()
            raise
        return resumed

    def _check_or_write(self, record: dict[str, Any], clean: bool) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise (output_error(self.root, exc) or exc) from exc
        if self.config_file.is_file():
            try:
                old = json.loads(self.config_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.config_file}: unreadable ({exc}); use another --out folder") from None
            differences = _differences(_comparable(old), _comparable(record))
            if differences:
                raise ConfigError(f"{self.root} holds a run with other settings ({'; '.join(differences[:4])}); "
                                  "choose a new --out folder or delete it")
            if clean:
                remove_stale_temporaries(self.root)
            return True
        if any(p.name != LOCK_FILE for p in self.root.iterdir()):
            if self.locked and _REGISTRY.count(self._key) == 1:
                # a folder that is not ours: leave no lock file behind in it
                self.release()
                with contextlib.suppress(OSError):
                    self.lock_file.unlink()
            raise ConfigError(f"{self.root} is not empty and is not a hiralign run folder; choose a new --out")
        write_json(self.config_file, record)
        return False


# ---------------------------------------------------------------------- the lock itself
@dataclasses.dataclass
class _Held:
    fd: int
    count: int


class _LockRegistry:
    """The run-folder locks this process holds, by lock file identity (device, inode).

    flock conflicts between two descriptors of one process too, so a second RunFolder of
    this process on the same folder shares the first one's descriptor instead.
    """

    def __init__(self) -> None:
        self._held: dict[tuple[int, int], _Held] = {}
        self._mutex = threading.Lock()

    def count(self, key: tuple[int, int] | None) -> int:
        with self._mutex:
            held = self._held.get(key) if key is not None else None
            return held.count if held else 0

    def acquire(self, path: Path, root: Path, owner: str) -> tuple[int, int]:
        for _ in range(10):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0),
                             0o666)
            except OSError as exc:
                raise (output_error(path, exc) or exc) from exc
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
            with self._mutex:
                if key in self._held:
                    os.close(fd)
                    self._held[key].count += 1
                    return key
                if not _try_lock(fd):
                    info = _read_info(fd)
                    os.close(fd)
                    raise FolderInUseError(_in_use_message(root, info))
                try:
                    now = os.stat(path)
                except FileNotFoundError:
                    now = None
                if now is None or (now.st_dev, now.st_ino) != key:
                    # the file was removed (a refused claim cleaning up) after we opened it: retry
                    _unlock(fd)
                    os.close(fd)
                    continue
                _write_info(fd, owner)
                self._held[key] = _Held(fd, 1)
                return key
        raise FolderInUseError(f"run folder {root}: its lock file {path} keeps changing; is another program "
                               "deleting it?")

    def release(self, key: tuple[int, int]) -> None:
        with self._mutex:
            held = self._held.get(key)
            if held is None:
                return
            held.count -= 1
            if held.count > 0:
                return
            del self._held[key]
            with contextlib.suppress(OSError):
                _unlock(held.fd)
            os.close(held.fd)


_REGISTRY = _LockRegistry()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            if exc.errno in _LOCKS_UNSUPPORTED:
                # Some network filesystems have no locks at all: refusing would make them
                # unusable, so the run goes on, unprotected, and says so.
                log.warning("the filesystem of the run folder does not support locks (%s); a second run on "
                            "the same folder will not be detected", exc.strerror)
                return True
            raise
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _process_label() -> str:
    """"hiralign adapt" for ``hiralign adapt …`` or ``python -m hiralign adapt …``."""
    argv = sys.argv or [""]
    first = Path(argv[0])
    prog = first.parent.name if first.name in ("__main__.py", "-m", "-c", "-") else first.stem
    words = [prog or "python"]
    if len(argv) > 1 and not argv[1].startswith("-"):
        words.append(argv[1])
    return " ".join(words)


def _write_info(fd: int, owner: str) -> None:
    from hiralign import __version__

    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": owner,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "hiralign_version": __version__}
    data = (json.dumps(info) + "\n").encode("utf-8")
    # In place (renaming would swap the locked file for another); the holder is only a
    # description, so a full disk here does not stop the run (config.json will report it).
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)


def _read_info(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _in_use_message(root: Path, info: dict[str, Any] | None) -> str:
    advice = "wait for it to finish or choose another --out folder"
    if not info:
        return f"run folder {root} is in use by another process; {advice}"
    host = info.get("host")
    where = "" if host in (None, socket.gethostname()) else f" on {host}"
    return (f"run folder {root} is in use by process {info.get('pid', '?')}{where} "
            f"({info.get('command', 'hiralign')}, started {info.get('started', '?')}); {advice}")


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    # The device and the version do not change results that were already written.
    return {k: v for k, v in record.items() if k not in ("device", "hiralign_version", "created")}


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        # A setting the old record's sections lack was added to hiralign after that run was
        # recorded (e.g. AdaptConfig.consistency): it does not make the run another one.
        for key in sorted(set(old) | set(new)):
            if prefix.startswith("settings.") and key not in old:
                continue
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    if old != new:
        return [f"{prefix.rstrip('.')}: {old!r} → {new!r}"]
    return []
