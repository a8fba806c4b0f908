"""MAT files: v5 (scipy) and v7.3 (HDF5), variable choice, band metadata, bad files, real data."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from conftest import shared_file

from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.io import list_variables, load, save
from hiralign.io.matlab import write_mat


def coded_cube(h: int = 4, w: int = 5, b: int = 3) -> np.ndarray:
    """value = 100·row + 10·col + band, so any axis mix-up shows."""
    r, c, k = np.meshgrid(np.arange(h), np.arange(w), np.arange(b), indexing="ij")
    return (100 * r + 10 * c + k).astype(np.float64) / 1000.0


def write_v73_like_matlab(path, variables: dict, structs: dict | None = None) -> None:
    """An HDF5 file laid out as MATLAB writes v7.3: axes reversed, MATLAB_class attributes."""
    import h5py

    classes = {np.dtype("float64"): "double", np.dtype("float32"): "single", np.dtype("uint16"): "uint16",
               np.dtype("uint8"): "uint8"}
    with h5py.File(path, "w", userblock_size=512) as f:
        def put(group, name, value):
            if isinstance(value, str):
                ds = group.create_dataset(name, data=np.array([[ord(c)] for c in value], np.uint16))
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                return
            arr = np.asarray(value)
            ds = group.create_dataset(name, data=arr.T)
            ds.attrs["MATLAB_class"] = np.bytes_(classes[arr.dtype])
        for name, value in variables.items():
            put(f, name, value)
        for sname, fields in (structs or {}).items():
            g = f.create_group(sname)
            g.attrs["MATLAB_class"] = np.bytes_("struct")
            for name, value in fields.items():
                put(g, name, value)
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, test".ljust(116) + b"\0" * 8 + b"\x00\x02IM")


# ------------------------------------------------------------------------- v5
def test_v5_cube_with_micrometre_wavelengths_and_bbl(tmp_path):
    data = (coded_cube() * 65535 / 0.432).astype(np.uint16)
    scipy.io.savemat(tmp_path / "s.mat", {"I": data, "wl": np.array([[0.45, 0.55, 0.65]]),
                                          "bbl": np.array([[1, 0, 1]], np.uint8)})
    cube = load(tmp_path / "s.mat")
    np.testing.assert_allclose(cube.data, data / 65535.0, rtol=1e-6)
    np.testing.assert_allclose(cube.wavelengths, [450, 550, 650])
    assert cube.bad_bands == (1,)
    assert cube.metadata["variable"] == "I" and cube.metadata["format"] == "MAT v5"


def test_rgb_preview_beside_the_cube_is_set_aside(tmp_path):
    scipy.io.savemat(tmp_path / "r.mat", {"rgb": np.zeros((8, 8, 3), np.uint8), "cube": coded_cube(4, 5, 6),
                                          "T": np.eye(3)})
    assert load(tmp_path / "r.mat").metadata["variable"] == "cube"


def test_several_cubes_need_var(tmp_path):
    scipy.io.savemat(tmp_path / "two.mat", {"a": coded_cube(4, 5, 6), "b": coded_cube(2, 2, 7)})
    with pytest.raises(InputError) as info:
        load(tmp_path / "two.mat")
    message = str(info.value)
    assert "two.mat" in message and "a 4×5×6 double" in message and "b 2×2×7 double" in message
    assert "--var" in message
    assert load(tmp_path / "two.mat", var="b").shape == (2, 2, 7)


def test_var_errors(tmp_path):
    scipy.io.savemat(tmp_path / "v.mat", {"cube": coded_cube(), "plane": np.ones((4, 5)), "note": "hi"})
    with pytest.raises(InputError, match=r"no variable 'x'; the file holds: .*cube 4×5×3 double"):
        load(tmp_path / "v.mat", var="x")
    with pytest.raises(InputError, match=r"'plane' has shape \(4, 5\); a cube must be 3-D"):
        load(tmp_path / "v.mat", var="plane")
    with pytest.raises(InputError, match="'note' is char"):
        load(tmp_path / "v.mat", var="note")


def test_mat_with_only_2d_arrays(tmp_path):
    scipy.io.savemat(tmp_path / "flat.mat", {"data": np.ones((31, 88)), "wavelength": np.arange(31.0)})
    with pytest.raises(InputError, match=r"flat.mat: no 3-D array .*2-D arrays found \(data 31×88"):
        load(tmp_path / "flat.mat")


def test_nan_confined_to_bad_bands_is_zeroed_elsewhere_refused(tmp_path):
    data = coded_cube()
    data[:, :, 1] = np.nan
    scipy.io.savemat(tmp_path / "n.mat", {"I": data, "bbl": np.array([1, 0, 1])})
    cube = load(tmp_path / "n.mat")
    assert cube.count_nonfinite() == 0 and np.all(cube.data[:, :, 1] == 0)
    assert cube.metadata["nonfinite_zeroed"] == 20
    scipy.io.savemat(tmp_path / "m.mat", {"I": data})
    with pytest.raises(InputError, match="m.mat: 20 NaN/Inf values in 1 of 3 bands.*--zero-nonfinite"):
        load(tmp_path / "m.mat")
    kept = load(tmp_path / "m.mat", keep_nonfinite=True)
    assert kept.count_nonfinite() == 20


def test_struct_fields_supply_fwhm_in_their_own_unit(tmp_path):
    params = {"wavelength": np.array([450.0, 550.0, 650.0]), "fwhm": np.array([9.5, 9.6, 9.7]),
              "wavelength_units": "Nanometers"}
    scipy.io.savemat(tmp_path / "p.mat", {"I": coded_cube(), "wl": np.array([0.45, 0.55, 0.65]),
                                          "params": params})
    cube = load(tmp_path / "p.mat")
    np.testing.assert_allclose(cube.wavelengths, [450, 550, 650])
    np.testing.assert_allclose(cube.fwhm, [9.5, 9.6, 9.7])  # nm, not multiplied by 1000


def test_signed_integers_scale_by_type_maximum_and_keep_sign(tmp_path):
    data = np.array([[[-12, 8143], [0, 32767]]], dtype=np.int16)
    scipy.io.savemat(tmp_path / "i.mat", {"hsi_img": data, "wavelengths": np.array([[400.0], [500.0]])})
    cube = load(tmp_path / "i.mat")
    np.testing.assert_allclose(cube.data, data / 32767.0, rtol=1e-6)
    assert cube.metadata["scaling"] == {"divisor": 32767.0, "reason": "int16 full scale"}


def test_given_wavelengths_fill_in_and_are_checked(tmp_path):
    scipy.io.savemat(tmp_path / "c.mat", {"cube": coded_cube()})
    assert load(tmp_path / "c.mat").wavelengths is None
    np.testing.assert_array_equal(load(tmp_path / "c.mat", wavelengths=[500, 600, 700]).wavelengths, [500, 600, 700])
    with pytest.raises(InputError, match="c.mat: the given wavelengths are 4 values for 3 bands"):
        load(tmp_path / "c.mat", wavelengths="400:700:100")
    with pytest.raises(InputError, match="c.mat: the given wavelengths are not strictly increasing"):
        load(tmp_path / "c.mat", wavelengths="500,450,600")


@pytest.mark.parametrize("compress", [False, True])
def test_v5_round_trip_and_variable_names(tmp_path, small_cube, compress):
    cube = Cube(small_cube.data, wavelengths=small_cube.wavelengths, fwhm=np.full(31, 10.0), bad_bands=(0, 30),
                name="small")
    path = save(cube, tmp_path / "out.mat", compress=compress)
    raw = scipy.io.loadmat(path)  # an independent reader sees the promised variables
    np.testing.assert_array_equal(raw["cube"], cube.data)
    np.testing.assert_array_equal(raw["wavelengths"].ravel(), cube.wavelengths)
    back = load(path)
    np.testing.assert_array_equal(back.data, cube.data)
    np.testing.assert_array_equal(back.wavelengths, cube.wavelengths)
    np.testing.assert_array_equal(back.fwhm, cube.fwhm)
    assert back.bad_bands == (0, 30)


def test_list_variables(tmp_path):
    scipy.io.savemat(tmp_path / "l.mat", {"cube": coded_cube(), "wl": np.arange(3.0)})
    listed = {v.name: (v.shape, v.dtype, v.is_numeric) for v in list_variables(tmp_path / "l.mat")}
    assert listed == {"cube": ((4, 5, 3), "double", True), "wl": ((1, 3), "double", True)}


# ------------------------------------------------------------------------- v7.3
def test_v73_axes_are_reversed_back(tmp_path):
    data = coded_cube(4, 5, 6).astype(np.float32)
    write_v73_like_matlab(tmp_path / "k.mat", {"cube": data, "rgb": np.zeros((4, 5, 3), np.uint8)},
                          structs={"info": {"wavelength": np.linspace(0.5, 0.75, 6)[:, None],
                                            "units": "um"}})
    cube = load(tmp_path / "k.mat")
    np.testing.assert_array_equal(cube.data, data)
    np.testing.assert_allclose(cube.wavelengths, np.linspace(500, 750, 6))
    assert cube.metadata["format"] == "MAT v7.3"
    assert {v.name: v.shape for v in list_variables(tmp_path / "k.mat")}["cube"] == (4, 5, 6)


@pytest.mark.parametrize("compress", [False, True])
def test_v73_writer_round_trip(tmp_path, small_cube, compress):
    from scipy.io.matlab import matfile_version

    path = write_mat(small_cube, tmp_path / "big.mat", version="7.3", compress=compress)
    assert matfile_version(str(path)) == (2, 0)
    back = load(path)
    np.testing.assert_array_equal(back.data, small_cube.data)
    np.testing.assert_array_equal(back.wavelengths, small_cube.wavelengths)


@pytest.mark.parametrize("content", [b"", b"MATLAB 5.0 MAT-file" + b"\x00" * 200, bytes(range(256)) * 4])
def test_corrupt_mat_files(tmp_path, content):
    (tmp_path / "bad.mat").write_bytes(content)
    with pytest.raises(InputError, match="bad.mat"):
        load(tmp_path / "bad.mat")


# ------------------------------------------------------------------------- real data
@pytest.mark.data
@pytest.mark.parametrize("name", ["chart_and_stuffed_toy_ms_256.mat", "cloth_ms_256.mat",
                                  "real_and_fake_apples_ms_256.mat"])
def test_real_cave(name):
    cube = load(shared_file("cave", name))
    assert cube.shape == (256, 256, 31)
    assert cube.metadata["variable"] == "NRD"
    assert cube.metadata["scaling"] == {"divisor": 65535.0, "reason": "uint16 full scale"}
    assert 0.0 <= cube.data.min() and 0.5 < cube.data.max() <= 1.0


@pytest.mark.data
@pytest.mark.parametrize("name", ["scene01.mat", "scene02.mat", "scene03.mat", "scene04.mat"])
def test_real_kaist(name):
    cube = load(shared_file("kaist", name), wavelengths="420:720:10")  # KAIST's bands (data README)
    assert cube.shape == (256, 256, 31)
    assert cube.metadata["format"] == "MAT v7.3" and cube.metadata["scaling"] is None
    assert 0.0 <= cube.data.min() and cube.data.max() <= 1.0
    assert cube.rgb_band_indices() == (24, 13, 5)


@pytest.mark.data
@pytest.mark.parametrize("name, shape, first_nm, last_nm", [
    ("reg_pavia_dataset.mat", (80, 50, 103), 430.0, 860.0),
    ("salton_sea_roi.mat", (51, 56, 224), 365.91, 2496.22),
    ("aviris_crop_224.mat", (90, 90, 224), 365.91, 2496.22),
    ("muufl_crop_72.mat", (51, 88, 72), 367.70, 1043.40),
])
def test_real_remote_sensing_files(name, shape, first_nm, last_nm):
    cube = load(shared_file("remote", name))
    assert cube.shape == shape
    assert cube.wavelengths[0] == pytest.approx(first_nm, abs=0.01)
    assert cube.wavelengths[-1] == pytest.approx(last_nm, abs=0.01)
    assert cube.count_nonfinite() == 0
    if name == "salton_sea_roi.mat":
        assert len(cube.bad_bands) == 20 and cube.metadata["nonfinite_zeroed"] == 51 * 56 * 20
        assert cube.fwhm is not None and 5 < cube.fwhm.mean() < 15
