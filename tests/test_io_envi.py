"""ENVI reading and writing: every interleave and data type, header oddities, bad files, real captures."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_file

from hiralign.cube import Cube
from hiralign.errors import InputError, MissingFileError
from hiralign.io import load, save

_LAYOUT = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}
_CODES = {"u1": 1, "i2": 2, "i4": 3, "f4": 4, "f8": 5, "u2": 12, "u4": 13}


def write_envi(folder: Path, data: np.ndarray, *, name: str = "cube", interleave: str = "bsq",
               byte_order: int = 0, extra: str = "", data_suffix: str = ".img", code: int | None = None,
               truncate: int = 0, offset: int = 0) -> Path:
    """Write an ENVI pair by hand (independent of the code under test); returns the header."""
    endian = "<" if byte_order == 0 else ">"
    raw = np.ascontiguousarray(data.transpose(_LAYOUT[interleave])).astype(data.dtype.newbyteorder(endian))
    payload = raw.tobytes()
    (folder / f"{name}{data_suffix}").write_bytes(b"\x7f" * offset + payload[:len(payload) - truncate])
    h, w, b = data.shape
    code = _CODES[data.dtype.str[1:]] if code is None else code
    header = folder / f"{name}.hdr"
    header.write_text(f"ENVI\ndescription = {{\n  test cube}}\nsamples = {w}\nlines = {h}\nbands = {b}\n"
                      f"header offset = {offset}\nfile type = ENVI Standard\ndata type = {code}\n"
                      f"interleave = {interleave}\nbyte order = {byte_order}\n{extra}")
    return header


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("dtype", ["u1", "i2", "u2", "i4", "f4", "f8"])
def test_every_interleave_and_data_type(tmp_path, rng, interleave, dtype):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        data = rng.random((4, 5, 3)).astype(dt)
        expected = data.astype(np.float32)
    else:
        top = np.iinfo(dt).max
        data = rng.integers(0, top, size=(4, 5, 3), endpoint=True).astype(dt)
        expected = (data.astype(np.float32) / np.float32(top))
    cube = load(write_envi(tmp_path, data, interleave=interleave))
    assert cube.shape == (4, 5, 3)
    np.testing.assert_allclose(cube.data, expected, rtol=1e-6)
    assert cube.metadata["dtype"] == dt.name
    assert cube.metadata["interleave"] == interleave
    assert (cube.metadata["scaling"] is None) == (dt.kind == "f")


def test_big_endian_data_after_a_header_offset(tmp_path, rng):
    data = rng.integers(0, 65535, size=(3, 4, 2)).astype(np.uint16)
    cube = load(write_envi(tmp_path, data, byte_order=1, interleave="bil", offset=128,
                           extra="data ignore value = -9999\n"))
    np.testing.assert_allclose(cube.data, data / 65535.0, rtol=1e-6)
    assert cube.metadata["dtype"] == "uint16" and cube.metadata["ignored_values"] == 0


def test_header_oddities_load_with_a_warning(tmp_path, rng, caplog):
    data = rng.random((3, 4, 3)).astype(np.float32)
    extra = ("errors = {recover}\n\nWavelength = {\n 0.45,\n 0.55,\n; a vendor comment\n 0.65\n}\n"
             "Wavelength Units = Micrometers\nfwhm = {0.01, 0.01}\nthis line has no equals sign\n")
    with caplog.at_level(logging.WARNING, logger="hiralign.io"):
        cube = load(write_envi(tmp_path, data, extra=extra))
    np.testing.assert_allclose(cube.wavelengths, [450, 550, 650])
    assert cube.fwhm is None  # 2 values for 3 bands: skipped
    text = " ".join(cube.metadata["warnings"])
    for fragment in ("errors = {recover}", "'Wavelength' read as 'wavelength'", "vendor comment",
                     "no equals sign", "2 fwhm values for 3 bands"):
        assert fragment in text
    assert "ENVI header oddities" in caplog.text


def test_band_metadata_scale_factor_and_ignore_value(tmp_path):
    data = np.array([[[0, 100, 200], [1000, 0, 300]]], dtype=np.uint16)  # (1, 2, 3)
    extra = ("wavelength units = Nanometers\nwavelength = {400.5, 500, 600}\nfwhm = {5, 6, 7}\n"
             "bbl = {1, 0, 1}\nreflectance scale factor = 1000\ndata ignore value = 0\n"
             "default bands = {3, 2, 1}\n")
    cube = load(write_envi(tmp_path, data, extra=extra))
    np.testing.assert_allclose(cube.data, data / 1000.0)
    np.testing.assert_array_equal(cube.wavelengths, [400.5, 500, 600])
    np.testing.assert_array_equal(cube.fwhm, [5, 6, 7])
    assert cube.bad_bands == (1,)
    assert cube.metadata["scaling"] == {"divisor": 1000.0, "reason": "reflectance scale factor"}
    assert cube.metadata["ignored_values"] == 2
    assert cube.metadata["default_bands"] == [2, 1, 0]
    assert any("2 values equal the data ignore value 0" in w for w in cube.metadata["warnings"])


def test_ignore_value_nonzero_is_set_to_zero(tmp_path):
    data = np.array([[[-9999.0, 0.5], [0.25, -9999.0]]], dtype=np.float32)
    cube = load(write_envi(tmp_path, data, extra="data ignore value = -9999\n"))
    np.testing.assert_array_equal(cube.data, [[[0.0, 0.5], [0.25, 0.0]]])


def test_out_of_order_wavelengths_sort_the_bands(tmp_path, rng):
    data = rng.random((2, 3, 4)).astype(np.float32)
    extra = "wavelength = {400, 420, 410, 430}\nbbl = {1, 1, 0, 1}\nfwhm = {1, 2, 3, 4}\n"
    cube = load(write_envi(tmp_path, data, extra=extra))
    np.testing.assert_array_equal(cube.wavelengths, [400, 410, 420, 430])
    np.testing.assert_array_equal(cube.data, data[:, :, [0, 2, 1, 3]])
    np.testing.assert_array_equal(cube.fwhm, [1, 3, 2, 4])
    assert cube.bad_bands == (1,)  # the bad band (file index 2) moved to position 1
    assert cube.metadata["band_order"] == [0, 2, 1, 3]


@pytest.mark.parametrize("suffix", [".raw", ".dat", ".bil", ""])
def test_open_by_data_file(tmp_path, rng, suffix):
    data = rng.random((3, 4, 2)).astype(np.float32)
    write_envi(tmp_path, data, data_suffix=suffix)
    cube = load(tmp_path / f"cube{suffix}")
    np.testing.assert_array_equal(cube.data, data)
    assert cube.name == "cube"


def test_round_trip_is_lossless_and_readable_by_spectral(tmp_path, rng):
    from spectral.io import envi

    data = rng.random((5, 6, 4)).astype(np.float32)
    cube = Cube(data, wavelengths=[401.25, 500.0, 600.125, 700.0], fwhm=[10, 11, 12.5, 13],
                bad_bands=(2,), name="scene", metadata={"default_bands": [3, 1, 0]})
    header = save(cube, tmp_path / "out.img")
    assert header == tmp_path / "out.hdr" and (tmp_path / "out.img").is_file()
    back = load(header)
    np.testing.assert_array_equal(back.data, cube.data)
    np.testing.assert_array_equal(back.wavelengths, cube.wavelengths)
    np.testing.assert_array_equal(back.fwhm, cube.fwhm)
    assert back.bad_bands == (2,)
    assert back.metadata["default_bands"] == [3, 1, 0]
    assert back.metadata["warnings"] == []
    img = envi.open(str(header))  # an independent reader agrees
    np.testing.assert_array_equal(np.asarray(img.load()), data)
    assert [float(w) for w in img.metadata["wavelength"]] == [401.25, 500.0, 600.125, 700.0]
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []  # no temp files left


def test_save_replaces_an_existing_cube(tmp_path, rng):
    first = Cube(rng.random((2, 2, 3)), name="a")
    second = Cube(rng.random((3, 4, 5)), name="b")
    save(first, tmp_path / "x.hdr")
    save(second, tmp_path / "x.hdr")
    np.testing.assert_array_equal(load(tmp_path / "x.hdr").data, second.data)


# ------------------------------------------------------------------------- bad input
def test_header_without_data_file(tmp_path, rng):
    header = write_envi(tmp_path, rng.random((2, 2, 2)).astype(np.float32))
    (tmp_path / "cube.img").unlink()
    with pytest.raises(MissingFileError, match="header without a data file"):
        load(header)


def test_data_file_without_header(tmp_path):
    (tmp_path / "lonely.raw").write_bytes(b"\0" * 16)
    with pytest.raises(MissingFileError, match="no ENVI header beside"):
        load(tmp_path / "lonely.raw")


def test_truncated_data_file(tmp_path, rng):
    header = write_envi(tmp_path, rng.random((4, 4, 3)).astype(np.float32), truncate=10)
    with pytest.raises(InputError, match=r"truncated: 182 bytes, but the header \(cube.hdr\) needs 192"):
        load(header)


@pytest.mark.parametrize("code, message", [(6, "complex64"), (7, "unknown ENVI data type 7")])
def test_unsupported_data_type(tmp_path, code, message):
    header = write_envi(tmp_path, np.zeros((2, 2, 2), np.float32), code=code)
    with pytest.raises(InputError, match=message):
        load(header)


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "not an ENVI header"),
    (b"samples = 3\nlines = 3\n", "first line must be 'ENVI'"),
    (b"ENVI\nsamples = 2\nlines = 2\nbands = 1\ndata type = 4\nwavelength = {400,\n", "never closed"),
    (b"ENVI\nsamples = 2\nlines = 2\ndata type = 4\n", "has no 'bands'"),
    (b"ENVI\nsamples = two\nlines = 2\nbands = 1\ndata type = 4\n", "samples = 'two' is not an integer"),
    (b"ENVI\nsamples = 2\nlines = 2\nbands = 1\ndata type = 4\ninterleave = zig\n", "unknown interleave"),
])
def test_malformed_headers(tmp_path, content, message):
    (tmp_path / "bad.hdr").write_bytes(content)
    (tmp_path / "bad.img").write_bytes(b"\0" * 64)
    with pytest.raises(InputError, match=message) as info:
        load(tmp_path / "bad.hdr")
    assert "bad.hdr" in str(info.value)


def test_wavelength_count_mismatch_needs_given_wavelengths(tmp_path, rng):
    header = write_envi(tmp_path, rng.random((2, 2, 3)).astype(np.float32), extra="wavelength = {400, 500}\n")
    with pytest.raises(InputError, match="are 2 values for 3 bands"):
        load(header)
    cube = load(header, wavelengths="450:650:100")
    np.testing.assert_array_equal(cube.wavelengths, [450, 550, 650])
    assert any("using the given ones" in w for w in cube.metadata["warnings"])


def test_repeated_wavelengths_are_refused(tmp_path, rng):
    header = write_envi(tmp_path, rng.random((2, 2, 3)).astype(np.float32),
                        extra="wavelength = {400, 500, 500}\n")
    with pytest.raises(InputError, match="500 nm appears twice"):
        load(header)


def test_nan_values_are_counted_and_optionally_zeroed(tmp_path, rng):
    data = rng.random((3, 3, 2)).astype(np.float32)
    data[0, 0, 1] = np.nan
    data[2, 1, 0] = np.inf
    header = write_envi(tmp_path, data)
    with pytest.raises(InputError, match="2 NaN/Inf values in 2 of 2 bands"):
        load(header)
    cube = load(header, zero_nonfinite=True)
    assert cube.count_nonfinite() == 0 and cube.data[0, 0, 1] == 0
    assert cube.metadata["nonfinite_zeroed"] == 2


# ------------------------------------------------------------------------- real data
@pytest.mark.data
@pytest.mark.parametrize("name, first_nm", [("RedYellowSet_3_FD1_FN0", 473.0),
                                            ("VIS_leaves_FD1_FN0_original", 476.0)])
def test_real_imec_captures(name, first_nm):
    header = shared_file("envi", f"{name}.hdr")
    cube = load(header)
    assert cube.shape == (256, 512, 16)
    assert cube.wavelengths[0] == first_nm and cube.wavelengths.size == 16
    assert cube.metadata["dtype"] == "uint16"
    assert cube.metadata["default_bands"] == [11, 7, 3]
    warnings_text = " ".join(cube.metadata["warnings"])
    assert "errors = {recover}" in warnings_text and "'Wavelength'" in warnings_text
    assert "fwhm values does not match" in warnings_text
    raw = load(header.with_suffix(".raw"))  # opening the data file finds the same cube
    np.testing.assert_array_equal(raw.data, cube.data)


@pytest.mark.data
def test_real_fenix_reflectance():
    from spectral.io import envi

    header = shared_file("envi", "fenix_geology.hdr")
    cube = load(header)
    assert cube.shape == (38, 23, 450)
    assert cube.metadata["scaling"]["reason"] == "reflectance scale factor"
    assert 378 < cube.wavelengths[0] < 379 and 2503 < cube.wavelengths[-1] < 2504
    assert cube.fwhm.shape == (450,) and cube.fwhm[0] == pytest.approx(3.36)
    assert 0.0 <= cube.data.min() and cube.data.max() <= 1.0
    reference = np.asarray(envi.open(str(header)).load())  # spectral applies the scale factor too
    np.testing.assert_allclose(cube.data, reference, rtol=1e-6)
