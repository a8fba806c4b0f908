import numpy as np
import pytest
import torch

from hiralign.cube import Cube, parse_wavelengths, to_nanometres
from hiralign.errors import InputError


def test_pseudo_rgb_picks_bands_nearest_660_550_470(small_cube: Cube) -> None:
    assert small_cube.rgb_band_indices() == (26, 15, 7)
    rgb = small_cube.pseudo_rgb()
    assert rgb.shape == (32, 40, 3) and rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb[..., 0], small_cube.data[..., 26])


def test_kaist_like_wavelengths_give_published_indices() -> None:
    cube = Cube(np.zeros((2, 2, 31)), wavelengths=np.arange(420, 721, 10))
    assert cube.rgb_band_indices() == (24, 13, 5)


def test_band_lookup_accepts_micrometres_and_ints(small_cube: Cube) -> None:
    assert small_cube.band_index(550) == small_cube.band_index(0.55) == small_cube.band_index(551.2) == 15


def test_micrometre_wavelengths_are_converted() -> None:
    np.testing.assert_allclose(to_nanometres([0.43, 0.86]), [430, 860])
    np.testing.assert_allclose(to_nanometres([430, 860], "Nanometers"), [430, 860])
    np.testing.assert_allclose(to_nanometres([1.0], "Micrometers"), [1000])


def test_parse_wavelengths_range_and_list() -> None:
    np.testing.assert_allclose(parse_wavelengths("420:720:10"), np.arange(420, 721, 10))
    np.testing.assert_allclose(parse_wavelengths("450, 550,650"), [450, 550, 650])
    with pytest.raises(InputError):
        parse_wavelengths("blue")


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), np.zeros((2, 2, 2, 2))])
def test_wrong_dimensions_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(InputError, match="3-D"):
        Cube(bad)


def test_wavelength_count_and_order_are_checked() -> None:
    with pytest.raises(InputError, match="3 wavelengths given for 4 bands"):
        Cube(np.zeros((2, 2, 4)), wavelengths=[1, 2, 3])
    with pytest.raises(InputError, match="increasing"):
        Cube(np.zeros((2, 2, 3)), wavelengths=[500, 490, 510])


def test_missing_wavelengths_assume_400_700_for_31_bands_with_warning() -> None:
    cube = Cube(np.zeros((2, 2, 31)))
    with pytest.warns(UserWarning, match="400–700"):
        assert cube.band_index(660) == 26
    with pytest.raises(InputError, match="no wavelengths"):
        Cube(np.zeros((2, 2, 16))).pseudo_rgb()


def test_crop_and_torch_round_trip(small_cube: Cube) -> None:
    crop = small_cube.crop(4, 5, 10, 12)
    assert crop.shape == (10, 12, 31)
    np.testing.assert_array_equal(crop.data, small_cube.data[4:14, 5:17])
    tensor = crop.to_torch()
    assert tensor.shape == (31, 10, 12) and tensor.dtype == torch.float32
    back = Cube.from_torch(tensor, like=crop)
    np.testing.assert_array_equal(back.data, crop.data)
    np.testing.assert_array_equal(back.wavelengths, crop.wavelengths)
    with pytest.raises(InputError, match="outside"):
        small_cube.crop(30, 0, 10, 10)


def test_nonfinite_values_are_counted_and_zeroed(small_cube: Cube) -> None:
    data = small_cube.data.copy()
    data[0, 0, :3] = np.nan
    data[1, 1, 0] = np.inf
    cube = small_cube.with_data(data)
    assert cube.count_nonfinite() == 4
    assert cube.zero_nonfinite().count_nonfinite() == 0
