"""What every format reader shares: the raw cube a reader returns and how it becomes a Cube.

Each reader (ENVI, MAT, PNG folder, NumPy, TIFF, HDF5/NetCDF) only parses its format
into a :class:`RawCube` — the array as stored (or a window reader of it, see
:mod:`hiralign.io.rows`) plus whatever band metadata the file carries.
:func:`hiralign.io.convert.finish_cube` then applies the same conventions to all of them
(PROTOCOL.md "Data conventions"), so a rule is written once:

* integer data is divided by its full scale — the ENVI ``reflectance scale factor`` when
  the file has one, else the largest value of the data type (uint16: 65535, int16: 32767);
  negative integers stay negative. Float data is kept as stored (divided by a
  ``reflectance scale factor`` only when a header gives one);
* ``data ignore value`` samples become 0 and form the cube's ``mask`` (written back on save);
* wavelengths are converted to nm and must match the band count and increase; the
  caller's wavelengths fill in when the file has none;
* NaN/Inf values are refused (with their count) unless they lie only in bands flagged bad
  or the caller asks to zero them.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from hiralign.cube import Cube, parse_wavelengths, to_nanometres
from hiralign.errors import InputError

log = logging.getLogger("hiralign.io")
_collected: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("hiralign_io_notes", default=None)


def warn(path: Path, message: str) -> None:
    """Report something skipped or repaired in a file: a log warning naming the file.

    Inside :func:`collect_warnings` the message is also kept, so :func:`hiralign.io.load`
    can store it in ``cube.metadata["warnings"]`` for the GUI (thread-safe, unlike
    ``warnings.catch_warnings``).
    """
    text = f"{path}: {message}"
    log.warning(text)
    bucket = _collected.get()
    if bucket is not None:
        bucket.append(text)


@contextlib.contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect the messages :func:`warn` emits in this context (and thread)."""
    bucket: list[str] = []
    token = _collected.set(bucket)
    try:
        yield bucket
    finally:
        _collected.reset(token)


@dataclasses.dataclass
class RawCube:
    """A cube as one file stores it, before the shared conventions are applied.

    Attributes:
        data: (H, W, B) array in the file's own dtype (may be a memory map).
        format: short format name ("ENVI", "MAT v5", ...), for messages and metadata.
        wavelengths: (B,) band centres as stored (any unit), or None.
        wavelength_unit: the unit the file names ("Nanometers", "um"...), or None to guess.
        fwhm: (B,) band widths, in ``fwhm_unit`` or else in the wavelengths' unit, or None.
        fwhm_unit: the unit of ``fwhm`` when the reader knows it ("nm"), else None.
        bbl: (B,) ENVI bad-band list (1 good, 0 bad), or None.
        scale_factor: the file's ``reflectance scale factor``, or None.
        ignore_value: the file's ``data ignore value``, or None.
        metadata: format-specific facts kept on the cube (header keys, variable name...).
    """

    data: np.ndarray
    format: str
    wavelengths: np.ndarray | None = None
    wavelength_unit: str | None = None
    fwhm: np.ndarray | None = None
    fwhm_unit: str | None = None
    bbl: np.ndarray | None = None
    scale_factor: float | None = None
    ignore_value: float | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """What the caller asked for (see :func:`hiralign.io.load`)."""

    var: str | None = None
    wavelengths: np.ndarray | None = None
    zero_nonfinite: bool = False
    keep_nonfinite: bool = False

    @classmethod
    def make(cls, var: str | None, wavelengths: np.ndarray | Sequence[float] | str | None,
             zero_nonfinite: bool, keep_nonfinite: bool) -> LoadOptions:
        if isinstance(wavelengths, str):
            wl = parse_wavelengths(wavelengths)
        elif wavelengths is None:
            wl = None
        else:
            wl = to_nanometres(np.asarray(wavelengths, dtype=np.float64))
        return cls(var=var, wavelengths=wl, zero_nonfinite=zero_nonfinite, keep_nonfinite=keep_nonfinite)


# --------------------------------------------------------------------------- band metadata
def cube_name(path: Path) -> str:
    """A short name for the cube stored at ``path`` (the file stem)."""
    return path.name if path.is_dir() else path.stem


def nm_per_unit(raw: RawCube) -> float:
    """Factor from the file's wavelength unit to nm (fwhm shares that unit).

    Widths alone cannot reveal their unit (3.4 nm and 0.01 µm are both small), so the
    unit comes from the header or, failing that, from the wavelengths' magnitude.
    """
    if raw.wavelength_unit:
        return nm_per(raw.wavelength_unit)
    return nm_per_guessed(raw.wavelengths)


def nm_per(unit: str) -> float:
    """How many nm one ``unit`` is ("um" -> 1000)."""
    return float(to_nanometres([1.0], unit)[0])


def nm_per_guessed(wavelengths: Any) -> float:
    """The nm factor guessed from wavelength magnitudes (values < 30 are µm); 1 if unknown."""
    if wavelengths is None:
        return 1.0
    try:
        stored = np.asarray(wavelengths, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return 1.0
    if stored.size and np.all(np.isfinite(stored)) and stored[0] != 0:
        return float(to_nanometres(stored)[0] / stored[0])
    return 1.0


def band_vector(values: Any, bands: int, what: str, path: Path) -> np.ndarray | None:
    """A per-band vector, or None (with a warning) when its length is wrong."""
    if values is None:
        return None
    try:
        vec = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        warn(path, f"{what} is not numeric; skipped")
        return None
    if vec.size != bands:
        warn(path, f"{vec.size} {what} values for {bands} bands; skipped")
        return None
    return vec


def resolve_wavelengths(raw: RawCube, path: Path, bands: int, given: np.ndarray | None,
                         metadata: dict[str, Any]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The file's wavelengths in nm, else the caller's; checked against the band count.

    Returns:
        (wavelengths, order): ``order`` is None, or the band permutation that sorts the
        file's wavelengths when they are distinct but out of order (AVIRIS spectrometers
        overlap: band 32 at 655 nm follows band 31 at 668 nm).
    """
    if raw.wavelengths is not None:
        try:
            wl_nm = to_nanometres(np.asarray(raw.wavelengths, dtype=np.float64).ravel(), raw.wavelength_unit)
        except (TypeError, ValueError):
            wl_nm, problem = None, "are not numbers"
        else:
            problem = wavelength_problem(wl_nm, bands, allow_unsorted=True)
        if problem is None and wl_nm is not None:
            if given is not None and not (given.size == wl_nm.size and np.allclose(given, wl_nm, atol=0.05)):
                warn(path, "the file has its own wavelengths; the given ones are ignored")
            metadata["wavelength_source"] = "file"
            if raw.wavelength_unit:
                metadata["wavelength_units"] = raw.wavelength_unit
            order = None
            if bands > 1 and not np.all(np.diff(wl_nm) > 0):
                order = np.argsort(wl_nm, kind="stable")
                moved = int(np.count_nonzero(order != np.arange(bands)))
                metadata["band_order"] = order.tolist()
                warn(path, f"wavelengths are out of order ({moved} bands, e.g. band {_first_drop(wl_nm)}); "
                           "bands sorted by wavelength (metadata 'band_order' gives each band's file index)")
                wl_nm = wl_nm[order]
            return wl_nm, order
        if given is None:
            raise InputError(f"{path}: the file's wavelengths {problem}; give the right ones "
                             "(e.g. --wavelengths 420:720:10)")
        warn(path, f"the file's wavelengths {problem}; using the given ones instead")
    if given is None:
        return None, None
    problem = wavelength_problem(given, bands)
    if problem is not None:
        raise InputError(f"{path}: the given wavelengths {problem}")
    metadata["wavelength_source"] = "given"
    return given, None


def _first_drop(wl: np.ndarray) -> str:
    i = int(np.flatnonzero(np.diff(wl) <= 0)[0])
    return f"{i + 1} at {wl[i + 1]:g} nm after {wl[i]:g} nm"


def wavelength_problem(wl: np.ndarray, bands: int, allow_unsorted: bool = False) -> str | None:
    """Why ``wl`` cannot label ``bands`` bands, or None when it can.

    Args:
        wl: (N,) wavelengths in nm.
        bands: the band count.
        allow_unsorted: accept distinct values in any order (they will be sorted).
    """
    if wl.size != bands:
        return f"are {wl.size} values for {bands} bands"
    if not np.all(np.isfinite(wl)):
        return "contain NaN or Inf"
    if bands < 2:
        return None
    if allow_unsorted:
        ordered = np.sort(wl)
        if np.all(np.diff(ordered) > 0):
            return None
        dup = float(ordered[np.flatnonzero(np.diff(ordered) <= 0)[0]])
        return f"repeat a value ({dup:g} nm appears twice)"
    if not np.all(np.diff(wl) > 0):
        return f"are not strictly increasing (band {_first_drop(wl)})"
    return None


def handle_nonfinite(data: np.ndarray, path: Path, bad_bands: Sequence[int], options: LoadOptions,
                      metadata: dict[str, Any]) -> None:
    """Zero, keep or refuse NaN/Inf values (in place), recording what was done."""
    finite = np.isfinite(data)
    count = int(data.size - np.count_nonzero(finite))
    metadata["nonfinite_zeroed"] = 0
    if not count:
        return
    per_band = data.shape[0] * data.shape[1] - np.count_nonzero(finite, axis=(0, 1))
    where = np.flatnonzero(per_band)
    only_bad = bool(bad_bands) and set(where.tolist()) <= set(bad_bands)
    if only_bad or options.zero_nonfinite:
        data[~finite] = 0.0
        metadata["nonfinite_zeroed"] = count
        reason = "all in bands flagged bad" if only_bad else "as asked"
        warn(path, f"{count} NaN/Inf values in {where.size} bands replaced by 0 ({reason})")
        return
    if options.keep_nonfinite:
        return
    raise InputError(f"{path}: {count} NaN/Inf values in {where.size} of {data.shape[2]} bands "
                     f"(first bands: {_short_ints(where)}); use --zero-nonfinite "
                     "(zero_nonfinite=True) to replace them by 0")


def _short_ints(values: Iterable[int], n: int = 8) -> str:
    vals = list(values)
    head = ", ".join(str(int(v)) for v in vals[:n])
    return head + (", …" if len(vals) > n else "")


def good_band_list(cube: Cube) -> np.ndarray:
    """The ENVI-style bad-band list of ``cube``: (B,) uint8, 1 for good bands, 0 for bad ones."""
    bbl = np.ones(cube.n_bands, dtype=np.uint8)
    bbl[list(cube.bad_bands)] = 0
    return bbl
