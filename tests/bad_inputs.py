"""The bad-input catalogue shared by the CLI, loader and GUI tests, and a tiny good run.

Every :data:`CATALOGUE` entry writes one malformed input by hand (bytes, not through the
code under test) and names the phrase the one-line error must contain. The CLI tests run
them through ``hiralign info`` / ``hiralign adapt``, the GUI tests through *File ▸ Open*
and the stages: one catalogue, so a new kind of bad file is tried everywhere at once.

:func:`tiny_adapt_inputs` builds the good counterpart: a small source model and two
8-band 40×40 targets that a few-step ``hiralign adapt`` finishes in seconds on a CPU.
"""
from __future__ import annotations

import dataclasses
import struct
from pathlib import Path
from typing import Callable

import numpy as np

BANDS = 8
WAVELENGTHS = np.linspace(450, 660, BANDS)


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One malformed input.

    Attributes:
        id: short name (the pytest id).
        make: writes the input into a folder and returns the path a user would open.
        message: a phrase the error message must contain (besides the file's name).
        gui: how *File ▸ Open* treats it: "error" (a dialog naming the file) or "ask-variable"
            (a MAT file with several cubes: the variable picker).
        info: how ``hiralign info`` treats it: "error", or "reported" (it inspects the file
            and counts the problem, e.g. NaN values, instead of refusing it).
    """

    id: str
    make: Callable[[Path], Path]
    message: str
    gui: str = "error"
    info: str = "error"


def _cube_values(shape: tuple[int, int, int] = (6, 7, 4), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def write_envi_pair(folder: Path, data: np.ndarray, name: str = "cube", extra: str = "", truncate: int = 0,
                    dims: tuple[int, int, int] | None = None) -> Path:
    """An ENVI BSQ float32 pair written by hand; ``dims`` (lines, samples, bands) may lie."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = np.ascontiguousarray(data.transpose(2, 0, 1)).astype("<f4").tobytes()
    (folder / f"{name}.img").write_bytes(payload[:len(payload) - truncate])
    lines, samples, bands = dims or data.shape
    header = folder / f"{name}.hdr"
    header.write_text(f"ENVI\nsamples = {samples}\nlines = {lines}\nbands = {bands}\nheader offset = 0\n"
                      f"file type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 0\n{extra}")
    return header


def _write(folder: Path, name: str, content: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return folder / name


def _with_data(header: Path) -> Path:
    header.with_suffix(".img").write_bytes(b"\0" * 672)  # so the header itself is what fails
    return header


def _random_bytes(n: int = 4096, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, arr, allow_pickle=True)
    return buffer.getvalue()


def _mat_two_cubes(folder: Path) -> Path:
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / "two.mat", {"first": _cube_values((5, 6, 4)), "second": _cube_values((7, 8, 4), 1)})
    return folder / "two.mat"


def _nonfinite_envi(folder: Path) -> Path:
    data = _cube_values()
    data[0, 0, 1], data[2, 3, 0] = np.nan, np.inf
    return write_envi_pair(folder, data, name="nan", extra="wavelength = {450, 500, 550, 600}\n")


def _png_folder_missing_a_band(folder: Path) -> Path:
    import imageio.v3 as iio

    scene = folder / "gap_ms"
    scene.mkdir(parents=True, exist_ok=True)
    planes = np.random.default_rng(3).integers(0, 65535, (6, 7, 4), endpoint=True).astype(np.uint16)
    for i in range(4):
        if i != 2:
            iio.imwrite(scene / f"gap_ms_{i + 1:02d}.png", planes[:, :, i])
    return scene


def _empty_folder(folder: Path) -> Path:
    (folder / "empty_ms").mkdir(parents=True, exist_ok=True)
    return folder / "empty_ms"


def _tiff_truncated(folder: Path) -> Path:
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cut.tif"
    tifffile.imwrite(path, _cube_values((4, 32, 32)), photometric="minisblack")
    path.write_bytes(path.read_bytes()[:600])
    return path


def _npy_truncated(folder: Path) -> Path:
    return _write(folder, "cut.npy", _npy_bytes(_cube_values((16, 16, 8)))[:1000])


def _mat_truncated(folder: Path) -> Path:
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cut.mat"
    scipy.io.savemat(path, {"cube": _cube_values((16, 16, 8))})
    path.write_bytes(path.read_bytes()[:700])
    return path


def _npy_header_lies(folder: Path) -> Path:
    # A valid .npy magic and header that claims a 10⁹-element cube over 64 bytes of data.
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000, 1000), }"
    header = header.ljust(118) + b"\n"
    return _write(folder, "huge.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64)


#: Every kind of bad input a user has handed hiralign, with the phrase its error must contain.
CATALOGUE: tuple[BadInput, ...] = (
    BadInput("missing", lambda d: d / "absent.hdr", "no such file"),
    BadInput("empty-hdr", lambda d: _with_data(_write(d, "empty.hdr", b"")), "empty.hdr"),
    BadInput("empty-mat", lambda d: _write(d, "empty.mat", b""), "cannot read a MAT file"),
    BadInput("empty-npy", lambda d: _write(d, "empty.npy", b""), "empty.npy"),
    BadInput("random-hdr", lambda d: _with_data(_write(d, "noise.hdr", _random_bytes())), "not an ENVI header"),
    BadInput("random-mat", lambda d: _write(d, "noise.mat", _random_bytes()), "cannot read a MAT file"),
    BadInput("random-npy", lambda d: _write(d, "noise.npy", _random_bytes()), "noise.npy"),
    BadInput("random-tif", lambda d: _write(d, "noise.tif", _random_bytes()), "noise.tif"),
    BadInput("truncated-envi", lambda d: write_envi_pair(d, _cube_values(), name="cut", truncate=10), "truncated"),
    BadInput("truncated-npy", _npy_truncated, "cut.npy"),
    BadInput("truncated-mat", _mat_truncated, "cut.mat"),
    BadInput("truncated-tif", _tiff_truncated, "cut.tif"),
    BadInput("npy-header-lies", _npy_header_lies, "huge.npy"),
    BadInput("absurd-envi-dimensions",
             lambda d: write_envi_pair(d, _cube_values(), name="absurd", dims=(10**6, 10**6, 10**4)), "absurd"),
    BadInput("ambiguous-mat", _mat_two_cubes, "--var", gui="ask-variable"),
    BadInput("nan-inf", _nonfinite_envi, "NaN/Inf values", info="reported"),
    BadInput("wavelength-count-mismatch",
             lambda d: write_envi_pair(d, _cube_values(), name="wl", extra="wavelength = {400, 500}\n"),
             "are 2 values for 4 bands"),
    BadInput("repeated-wavelengths",
             lambda d: write_envi_pair(d, _cube_values(), name="twice", extra="wavelength = {400, 500, 500, 600}\n"),
             "appears twice"),
    BadInput("pickled-npy", lambda d: _write(d, "obj.npy", _npy_bytes(np.array([{"a": 1}], dtype=object))),
             "obj.npy"),
    BadInput("not-a-cube-npy", lambda d: _write(d, "flat.npy", _npy_bytes(np.zeros(10, np.float32))), "flat.npy"),
    BadInput("unknown-suffix", lambda d: _write(d, "cube.xyz", b"x"), "unknown file type '.xyz'"),
    BadInput("header-without-data", lambda d: (write_envi_pair(d, _cube_values(), name="alone"),
                                               (d / "alone.img").unlink(), d / "alone.hdr")[-1], "alone"),
    BadInput("empty-folder", _empty_folder, "a folder must hold one PNG per band"),
    BadInput("png-folder-missing-a-band", _png_folder_missing_a_band, "missing numbers 3"),
)


def by_id(name: str) -> BadInput:
    """The catalogue entry called ``name``."""
    return next(entry for entry in CATALOGUE if entry.id == name)


# ----------------------------------------------------------------------------- good inputs
def tiny_scene(seed: int, side: int = 40) -> np.ndarray:
    """(side, side, BANDS) smooth float32 reflectances in [0, 1]."""
    from scipy.ndimage import gaussian_filter

    data = gaussian_filter(np.random.default_rng(seed).random((side, side, BANDS)), sigma=(2, 2, 1.5))
    return ((data - data.min()) / (data.max() - data.min())).astype(np.float32)


def tiny_adapt_inputs(root: Path) -> dict[str, Path | list[Path]]:
    """A tiny source model (compact, 8 bands) and two noisy 8-band targets with clean references.

    Returns:
        {"model": checkpoint folder, "targets": [two .hdr], "clean": [two .hdr]}.
    """
    import torch

    from hiralign import io
    from hiralign.cube import Cube
    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = build_model("compact", bands=BANDS, features=8, depth=2)
    config = CheckpointConfig(arch="compact", task="gaussian", bands=BANDS, wavelengths=WAVELENGTHS,
                              args={"features": 8, "depth": 2})
    save_checkpoint(model, root / "source", config, {"kind": "test"})
    targets, clean = [], []
    for seed in (1, 2):
        scene = tiny_scene(seed)
        noisy = np.clip(scene + 0.05 * np.random.default_rng(seed).standard_normal(scene.shape), 0, 1)
        clean.append(io.save(Cube(scene, wavelengths=WAVELENGTHS), root / f"clean{seed}.hdr"))
        targets.append(io.save(Cube(noisy.astype(np.float32), wavelengths=WAVELENGTHS), root / f"target{seed}.hdr"))
    return {"model": root / "source", "targets": targets, "clean": clean}


def tiny_adapt_args(inputs: dict, out: Path, steps: int = 6, guides: int = 0, clean: bool = False) -> list[str]:
    """``hiralign adapt`` arguments for :func:`tiny_adapt_inputs` (proxy-only unless ``guides``)."""
    args = ["adapt", "--target", *map(str, inputs["targets"]), "--task", "gaussian", "--model", str(inputs["model"]),
            "--out", str(out), "--guides", str(guides), "--steps", str(steps), "--batch-size", "2",
            "--patch-size", "24", "--tile", "32", "--overlap", "8", "--device", "cpu"]
    if clean:
        args += ["--clean", *map(str, inputs["clean"])]
    if guides == 0:
        args += ["--mode", "proxy-only"]
    return args
