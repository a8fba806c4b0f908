import numpy as np
import pytest

from hiralign.bands import match_bands, resample_bands
from hiralign.cube import Cube
from hiralign.errors import InputError


def _ramp(wl: np.ndarray) -> Cube:
    data = np.broadcast_to(wl / 1000.0, (3, 4, wl.size)).astype(np.float32)
    return Cube(data.copy(), wavelengths=wl, name="ramp")


def test_resample_is_exact_on_a_linear_spectrum() -> None:
    cube = _ramp(np.arange(400, 701, 10.0))
    out = resample_bands(cube, np.arange(405, 696, 5.0))
    np.testing.assert_allclose(out.data[0, 0], np.arange(405, 696, 5.0) / 1000, atol=1e-6)


def test_same_count_is_used_index_wise_with_a_warning_for_a_shift() -> None:
    cube = _ramp(np.arange(420, 721, 10.0))
    with pytest.warns(UserWarning, match="20 nm"):
        out, mapped = match_bands(cube, 31, np.arange(400, 701, 10.0))
    assert out is cube and not mapped


def test_other_count_is_resampled_when_ranges_overlap() -> None:
    cube = _ramp(np.linspace(400, 700, 61))
    out, mapped = match_bands(cube, 31, np.arange(400, 701, 10.0))
    assert mapped and out.n_bands == 31
    with pytest.raises(InputError, match="cover"):
        match_bands(_ramp(np.linspace(1000, 2500, 50)), 31, np.arange(400, 701, 10.0))
    with pytest.raises(InputError, match="without wavelengths"):
        match_bands(Cube(np.zeros((2, 2, 16))), 31, None)


def test_resample_keeps_fwhm_bad_bands_and_mask() -> None:
    wl = np.linspace(400, 1000, 16)
    mask = np.zeros((3, 4, 16), bool)
    mask[0, 0, 5] = True
    cube = Cube(np.random.default_rng(0).random((3, 4, 16), dtype=np.float32), wavelengths=wl,
                fwhm=np.linspace(5, 20, 16), bad_bands=(5,), name="c", mask=mask)
    model_wl = np.arange(400, 1001, 10.0)
    out = resample_bands(cube, model_wl)
    assert out.fwhm is not None and out.fwhm.shape == (61,)
    np.testing.assert_allclose(out.fwhm, np.interp(model_wl, wl, cube.fwhm))
    # the model bands mixing bad band 5 (600 nm ± one step of 40 nm) are bad, no others
    between = (model_wl > wl[4]) & (model_wl < wl[6])
    assert set(out.bad_bands) == set(np.flatnonzero(between).tolist())
    assert out.mask is not None and out.mask[0, 0, between].all() and not out.mask[0, 0, ~between].any()
    back = resample_bands(out, wl)  # the round trip restores the cube's own band metadata
    np.testing.assert_array_equal(back.fwhm, cube.fwhm)
    assert back.bad_bands == (5,)
    assert "resampled_from" not in back.metadata
