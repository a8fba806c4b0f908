"""CAVE PNG folders, .npy/.npz, TIFF, RGB images and the suffix dispatch of load/save."""
from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from hiralign.cube import Cube
from hiralign.errors import HiralignError, InputError, MissingFileError
from hiralign.io import format_of, load, load_rgb, save, save_rgb


def write_cave_folder(folder, planes: np.ndarray, prefix: str = "scene_ms") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(planes.shape[2]):
        iio.imwrite(folder / f"{prefix}_{i + 1:02d}.png", planes[:, :, i])


# ------------------------------------------------------------------------- CAVE folders
def test_cave_folder_31_bands(tmp_path, rng):
    planes = rng.integers(0, 65535, size=(6, 7, 31), endpoint=True).astype(np.uint16)
    write_cave_folder(tmp_path / "scene_ms", planes)
    (tmp_path / "scene_ms" / "scene_RGB.bmp").write_bytes(b"not a band")
    cube = load(tmp_path / "scene_ms")
    np.testing.assert_allclose(cube.data, planes / 65535.0, rtol=1e-6)
    np.testing.assert_array_equal(cube.wavelengths, np.arange(400, 701, 10))
    assert cube.name == "scene_ms" and cube.metadata["format"] == "PNG folder"


def test_cave_nested_layout_and_given_wavelengths(tmp_path, rng):
    planes = rng.integers(0, 255, size=(3, 4, 5)).astype(np.uint8)
    write_cave_folder(tmp_path / "outer" / "scene_ms", planes)
    cube = load(tmp_path / "outer", wavelengths="450:650:50")
    np.testing.assert_allclose(cube.data, planes / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(cube.wavelengths, [450, 500, 550, 600, 650])


def test_cave_folder_errors(tmp_path, rng):
    planes = rng.integers(0, 65535, size=(3, 4, 4)).astype(np.uint16)
    write_cave_folder(tmp_path / "gap", planes)
    (tmp_path / "gap" / "scene_ms_03.png").unlink()
    with pytest.raises(InputError, match="gap: band images of 'scene_ms' have gaps: missing numbers 3"):
        load(tmp_path / "gap")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: a folder must hold one PNG per band"):
        load(tmp_path / "empty")
    write_cave_folder(tmp_path / "mixed", planes)
    iio.imwrite(tmp_path / "mixed" / "scene_ms_05.png", np.zeros((5, 5), np.uint16))
    with pytest.raises(InputError, match=r"scene_ms_05.png: shape \(5, 5\) uint16 differs"):
        load(tmp_path / "mixed")


# ------------------------------------------------------------------------- NumPy
def test_npy_round_trip_warns_that_band_metadata_is_dropped(tmp_path, small_cube, caplog):
    path = save(small_cube, tmp_path / "c.npy")
    assert "wavelengths, fwhm and bad bands are not saved" in caplog.text
    np.testing.assert_array_equal(np.load(path), small_cube.data)
    back = load(path, wavelengths=small_cube.wavelengths)
    np.testing.assert_array_equal(back.data, small_cube.data)
    np.testing.assert_array_equal(back.wavelengths, small_cube.wavelengths)


@pytest.mark.parametrize("compress", [False, True])
def test_npz_round_trip(tmp_path, small_cube, compress):
    cube = Cube(small_cube.data, wavelengths=small_cube.wavelengths, fwhm=np.arange(31.0) + 1,
                bad_bands=(4,), name="n")
    back = load(save(cube, tmp_path / "c.npz", compress=compress))
    np.testing.assert_array_equal(back.data, cube.data)
    np.testing.assert_array_equal(back.wavelengths, cube.wavelengths)
    np.testing.assert_array_equal(back.fwhm, cube.fwhm)
    assert back.bad_bands == (4,)


def test_npy_bad_inputs(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 5), np.float32))
    with pytest.raises(InputError, match=r"flat.npy: expected a 3-D cube .* shape \(4, 5\)"):
        load(tmp_path / "flat.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="obj.npy: cannot read a .npy array"):
        load(tmp_path / "obj.npy")
    np.save(tmp_path / "cplx.npy", np.zeros((2, 2, 2), np.complex64))
    with pytest.raises(InputError, match="cplx.npy: complex data"):
        load(tmp_path / "cplx.npy")
    np.save(tmp_path / "text.npy", np.full((2, 2, 2), "a"))
    with pytest.raises(InputError, match="text.npy: data type <U1 is not numeric"):
        load(tmp_path / "text.npy")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="junk.npy"):
        load(tmp_path / "junk.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 2, 4)), b=np.zeros((2, 2, 5)))
    with pytest.raises(InputError, match="several 3-D arrays.*--var"):
        load(tmp_path / "two.npz")
    assert load(tmp_path / "two.npz", var="b").n_bands == 5


# ------------------------------------------------------------------------- TIFF
@pytest.mark.parametrize("compress", [False, True])
def test_tiff_round_trip_keeps_band_metadata(tmp_path, small_cube, compress):
    cube = Cube(small_cube.data, wavelengths=small_cube.wavelengths, bad_bands=(1, 2), name="t")
    path = save(cube, tmp_path / "c.tif", compress=compress)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 31  # one page per band
    back = load(path)
    np.testing.assert_array_equal(back.data, cube.data)
    np.testing.assert_array_equal(back.wavelengths, cube.wavelengths)
    assert back.bad_bands == (1, 2)


def test_foreign_multipage_uint16_tiff(tmp_path, rng):
    pages = rng.integers(0, 65535, size=(6, 5, 4)).astype(np.uint16)  # (B, H, W) pages
    tifffile.imwrite(tmp_path / "pages.tiff", pages, photometric="minisblack")
    cube = load(tmp_path / "pages.tiff")
    assert cube.shape == (5, 4, 6)
    np.testing.assert_allclose(cube.data, pages.transpose(1, 2, 0) / 65535.0, rtol=1e-6)


def test_tiff_bad_inputs(tmp_path):
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((4, 5), np.uint8))
    with pytest.raises(InputError, match="flat.tif: a single 2-D image"):
        load(tmp_path / "flat.tif")
    (tmp_path / "junk.tif").write_bytes(b"II*\x00" + bytes(range(200)))
    with pytest.raises(InputError, match="junk.tif: (cannot read a TIFF|the TIFF holds no image)"):
        load(tmp_path / "junk.tif")


# ------------------------------------------------------------------------- RGB images
@pytest.mark.parametrize("bits", [8, 16])
def test_rgb_png_round_trip(tmp_path, rng, bits):
    rgb = rng.random((5, 6, 3)).astype(np.float32)
    path = save_rgb(rgb, tmp_path / "x.png", bits=bits)
    stored = iio.imread(path)  # Pillow reads 16-bit colour PNGs as their high bytes
    top = 2 ** bits - 1
    np.testing.assert_array_equal(stored, np.round(rgb * top).astype(np.int64) >> (bits - 8))
    back = load_rgb(path)
    np.testing.assert_allclose(back, rgb, atol=0.5 / top + 1e-7)


def _filtered_png16(img: np.ndarray, filters: list[int]) -> bytes:
    """A 16-bit RGB PNG whose rows use the given filter types (forward filters per the spec)."""
    import struct
    import zlib

    h, w, _ = img.shape
    rows = img.astype(">u2").reshape(h, -1).view(np.uint8).astype(np.int64)
    bpp, out = 6, []
    for r in range(h):
        x, up = rows[r], rows[r - 1] if r else np.zeros_like(rows[r])
        left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
        corner = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, corner))
        pred = {0: 0, 1: left, 2: up, 3: (left + up) // 2, 4: paeth}[filters[r]]
        out.append(bytes([filters[r]]) + ((x - pred) % 256).astype(np.uint8).tobytes())

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(out))) + chunk(b"IEND", b""))


def test_16_bit_png_decoder_handles_every_row_filter(tmp_path, rng):
    img = rng.integers(0, 65535, size=(5, 7, 3), endpoint=True).astype(np.uint16)
    (tmp_path / "f.png").write_bytes(_filtered_png16(img, [0, 1, 2, 3, 4]))
    np.testing.assert_allclose(load_rgb(tmp_path / "f.png"), img / 65535.0, rtol=1e-6)


def test_load_rgb_of_grey_rgba_and_cube(tmp_path, small_cube):
    iio.imwrite(tmp_path / "grey.png", np.full((3, 4), 255, np.uint8))
    assert load_rgb(tmp_path / "grey.png").shape == (3, 4, 3)
    iio.imwrite(tmp_path / "rgba.png", np.zeros((3, 4, 4), np.uint8))
    assert load_rgb(tmp_path / "rgba.png").shape == (3, 4, 3)
    save(small_cube, tmp_path / "c.npz")
    gamma = load_rgb(tmp_path / "c.npz")
    np.testing.assert_array_equal(gamma, small_cube.data[:, :, [26, 15, 7]])  # Γ: 660/550/470 nm


def test_rgb_bad_inputs(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(InputError, match="broken.png: cannot read this image"):
        load_rgb(tmp_path / "broken.png")
    with pytest.raises(MissingFileError):
        load_rgb(tmp_path / "none.png")
    with pytest.raises(InputError, match="written as .png or .jpg"):
        save_rgb(np.zeros((2, 2, 3)), tmp_path / "x.gif")
    with pytest.raises(InputError, match="16-bit output is not possible for .jpg"):
        save_rgb(np.zeros((2, 2, 3)), tmp_path / "x.jpg", bits=16)


# ------------------------------------------------------------------------- dispatch
def test_missing_and_unknown(tmp_path, small_cube):
    with pytest.raises(MissingFileError, match="nothing.mat: no such file"):
        load(tmp_path / "nothing.mat")
    (tmp_path / "cube.xyz").write_bytes(b"data")
    with pytest.raises(InputError, match=r"cube.xyz: unknown file type '.xyz'"):
        load(tmp_path / "cube.xyz")
    with pytest.raises(InputError, match=r"cannot save a cube as '.png'"):
        save(small_cube, tmp_path / "cube.png")
    with pytest.raises(InputError, match="needs a Cube"):
        save(np.zeros((2, 2, 2)), tmp_path / "a.npy")  # type: ignore[arg-type]
    assert format_of(tmp_path) == "folder"


def test_failed_save_leaves_the_old_file_and_no_temp_file(tmp_path, small_cube, monkeypatch):
    target = tmp_path / "keep.npz"
    save(small_cube, target)
    before = target.read_bytes()

    def explode(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(HiralignError, match="keep.npz: cannot write: No space left on device"):
        save(small_cube.with_data(small_cube.data * 0.5), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npz"]


def test_var_is_ignored_with_a_warning_outside_containers(tmp_path, small_cube):
    path = save(small_cube, tmp_path / "c.tif")
    cube = load(path, var="cube")
    assert any("--var 'cube' applies to MAT, NPZ and HDF5/NetCDF files only" in w for w in cube.metadata["warnings"])
