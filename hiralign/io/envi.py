"""ENVI cubes (.hdr + .img/.raw/.dat/.bsq/.bil/.bip/.hyspex/.bin): reading (writing: :mod:`.envi_write`).

Reading: the header is parsed here, not by ``spectral.envi.open``, because real headers
carry oddities that spectral either rejects with a bare ``EnviHeaderParsingError`` or
passes silently: mixed-case keys (``Wavelength``), vendor keys such as ``errors =
{recover}``, comment lines from the capture software, fwhm/bbl lists of the wrong length,
an unterminated ``{`` block. :func:`read_header` repairs or skips each of these with a
warning (logged, and kept in ``cube.metadata["warnings"]``) saying what it did. The data
file is then memory-mapped with numpy in its own layout (BSQ/BIL/BIP, either byte order,
after ``header offset``) and handed on as an :class:`~hiralign.io.rows.AxesRows`, so
loading converts it window by window and :func:`hiralign.io.open_cube` streams it
without reading the rest. No spectral setting is changed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hiralign.errors import InputError, MissingFileError
from hiralign.io.common import RawCube, warn
from hiralign.io.rows import AxesRows

#: Suffixes of ENVI data files, tried in this order beside a header (spectral's known
#: suffixes plus the interleave names; HySpex cameras write ``.hyspex``).
DATA_SUFFIXES = (".img", ".raw", ".dat", ".bsq", ".bil", ".bip", ".hyspex", ".bin", "")
#: ENVI ``data type`` codes this loader reads, with their numpy types.
DATA_TYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}
_COMPLEX_TYPES = {6: "complex64", 9: "complex128"}
#: Keys of the ENVI header specification; others are kept as metadata only.
STANDARD_KEYS = frozenset({
    "description", "samples", "lines", "bands", "header offset", "file type", "data type",
    "interleave", "sensor type", "byte order", "map info", "projection info",
    "coordinate system string", "default bands", "default stretch", "wavelength units",
    "wavelength", "fwhm", "bbl", "band names", "reflectance scale factor", "data ignore value",
    "data gain values", "data offset values", "x start", "y start", "acquisition time",
    "acquisition date", "z plot titles", "z plot range", "z plot average", "pixel size",
    "class names", "classes", "class lookup", "spectra names", "solar irradiance", "read procedures",
    "dem file", "dem band", "data reflectance gain values", "data reflectance offset values",
    "geo points", "security tag", "timestamp", "cloud cover", "sun azimuth", "sun elevation",
})
#: Vendor keys that report trouble during capture; worth a warning, not a failure.
_TROUBLE_KEYS = ("errors", "error", "warnings", "warning")
_REQUIRED = ("samples", "lines", "bands", "data type")


# --------------------------------------------------------------------------- paths
def header_and_data(path: Path) -> tuple[Path, Path]:
    """The (header, data file) pair for a path naming either of them.

    Raises:
        MissingFileError: the partner file is absent.
    """
    if path.suffix.lower() == ".hdr":
        header = path
        stem = path.with_suffix("")
        for suffix in DATA_SUFFIXES:
            for candidate in _case_variants(stem, suffix):
                if candidate.is_file() and candidate != header:
                    return header, candidate
        tried = ", ".join(stem.name + s for s in DATA_SUFFIXES if s)
        raise MissingFileError(f"{header}: ENVI header without a data file (looked for {tried} "
                               "in the same folder)")
    for candidate in (*_case_variants(path.with_suffix(""), ".hdr"), *_case_variants(path, ".hdr")):
        if candidate.is_file():
            return candidate, path
    raise MissingFileError(f"{path}: no ENVI header beside this data file (looked for "
                           f"{path.with_suffix('.hdr').name} and {path.name}.hdr)")


def _case_variants(stem: Path, suffix: str) -> list[Path]:
    return [Path(f"{stem}{suffix}"), Path(f"{stem}{suffix.upper()}")] if suffix else [stem]


# --------------------------------------------------------------------------- header
def read_header(header: Path) -> dict[str, Any]:
    """Parse an ENVI header into a dict of lower-case keys.

    Values are strings, or lists of strings for ``{...}`` blocks (``description`` stays
    one string). Oddities are repaired or skipped with a warning that says which.

    Raises:
        InputError: the file is not an ENVI header or a ``{`` block never closes.
    """
    raw = header.read_bytes()
    if b"\x00" in raw[:4096]:
        raise InputError(f"{header}: not an ENVI header (binary content)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # old headers with a degree sign or similar
    lines = text.splitlines()
    if not lines or not lines[0].lstrip("\ufeff").strip().upper().startswith("ENVI"):
        raise InputError(f"{header}: not an ENVI header (the first line must be 'ENVI')")

    result: dict[str, Any] = {}
    notes: list[str] = []
    i = 1
    while i < len(lines):
        number, line = i + 1, lines[i].strip()
        i += 1
        if not line:
            continue
        if line.startswith(";"):
            notes.append(f"comment on line {number} skipped ({line.lstrip(';').strip()[:80]!r})")
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            notes.append(f"line {number} is not 'key = value'; skipped ({line[:60]!r})")
            continue
        key, value = key.strip(), value.strip()
        if key != key.lower():
            notes.append(f"key {key!r} read as {key.lower()!r}")
            key = key.lower()
        if value.startswith("{"):
            parts = [value]
            while "}" not in parts[-1]:
                if i >= len(lines):
                    raise InputError(f"{header}: the '{{' block of {key!r} opened on line {number} "
                                     "is never closed")
                nxt = lines[i].strip()
                i += 1
                if nxt.startswith(";"):
                    notes.append(f"comment on line {i} skipped ({nxt.lstrip(';').strip()[:80]!r})")
                else:
                    parts.append(nxt)
            block = "\n".join(parts)
            inner = block[1:block.index("}")]
            if block[block.index("}") + 1:].strip():
                notes.append(f"text after '}}' of {key!r} skipped")
            value = inner.strip() if key == "description" else [v.strip() for v in inner.split(",") if v.strip()]
        if key in result:
            notes.append(f"key {key!r} appears twice; the last value is used")
        if key in _TROUBLE_KEYS:
            notes.append(f"{key} = {_show(value)} reported by the writing software; ignored")
        result[key] = value
    if notes:
        warn(header, "ENVI header oddities: " + "; ".join(notes))
    return result


def _show(value: Any) -> str:
    return "{" + ", ".join(value) + "}" if isinstance(value, list) else str(value)


def _int_key(h: dict[str, Any], key: str, header: Path, default: int | None = None) -> int:
    if key not in h:
        if default is None:
            raise InputError(f"{header}: the ENVI header has no {key!r}")
        return default
    try:
        return int(str(h[key]).strip())
    except ValueError:
        raise InputError(f"{header}: {key} = {h[key]!r} is not an integer") from None


def _float_key(h: dict[str, Any], key: str, header: Path) -> float | None:
    if key not in h:
        return None
    try:
        value = h[key][0] if isinstance(h[key], list) else h[key]
        return float(value)
    except (ValueError, IndexError):
        warn(header, f"{key} = {h[key]!r} is not a number; skipped")
        return None


def _float_list(h: dict[str, Any], key: str, header: Path) -> np.ndarray | None:
    if key not in h:
        return None
    values = h[key] if isinstance(h[key], list) else [h[key]]
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        warn(header, f"{key} has values that are not numbers; skipped")
        return None


# --------------------------------------------------------------------------- reading
def read_envi(path: Path) -> RawCube:
    """Read an ENVI cube given its header or data file.

    Raises:
        MissingFileError: the header or the data file is absent.
        InputError: malformed header, unsupported data type, truncated data file.
    """
    header, data_file = header_and_data(path)
    h = read_header(header)
    for key in _REQUIRED:
        _int_key(h, key, header)
    lines, samples, bands = (_int_key(h, k, header) for k in ("lines", "samples", "bands"))
    if min(lines, samples, bands) <= 0:
        raise InputError(f"{header}: lines, samples and bands must be positive "
                         f"(got {lines}, {samples}, {bands})")
    code = _int_key(h, "data type", header)
    if code in _COMPLEX_TYPES:
        raise InputError(f"{header}: data type {code} ({_COMPLEX_TYPES[code]}) is not supported: "
                         "cubes must be real-valued")
    if code not in DATA_TYPES:
        raise InputError(f"{header}: unknown ENVI data type {code}; supported: "
                         f"{', '.join(f'{k} ({np.dtype(v)})' for k, v in DATA_TYPES.items())}")
    interleave = str(h.get("interleave", "")).strip().lower()
    if interleave not in ("bsq", "bil", "bip"):
        if interleave:
            raise InputError(f"{header}: unknown interleave {interleave!r} (expected bsq, bil or bip)")
        warn(header, "no 'interleave' key; assuming bsq")
        interleave = "bsq"
    if "byte order" not in h:
        warn(header, "no 'byte order' key; assuming 0 (little-endian)")
    byte_order = _int_key(h, "byte order", header, default=0)
    if byte_order not in (0, 1):
        raise InputError(f"{header}: byte order must be 0 or 1, not {byte_order}")
    offset = _int_key(h, "header offset", header, default=0)
    if h.get("file type", "").strip().lower() == "envi spectral library":
        raise InputError(f"{header}: an ENVI spectral library, not an image cube")

    itemsize = np.dtype(DATA_TYPES[code]).itemsize
    needed = offset + lines * samples * bands * itemsize
    size = data_file.stat().st_size
    if size < needed:
        raise InputError(f"{data_file}: truncated: {size} bytes, but the header ({header.name}) needs "
                         f"{needed} ({lines} lines × {samples} samples × {bands} bands × {itemsize} bytes"
                         f"{f' + {offset} offset' if offset else ''})")
    if size > needed:
        warn(data_file, f"{size - needed} bytes beyond what the header describes; ignored")

    dtype = np.dtype(DATA_TYPES[code]).newbyteorder("<" if byte_order == 0 else ">")
    # The file's own layout, and where (y, x, band) sit in it.
    layout = {"bsq": ((bands, lines, samples), (1, 2, 0)), "bil": ((lines, bands, samples), (0, 2, 1)),
              "bip": ((lines, samples, bands), (0, 1, 2))}[interleave]
    mapped = np.memmap(data_file, dtype=dtype, mode="r", offset=offset, shape=layout[0])
    data = AxesRows(mapped, layout[1])

    metadata: dict[str, Any] = {"header": str(header), "data_file": str(data_file), "interleave": interleave,
                                "byte_order": byte_order,
                                "envi_header": {k: v for k, v in h.items() if k not in ("wavelength", "fwhm", "bbl")}}
    default_bands = _float_list(h, "default bands", header)
    if default_bands is not None:
        zero_based = [int(b) - 1 for b in default_bands]
        if all(0 <= b < bands for b in zero_based):
            metadata["default_bands"] = zero_based
        else:
            warn(header, f"default bands {h['default bands']} outside 1..{bands}; skipped")
    return RawCube(
        data=data,
        format="ENVI",
        wavelengths=_float_list(h, "wavelength", header),
        wavelength_unit=str(h["wavelength units"]).strip() if "wavelength units" in h else None,
        fwhm=_float_list(h, "fwhm", header),
        bbl=_float_list(h, "bbl", header),
        scale_factor=_float_key(h, "reflectance scale factor", header),
        ignore_value=_float_key(h, "data ignore value", header),
        metadata=metadata,
    )
