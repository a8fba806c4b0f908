"""Metadata kept through load → save → load: band names, no-data mask, description, stored dtype."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hiralign.cube import Cube
from hiralign.io import load, save
from hiralign.io.envi import read_header


def _envi(folder: Path, data: np.ndarray, header_extra: str, code: int) -> Path:
    """An ENVI BSQ pair written by hand (independent of the code under test)."""
    h, w, b = data.shape
    (folder / "c.img").write_bytes(np.ascontiguousarray(data.transpose(2, 0, 1)).astype(data.dtype.newbyteorder("<"))
                                   .tobytes())
    (folder / "c.hdr").write_text(f"ENVI\nsamples = {w}\nlines = {h}\nbands = {b}\nheader offset = 0\n"
                                  f"file type = ENVI Standard\ndata type = {code}\ninterleave = bsq\n"
                                  f"byte order = 0\n{header_extra}")
    return folder / "c.hdr"


def test_band_names_follow_their_bands_when_sorted(tmp_path: Path) -> None:
    data = np.stack([np.full((2, 3), v, np.float32) for v in (0.668, 0.655, 0.700)], axis=2)
    src = _envi(tmp_path, data, "wavelength units = Micrometers\nwavelength = {0.668, 0.655, 0.700}\n"
                                "band names = {b668, b655, b700}\n", 4)
    cube = load(src)
    np.testing.assert_allclose(cube.wavelengths, [655, 668, 700])
    out = save(cube, tmp_path / "out" / "c.hdr")
    names = read_header(out)["band names"]
    assert names == ["b655", "b668", "b700"]
    again = load(out)
    # Each name still labels the band it named in the original file.
    for name, value in zip(names, again.data[0, 0]):
        assert abs(float(name[1:]) / 1000 - value) < 1e-6


def test_data_ignore_value_is_a_mask_written_back(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(1, 4000, size=(4, 5, 3)).astype(np.uint16)
    data[0, 0, :] = 65535  # a whole missing pixel
    data[2, 3, 1] = 65535  # one missing sample
    cube = load(_envi(tmp_path, data, "data ignore value = 65535\n", 12))
    assert cube.mask is not None and cube.mask.shape == (4, 5, 3)
    assert cube.mask[0, 0].all() and cube.mask[2, 3, 1] and int(cube.mask.sum()) == 4
    assert cube.data[0, 0].max() == 0.0  # networks see finite values, not 65535
    for suffix in (".hdr", ".tif", ".npz", ".h5"):
        back = load(save(cube, tmp_path / f"float{suffix}"))
        np.testing.assert_array_equal(back.mask, cube.mask, err_msg=suffix)
        np.testing.assert_array_equal(back.data, cube.data, err_msg=suffix)
    counts = save(cube, tmp_path / "counts.hdr", dtype="input")
    raw = np.fromfile(counts.with_suffix(".img"), "<u2").reshape(3, 4, 5).transpose(1, 2, 0)
    np.testing.assert_array_equal(raw, data)  # the original file, byte for byte
    assert read_header(counts)["data ignore value"] == "65535"


def test_whole_pixel_masks_are_stored_per_pixel(tmp_path: Path) -> None:
    data = np.ones((3, 3, 40), np.float32)
    data[1, 1, :] = -9999.0
    cube = load(_envi(tmp_path, data, "data ignore value = -9999\n", 4))
    assert cube.mask is not None and cube.mask.shape == (3, 3, 1)
    assert cube.crop(1, 1, 2, 2).mask.shape == (2, 2, 1)
    assert cube.crop(0, 0, 1, 3).mask is None


def test_description_and_map_info_are_kept(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.random((3, 4, 2)).astype(np.float32)
    src = _envi(tmp_path, data, "description = {\n  Headwall capture, flight 7}\n"
                                "map info = {UTM, 1, 1, 500000, 4000000, 1, 1, 33, North, WGS-84}\n", 4)
    out = save(load(src), tmp_path / "o.hdr")
    header = read_header(out)
    assert header["description"] == "Headwall capture, flight 7"
    assert header["map info"][0] == "UTM" and header["map info"][3] == "500000"


def test_save_in_the_input_dtype_keeps_uint16_counts_and_the_scale_factor(tmp_path: Path,
                                                                           rng: np.random.Generator) -> None:
    counts = rng.integers(0, 10000, size=(5, 6, 4)).astype(np.uint16)
    src = _envi(tmp_path, counts, "reflectance scale factor = 10000\n", 12)
    cube = load(src)
    np.testing.assert_allclose(cube.data, counts / 10000.0, rtol=1e-6)
    out = save(cube, tmp_path / "o.hdr", dtype="input")
    assert out.with_suffix(".img").stat().st_size == counts.nbytes  # half of float32
    header = read_header(out)
    assert header["data type"] == "12" and float(header["reflectance scale factor"]) == 10000.0
    np.testing.assert_array_equal(np.fromfile(out.with_suffix(".img"), "<u2"),
                                  counts.transpose(2, 0, 1).ravel())
    assert load(out).metadata["dtype"] == "uint16"
    # restored values outside the type's range are clipped, with a warning
    brighter = cube.with_data(cube.data * 10.0)
    back = load(save(brighter, tmp_path / "clip.tif", dtype="input"))
    assert back.metadata["dtype"] == "uint16" and back.data.max() <= 6.5536
    # other formats keep it too
    for suffix in (".npz", ".tif", ".mat", ".h5"):
        again = load(save(cube, tmp_path / f"c{suffix}", dtype="input"))
        assert again.metadata["dtype"] == "uint16", suffix
        np.testing.assert_allclose(again.data, cube.data, rtol=1e-6, err_msg=suffix)


def test_uint16_without_scale_factor_round_trips_by_full_scale(tmp_path: Path, rng: np.random.Generator) -> None:
    counts = rng.integers(0, 65535, size=(3, 3, 2)).astype(np.uint16)
    cube = load(_envi(tmp_path, counts, "", 12))
    out = save(cube, tmp_path / "o.hdr", dtype="input")
    assert "reflectance scale factor" not in read_header(out)
    np.testing.assert_array_equal(np.fromfile(out.with_suffix(".img"), "<u2"), counts.transpose(2, 0, 1).ravel())
    with pytest.raises(Exception, match="cannot store"):
        save(cube, tmp_path / "x.hdr", dtype="complex64")


def test_cube_mask_follows_super_resolution_and_downsampling() -> None:
    mask = np.zeros((4, 4, 1), bool)
    mask[1, 2] = True
    cube = Cube(np.ones((4, 4, 3), np.float32), mask=mask)
    up = cube.with_data(np.ones((16, 16, 3), np.float32))
    assert up.mask.shape == (16, 16, 1) and int(up.mask.sum()) == 16
    down = cube.with_data(np.ones((2, 2, 3), np.float32))
    assert down.mask.shape == (2, 2, 1) and down.mask[0, 1, 0] and int(down.mask.sum()) == 1
