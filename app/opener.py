"""Opening target cubes: files and CAVE folders into the session, through a background job.

Reading runs in a job (on its own "io" queue, so it never waits behind training) and the
questions it may raise are asked on the GUI thread afterwards:

- a MAT file holding several candidate arrays → a variable picker, then a second read
  with the chosen variable;
- a cube without wavelengths → a prompt pre-filled with the preferred default, applied
  before the cube joins the target set.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QWidget

from app.errors import ErrorReporter
from app.jobs import JobManager
from app.settings import Preferences
from hiralign.cube import Cube, parse_wavelengths
from hiralign.errors import HiralignError

log = logging.getLogger(__name__)

#: Suffixes offered in the open dialog (a folder of PNGs opens through its own action).
OPEN_FILTER = ("Hyperspectral cubes (*.hdr *.mat *.npy *.npz *.tif *.tiff *.h5 *.he5 *.nc *.lan *.rfl);;"
               "ENVI (*.hdr);;MATLAB (*.mat);;NumPy (*.npy *.npz);;TIFF / GeoTIFF (*.tif *.tiff);;"
               "HDF5 / NetCDF (*.h5 *.hdf5 *.he5 *.nc *.nc4);;ERDAS / AVIRIS (*.lan *.gis *.rfl);;All files (*)")
#: Share of the memory available now that one opened cube (as float32) may take.
MEMORY_SHARE = 0.5


def cube_candidates(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the numeric 3-D arrays in a MAT/NPZ file (the cubes the user may mean)."""
    from hiralign.io import format_of, list_variables

    if format_of(path) not in ("mat", "npz"):
        return {}
    return {v.name: tuple(int(n) for n in v.shape) for v in list_variables(path) if v.is_numeric and len(v.shape) == 3}


def candidate_label(name: str, shape: tuple[int, ...]) -> str:
    """How the variable picker lists an array: its name and shape (several cubes often differ only by it)."""
    return f"{name}  ({'×'.join(str(n) for n in shape)})"


def available_memory() -> int | None:
    """Bytes of physical memory available now (None where the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def load_cube(path: str | Path, var: str | None = None, limit: int | None = None) -> Cube:
    """Read one cube with the core loader, refusing one too large to hold in memory.

    The file is opened lazily first (header only; memory-mapped formats read nothing), so
    a cube whose float32 copy would take more than :data:`MEMORY_SHARE` of the memory
    available (or ``limit`` bytes) is refused with its size and the streaming command
    that restores it in bounded memory, instead of exhausting the machine.

    Raises:
        InputError: the cube is too large; HiralignError: as :func:`hiralign.io.load`.
    """
    from hiralign.errors import InputError
    from hiralign.io import open_cube

    lazy = open_cube(path, var=var)
    h, w, b = lazy.shape
    size = h * w * b * 4
    if limit is None:
        free = available_memory()
        limit = int(free * MEMORY_SHARE) if free else None
    if limit is not None and size > limit:
        raise InputError(f"{path}: {h}×{w}×{b} is {size / 2**30:.1f} GiB as float32, more than the window can "
                         f"hold ({limit / 2**30:.1f} GiB); restore it in bounded memory with "
                         f"`hiralign proxy {Path(path).name} --out DIR` or open a crop")
    return lazy.load()


def read_or_candidates(path: str | Path, var: str | None = None) -> Cube | dict[str, tuple[int, ...]]:
    """The cube, or the candidate variables (name -> shape) when a MAT file holds several arrays.

    Runs in a worker; the names come back as plain data so the picker can ask on the GUI
    thread.
    """
    try:
        return load_cube(path, var)
    except HiralignError:
        names = cube_candidates(path) if var is None else {}
        if len(names) > 1:
            return names
        raise


def default_wavelength_text(preferred: str, bands: int) -> str:
    """The preferred ``start:stop:step`` when it has ``bands`` values, else an even spacing."""
    try:
        if parse_wavelengths(preferred).size == bands:
            return preferred
    except HiralignError:
        pass
    if bands == 1:
        return "550"
    step = 300.0 / (bands - 1)
    return ", ".join(f"{400 + i * step:.1f}" for i in range(bands))


class CubeOpener(QObject):
    """Loads cubes in the background and asks the user what the files leave open.

    Signals:
        opened(object, str): a ready :class:`Cube` and the path it came from.
    """

    opened = Signal(object, str)

    def __init__(self, jobs: JobManager, prefs: Preferences, errors: ErrorReporter,
                 parent_widget: QWidget | None = None,
                 ask_variable: Callable[[str, dict[str, tuple[int, ...]]], str | None] | None = None,
                 ask_wavelengths: Callable[[str, int, str], str | None] | None = None) -> None:
        super().__init__()
        self.jobs = jobs
        self.prefs = prefs
        self.errors = errors
        self.parent_widget = parent_widget
        self.ask_variable = ask_variable or self._ask_variable_dialog
        self.ask_wavelengths = ask_wavelengths or self._ask_wavelengths_dialog
        self.pending = 0

    def open(self, path: str | Path, var: str | None = None,
             on_ready: Callable[[Cube, str], None] | None = None, recent: bool = True) -> None:
        """Start reading ``path``; emits :attr:`opened` (or calls ``on_ready``) when done.

        ``recent``: list the file under *Open recent* (not for clean references, which
        would open as targets from there).
        """
        path = str(path)
        self.pending += 1
        job = self.jobs.submit(f"open {Path(path).name}", lambda _progress: read_or_candidates(path, var),
                               device="io")
        job.finished.connect(lambda result: self._loaded(result, path, on_ready, recent))
        job.failed.connect(lambda summary, details: self._failed(path, summary, details))
        job.cancelled.connect(self._done)

    def _done(self) -> None:
        self.pending -= 1

    def _failed(self, path: str, summary: str, details: str) -> None:
        self._done()
        if not Path(path).exists():
            self.prefs.remove_recent(path)
        self.errors.show(summary, details, title="hiralign — cannot open file")

    def _loaded(self, result: Cube | dict[str, tuple[int, ...]], path: str, on_ready, recent: bool = True) -> None:
        self._done()
        if isinstance(result, dict):  # several candidate variables: ask, then read again
            choice = self.ask_variable(path, result)
            if choice:
                self.open(path, var=choice, on_ready=on_ready, recent=recent)
            return
        cube = result
        if cube.wavelengths is None:
            text = self.ask_wavelengths(path, cube.n_bands,
                                        default_wavelength_text(self.prefs.default_wavelengths, cube.n_bands))
            if text is None:
                return
            try:
                cube = dataclasses.replace(cube, wavelengths=parse_wavelengths(text))
            except HiralignError as exc:
                self.errors.show(f"{path}: {exc}", title="hiralign — wavelengths")
                return
            if ":" in text:
                self.prefs.default_wavelengths = text
            # Said where it stays visible: a wrong range accepted here shifts every band the run sees.
            log.warning("%s: the file has no wavelengths; using %.0f–%.0f nm (%d bands) as entered", Path(path).name,
                        float(cube.wavelengths.min()), float(cube.wavelengths.max()), cube.n_bands)
        if recent:
            self.prefs.add_recent(path)
        self.prefs.set_last_folder("open", str(Path(path).parent))
        if on_ready is not None:
            on_ready(cube, path)
        else:
            self.opened.emit(cube, path)

    # -- default dialogs ---------------------------------------------------------------
    def _ask_variable_dialog(self, path: str, names: dict[str, tuple[int, ...]]) -> str | None:
        labels = {candidate_label(name, shape): name for name, shape in names.items()}
        label, ok = QInputDialog.getItem(self.parent_widget, "Choose the cube variable",
                                         f"{Path(path).name} holds several arrays (name, rows×columns×bands)."
                                         "\nWhich one is the cube?", list(labels), 0, False)
        return labels.get(label) if ok else None

    def _ask_wavelengths_dialog(self, path: str, bands: int, default: str) -> str | None:
        text, ok = QInputDialog.getText(self.parent_widget, "Wavelengths",
                                        f"{Path(path).name} has {bands} bands and no wavelengths.\n"
                                        "Band centres in nm (start:stop:step or a comma-separated list).\n"
                                        "Pre-filled with the last range used: check it (KAIST scenes are "
                                        "420:720:10, CAVE 400:700:10).",
                                        text=default)
        return text if ok else None

