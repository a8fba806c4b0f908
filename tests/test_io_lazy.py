"""Cubes that stay on disk: open_cube reads row windows with load's conventions; info streams."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hiralign.commands.info import describe, stream_statistics
from hiralign.cube import Cube
from hiralign.io import load, open_cube, save
from hiralign.io import rows as rows_module

_LAYOUT = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}


def _envi(folder: Path, data: np.ndarray, interleave: str, extra: str = "") -> Path:
    h, w, b = data.shape
    code = {"uint16": 12, "float32": 4, "int16": 2}[data.dtype.name]
    (folder / "c.img").write_bytes(np.ascontiguousarray(data.transpose(_LAYOUT[interleave])).tobytes())
    (folder / "c.hdr").write_text(f"ENVI\nsamples = {w}\nlines = {h}\nbands = {b}\nheader offset = 0\n"
                                  f"data type = {code}\ninterleave = {interleave}\nbyte order = 0\n{extra}")
    return folder / "c.hdr"


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_row_windows_match_the_loaded_cube(tmp_path: Path, rng: np.random.Generator, interleave: str) -> None:
    data = rng.integers(0, 60000, size=(37, 11, 4)).astype(np.uint16)
    data[5, 6, 2] = 7  # the ignore value
    src = _envi(tmp_path, data, interleave, "wavelength = {700, 400, 500, 600}\nbbl = {1, 1, 0, 1}\n"
                                            "data ignore value = 7\n")
    whole = load(src)
    lazy = open_cube(src)
    assert lazy.on_disk and lazy.shape == whole.shape and lazy.bad_bands == whole.bad_bands
    np.testing.assert_array_equal(lazy.wavelengths, whole.wavelengths)
    pieces, masks = [], []
    for start, stop in lazy.windows(budget=11 * 4 * 4 * 5):  # five rows at a time
        assert stop - start <= 5
        values, mask = lazy.read_rows(start, stop)
        pieces.append(values)
        masks.append(np.zeros((stop - start, 11, 4), bool) if mask is None else mask)
    np.testing.assert_array_equal(np.concatenate(pieces), whole.data)
    np.testing.assert_array_equal(np.concatenate(masks), np.broadcast_to(whole.mask, whole.shape))


def test_hdf5_and_npy_stay_on_disk(tmp_path: Path, small_cube: Cube) -> None:
    for suffix in (".h5", ".npy"):
        path = save(small_cube, tmp_path / f"c{suffix}")
        lazy = open_cube(path, wavelengths=small_cube.wavelengths)
        assert lazy.on_disk, suffix
        values, _ = lazy.read_rows(3, 9)
        np.testing.assert_array_equal(values, small_cube.data[3:9])


def test_info_statistics_stream_in_small_windows(tmp_path: Path, rng: np.random.Generator,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data = rng.random((50, 8, 3)).astype(np.float32)
    data[40, 2, 1] = np.nan
    src = _envi(tmp_path, data, "bil")
    monkeypatch.setattr(rows_module, "WINDOW_BYTES", 8 * 3 * 4 * 3)  # three rows per window
    lazy = open_cube(src)
    assert len(list(lazy.windows())) == 17
    stats = stream_statistics(lazy)
    whole = load(src, keep_nonfinite=True)
    assert describe(lazy, stats) == describe(whole)
    assert stats["nonfinite"] == 1


def test_nonfinite_rows_are_refused_with_their_place(tmp_path: Path) -> None:
    data = np.ones((6, 4, 2), np.float32)
    data[4, 1, 0] = np.inf
    lazy = open_cube(_envi(tmp_path, data, "bsq"))
    lazy.read_rows(0, 3)
    with pytest.raises(Exception, match="1 NaN/Inf values in rows 3–5"):
        lazy.read_rows(3, 6)


def test_gui_opener_refuses_a_cube_larger_than_memory_allows(tmp_path: Path, small_cube: Cube) -> None:
    pytest.importorskip("PySide6")
    from app.opener import load_cube

    path = save(small_cube, tmp_path / "c.hdr")
    cube = load_cube(path)
    np.testing.assert_array_equal(cube.data, small_cube.data)
    assert isinstance(cube.metadata["warnings"], list)
    with pytest.raises(Exception, match=r"c.hdr: 32×40×31 is 0.0 GiB as float32, more than the window can hold"):
        load_cube(path, limit=1000)


def test_lazy_pseudo_rgb_matches_the_loaded_cube(tmp_path: Path, small_cube: Cube,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(small_cube, tmp_path / "c.hdr")
    monkeypatch.setattr(rows_module, "WINDOW_BYTES", 40 * 31 * 4 * 5)  # five rows per window
    np.testing.assert_array_equal(open_cube(path).pseudo_rgb(), small_cube.pseudo_rgb())
