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
