"""HDF5, NetCDF (3 and 4), GeoTIFF, ERDAS/Lan, AVIRIS and HySpex cubes; xarray round trips."""
from __future__ import annotations

import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.io import list_variables, load, save


@pytest.fixture
def cube(rng: np.random.Generator) -> Cube:
    mask = np.zeros((9, 7, 1), bool)
    mask[2, 3] = True
    data = rng.random((9, 7, 5), dtype=np.float32)
    data[2, 3] = 0.0  # masked samples hold 0 (what load gives them)
    return Cube(data, wavelengths=np.array([450.5, 500, 550, 600, 650.25]),
                fwhm=np.array([10.0, 11, 12, 13, 14]), bad_bands=(3,), name="scene",
                metadata={"data_ignore_value": -9999.0}, mask=mask)


def _same(a: Cube, b: Cube) -> None:
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.wavelengths, b.wavelengths)
    np.testing.assert_allclose(a.fwhm, b.fwhm)
    assert a.bad_bands == b.bad_bands
    np.testing.assert_array_equal(a.mask, b.mask)


@pytest.mark.parametrize("suffix", [".h5", ".nc", ".he5"])
def test_hdf5_and_netcdf_round_trip_with_their_metadata(tmp_path: Path, cube: Cube, suffix: str) -> None:
    path = save(cube, tmp_path / f"c{suffix}")
    with h5py.File(path, "r") as f:  # what other tools see: dims y, x, wavelength with units
        assert f["cube"].shape == (9, 7, 5) and f["wavelength"].attrs["units"] == "nm"
        assert [d.label or d[0].name.strip("/") for d in f["cube"].dims] == ["y", "x", "wavelength"]
    back = load(path)
    assert back.metadata["format"] in ("HDF5", "NetCDF-4")
    _same(back, cube)


def test_foreign_hdf5_band_first_with_micrometre_attribute(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(0, 4095, size=(6, 10, 8)).astype(np.uint16)  # (bands, rows, cols)
    with h5py.File(tmp_path / "sensor.h5", "w") as f:
        g = f.create_group("HDFEOS/SWATHS/Cube")
        ds = g.create_dataset("radiance", data=data)
        ds.attrs["wavelength"] = np.linspace(0.45, 0.70, 6)
        ds.attrs["wavelength_units"] = "micrometers"
        ds.attrs["_FillValue"] = np.uint16(0)
        g.create_dataset("preview", data=np.zeros((10, 8, 3), np.uint8))
    back = load(tmp_path / "sensor.h5")
    assert back.shape == (10, 8, 6) and back.metadata["variable"] == "HDFEOS/SWATHS/Cube/radiance"
    np.testing.assert_allclose(back.wavelengths, np.linspace(450, 700, 6))
    np.testing.assert_allclose(back.data, np.where(data == 0, 0, data).transpose(1, 2, 0) / 65535.0, rtol=1e-6)
    names = {v.name: v.shape for v in list_variables(tmp_path / "sensor.h5")}
    assert names == {"HDFEOS/SWATHS/Cube/radiance": (6, 10, 8), "HDFEOS/SWATHS/Cube/preview": (10, 8, 3)}


def test_netcdf3_with_a_wavelength_coordinate_and_cf_scale(tmp_path: Path, rng: np.random.Generator) -> None:
    from scipy.io import netcdf_file

    data = rng.integers(0, 10000, size=(5, 6, 4)).astype(np.int16)  # (y, x, band)
    with netcdf_file(tmp_path / "c.nc", "w") as f:
        f.createDimension("y", 5)
        f.createDimension("x", 6)
        f.createDimension("band", 4)
        wl = f.createVariable("band", "f8", ("band",))
        wl[:] = [0.5, 0.6, 0.7, 0.8]
        wl.units = "um"
        v = f.createVariable("reflectance", "i2", ("y", "x", "band"))
        v[:] = data
        v.scale_factor = 1e-4
    back = load(tmp_path / "c.nc")
    assert back.metadata["format"] == "NetCDF-3" and back.shape == (5, 6, 4)
    np.testing.assert_allclose(back.wavelengths, [500, 600, 700, 800])
    np.testing.assert_allclose(back.data, data * 1e-4, rtol=1e-5)


def test_geotiff_keeps_wavelengths_nodata_and_georeferencing(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.random((3, 8, 6)).astype(np.float32)  # GDAL layout: one planar page, samples first
    data[:, 0, 0] = -9999.0
    xml = ("<GDALMetadata>" + "".join(
        f'<Item name="wavelength" sample="{i}">{wl}</Item><Item name="wavelength_units" sample="{i}">'
        f'Micrometers</Item>' for i, wl in enumerate((0.48, 0.56, 0.66))) + "</GDALMetadata>")
    geo = [(33550, "d", 3, (30.0, 30.0, 0.0), True), (33922, "d", 6, (0.0, 0.0, 0.0, 500000.0, 4.1e6, 0.0), True),
           (34735, "H", 16, (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633), True)]
    tifffile.imwrite(tmp_path / "g.tif", data, planarconfig="separate", photometric="minisblack", metadata=None,
                     extratags=[*geo, (42112, "s", 0, xml, True), (42113, "s", 0, "-9999", True)])
    cube = load(tmp_path / "g.tif")
    assert cube.metadata["format"] == "GeoTIFF" and cube.shape == (8, 6, 3)
    np.testing.assert_allclose(cube.wavelengths, [480, 560, 660])
    assert cube.mask is not None and cube.mask[0, 0].all() and int(cube.mask.sum()) == 1
    out = save(cube, tmp_path / "o.tif")
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.tags[33550].value == (30.0, 30.0, 0.0)
        assert page.tags[34735].value[-1] == 32633 and page.tags[33922].value[3] == 500000.0
        assert page.tags[42113].value.strip("\x00") == "-9999"
        assert tif.series[0].shape == (3, 8, 6)
    again = load(out)
    np.testing.assert_array_equal(again.data, cube.data)
    np.testing.assert_array_equal(again.wavelengths, cube.wavelengths)
    np.testing.assert_array_equal(again.mask, cube.mask)
    assert again.metadata["geotiff_tags"] == cube.metadata["geotiff_tags"]


def test_erdas_lan(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(0, 3000, size=(4, 5, 3)).astype("<i2")  # (rows, cols, bands)
    header = bytearray(128)
    header[0:6] = b"HEAD74"
    header[6:10] = struct.pack("<hh", 2, 3)  # 16-bit packing, 3 bands
    header[16:32] = struct.pack("<iiii", 5, 4, 0, 0)  # cols, rows
    (tmp_path / "x.lan").write_bytes(bytes(header) + np.ascontiguousarray(data.transpose(0, 2, 1)).tobytes())
    cube = load(tmp_path / "x.lan", wavelengths="450,550,650")
    assert cube.metadata["format"] == "ERDAS/Lan"
    np.testing.assert_allclose(cube.data, data / 32767.0, rtol=1e-6)


def test_aviris_with_its_calibration_file(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(0, 10000, size=(2, 614, 224)).astype(">i2")  # BIP, 2 lines
    (tmp_path / "f.rfl").write_bytes(data.tobytes())
    wl = np.linspace(370, 2500, 224)
    (tmp_path / "f.spc").write_text("".join(f"{w:.2f} 9.5 0.1 0.1 {i + 1}\n" for i, w in enumerate(wl)))
    cube = load(tmp_path / "f.rfl")
    assert cube.metadata["format"] == "AVIRIS" and cube.shape == (2, 614, 224)
    np.testing.assert_allclose(cube.wavelengths, wl, atol=0.01)
    np.testing.assert_allclose(cube.fwhm, 9.5)
    np.testing.assert_allclose(cube.data, data / 10000.0, rtol=1e-6)


def test_hyspex_data_file_beside_an_envi_header(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.random((3, 4, 2)).astype("<f4")
    (tmp_path / "scan.hyspex").write_bytes(np.ascontiguousarray(data.transpose(2, 0, 1)).tobytes())
    (tmp_path / "scan.hdr").write_text("ENVI\nsamples = 4\nlines = 3\nbands = 2\nheader offset = 0\n"
                                       "data type = 4\ninterleave = bsq\nbyte order = 0\n")
    np.testing.assert_array_equal(load(tmp_path / "scan.hdr").data, data)
    np.testing.assert_array_equal(load(tmp_path / "scan.hyspex").data, data)


def test_xarray_round_trip(cube: Cube) -> None:
    xr = pytest.importorskip("xarray")
    arr = cube.to_xarray()
    assert arr.dims == ("y", "x", "wavelength") and arr.attrs["data_ignore_value"] == -9999.0
    np.testing.assert_array_equal(arr.coords["wavelength"].values, cube.wavelengths)
    assert np.isnan(arr.values[2, 3]).all()
    back = Cube.from_xarray(arr)
    _same(back, cube)
    # band-first arrays in µm from elsewhere
    other = xr.DataArray(np.ones((3, 2, 2)), dims=("band", "row", "col"),
                         coords={"band": ("band", [0.5, 0.6, 0.7], {"units": "um"})})
    assert Cube.from_xarray(other).shape == (2, 2, 3)
    np.testing.assert_allclose(Cube.from_xarray(other).wavelengths, [500, 600, 700])
    with pytest.raises(InputError, match="wavelength or band"):
        Cube.from_xarray(xr.DataArray(np.ones((2, 2, 2)), dims=("a", "b", "c")))
