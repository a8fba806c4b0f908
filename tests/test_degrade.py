"""D_task: statistics, reproducibility, batch/device independence, MATLAB-equivalent resizing."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import convolve1d

from hiralign import degrade as D
from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError


def _flat(device: torch.device, n: int = 2, bands: int = 31, size: int = 64, level: float = 0.5) -> torch.Tensor:
    return torch.full((n, bands, size, size), level, device=device)


def test_tasks_and_descriptions_agree() -> None:
    assert D.TASKS == ("gaussian", "complex", "sr4", "deblur", "bandmiss", "inpaint")
    assert D.ALL_TASKS == D.TASKS + ("sensor",)
    assert set(D.DEGRADATIONS) == set(D.ALL_TASKS)
    assert all(D.DEGRADATIONS[t].name == t and D.DEGRADATIONS[t].description for t in D.ALL_TASKS)
    assert [D.scale_factor(t) for t in D.ALL_TASKS] == [1, 1, 4, 1, 1, 1, 1]


@pytest.mark.parametrize("task", D.ALL_TASKS)
def test_shape_dtype_device_and_rank_are_kept(task: str, device: torch.device) -> None:
    x = torch.rand(3, 8, 32, 32, device=device)
    y = D.degrade(x, task, 0)
    size = 32 // D.scale_factor(task)
    assert y.shape == (3, 8, size, size) and y.dtype == x.dtype and y.device == x.device
    assert D.degrade(x[0], task, 0).shape == (8, size, size)
    assert torch.equal(x, x.clone())  # input untouched (pure)


@pytest.mark.parametrize("task", ["gaussian", "complex", "bandmiss", "inpaint", "sensor"])
def test_seed_reproducible_and_batch_position_independent(task: str, device: torch.device) -> None:
    x = torch.rand(3, 12, 24, 24, device=device)
    a = D.degrade(x, task, 7)
    assert torch.equal(a, D.degrade(x, task, 7))
    assert not torch.equal(a, D.degrade(x, task, 8))
    # Image 0 gets the same degradation alone, in a batch of 3, or in a batch of 2.
    assert torch.equal(a[0], D.degrade(x[0], task, 7))
    assert torch.equal(a[:2], D.degrade(x[:2], task, 7))
    # Images of one batch get different draws (not one pattern repeated).
    same = x[:1].expand(2, -1, -1, -1)
    b = D.degrade(same, task, 7)
    assert not torch.equal(b[0], b[1])


def test_generator_advances_between_calls(device: torch.device) -> None:
    gen = torch.Generator().manual_seed(3)
    x = _flat(device, n=1, bands=4, size=16)
    first, second = D.degrade(x, "gaussian", gen), D.degrade(x, "gaussian", gen)
    assert not torch.equal(first, second)
    gen.manual_seed(3)
    assert torch.equal(first, D.degrade(x, "gaussian", gen))


def test_gaussian_band_std_in_protocol_range(device: torch.device) -> None:
    x = _flat(device, n=4, size=96)
    noise = D.degrade(x, "gaussian", 0) - x
    std = noise.std(dim=(-2, -1)).cpu()
    low, high = D.NOISE_SIGMA_RANGE
    assert torch.all(std > low * 0.95) and torch.all(std < high * 1.05)
    assert std.max() - std.min() > 0.1  # non-i.i.d.: bands differ a lot
    assert abs(float(noise.mean())) < 2e-3
    assert float(D.degrade(torch.zeros_like(x), "gaussian", 0).min()) < 0.0  # not clipped


def test_complex_corruptions_on_disjoint_thirds(device: torch.device) -> None:
    n, bands, size = 3, 31, 80
    x = _flat(device, n=n, bands=bands, size=size)
    y = D.degrade(x, "complex", 5).cpu()
    gauss = D.degrade(x, "gaussian", 5).cpu()  # same generators: identical Gaussian part
    diff = y - gauss
    third = bands // 3
    for i in range(n):
        is_impulse = (y[i] == 1).float().mean(dim=(-2, -1)) > 0.02  # salt never occurs by chance
        dead_col = (y[i] == 0).all(dim=1)  # (bands, W): whole zero columns
        is_dead = dead_col.any(dim=1) & ~is_impulse
        column_const = diff[i].std(dim=1) < 1e-6  # stripe offset is constant down a column
        is_stripe = ((diff[i].abs().amax(dim=1) > 1e-6) & column_const).any(dim=1) & ~is_impulse & ~is_dead
        assert int(is_impulse.sum()) == int(is_dead.sum()) == int(is_stripe.sum()) == third
        assert not (is_impulse & is_dead).any() and not (is_stripe & is_dead).any()
        clean = ~(is_impulse | is_dead | is_stripe)
        assert int(clean.sum()) == bands - 3 * third
        assert torch.equal(y[i][clean], gauss[i][clean])
        low, high = D._column_counts(size, D.DEADLINE_COLUMN_FRACTION)
        for b in torch.nonzero(is_dead).ravel():
            assert low <= int(dead_col[b].sum()) <= high
        for b in torch.nonzero(is_stripe).ravel():
            cols = diff[i, b].abs().amax(dim=0) > 1e-6
            assert low <= int(cols.sum()) <= high
            assert float(diff[i, b].abs().max()) <= D.STRIPE_OFFSET + 1e-6
        for b in torch.nonzero(is_impulse).ravel():
            hit = float(((y[i, b] == 0) | (y[i, b] == 1)).float().mean())
            assert min(abs(hit - a) for a in D.IMPULSE_AMOUNTS) < 0.03
            salt = float((y[i, b] == 1).float().mean())
            assert abs(salt - hit / 2) < 0.03


def test_bandmiss_zeroes_thirty_percent_of_bands(device: torch.device) -> None:
    x = torch.rand(4, 31, 16, 16, device=device) + 0.1
    y = D.degrade(x, "bandmiss", 1)
    zero_bands = (y == 0).all(dim=-1).all(dim=-1)
    assert zero_bands.sum(dim=1).tolist() == [round(0.3 * 31)] * 4
    assert torch.equal(y[~zero_bands], x[~zero_bands])
    assert len({tuple(row.tolist()) for row in zero_bands.cpu()}) > 1  # random per image


def test_inpaint_masks_ninety_percent_of_voxels(device: torch.device) -> None:
    x = torch.rand(2, 31, 64, 64, device=device) + 0.1
    y = D.degrade(x, "inpaint", 2)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.1) < 0.005
    assert torch.equal(y[kept], x[kept])


def test_deblur_kernel_and_reflect_borders_match_scipy(device: torch.device) -> None:
    k = D.gaussian_kernel_1d()
    assert k.shape == (15,) and math.isclose(k.sum(), 1.0) and np.argmax(k) == 7
    assert math.isclose(D.BLUR_SIGMA, 2.6)
    assert np.isclose(np.outer(k, k).sum(), 1.0)
    x = torch.rand(2, 3, 20, 27, dtype=torch.float64, device=device)
    y = D.degrade(x, "deblur", 0).cpu().numpy()
    # scipy 'mirror' = d c b | a b c d = OpenCV BORDER_REFLECT_101.
    ref = convolve1d(convolve1d(x.cpu().numpy(), k, axis=2, mode="mirror"), k, axis=3, mode="mirror")
    np.testing.assert_allclose(y, ref, atol=1e-12)
    flat = D.degrade(_flat(device, n=1, bands=2, size=16), "deblur", 0)
    assert torch.allclose(flat, _flat(device, n=1, bands=2, size=16), atol=1e-6)  # kernel sums to 1


def _matlab_imresize_reference(img: np.ndarray, scale: float, antialias: bool) -> np.ndarray:
    """Loop-by-loop re-derivation of MATLAB imresize (bicubic) for a 2-D array.

    Follows MATLAB's ``contributions`` step literally: 1-based output coordinates,
    kernel stretched when shrinking with anti-aliasing, weights normalised, out-of-range
    indices mapped through aux = [1..L, L..1], then one 1-D pass per dimension.
    """
    def cubic(t: float) -> float:
        a = abs(t)
        if a <= 1:
            return 1.5 * a ** 3 - 2.5 * a ** 2 + 1
        if a <= 2:
            return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2
        return 0.0

    def resize_axis0(arr: np.ndarray) -> np.ndarray:
        length = arr.shape[0]
        out_len = math.ceil(length * scale)
        shrink = antialias and scale < 1
        width = 4 / scale if shrink else 4
        aux = list(range(1, length + 1)) + list(range(length, 0, -1))
        out = np.zeros((out_len,) + arr.shape[1:])
        for u in range(1, out_len + 1):
            x = u / scale + 0.5 * (1 - 1 / scale)
            left = math.floor(x - width / 2)
            total, acc = 0.0, np.zeros(arr.shape[1:])
            for j in range(left, left + math.ceil(width) + 2):
                w = scale * cubic(scale * (x - j)) if shrink else cubic(x - j)
                src = aux[(j - 1) % len(aux)] - 1
                acc = acc + w * arr[src]
                total += w
            out[u - 1] = acc / total
        return out

    return resize_axis0(resize_axis0(img).T).T


def test_imresize_matches_known_octave_values() -> None:
    # Octave/MATLAB: imresize(reshape(0:15,4,4)', 0.5, 'bicubic', 'AntiAliasing', false).
    img = torch.arange(16.0, dtype=torch.float64).reshape(4, 4)
    expected = [[2.1875, 4.3125], [10.6875, 12.8125]]
    np.testing.assert_allclose(D.resize_bicubic(img, 0.5, antialias=False).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(_matlab_imresize_reference(img.numpy(), 0.5, False), expected, atol=1e-12)


def test_sr4_matches_matlab_imresize_rederivation(device: torch.device) -> None:
    rng = np.random.default_rng(0)
    img = rng.random((24, 36))
    ref = _matlab_imresize_reference(img, 0.25, True)
    x = torch.as_tensor(img, device=device)[None, None].expand(1, 2, -1, -1)
    out = D.degrade(x, "sr4", 0).cpu().numpy()
    assert out.shape == (1, 2, 6, 9)
    np.testing.assert_allclose(out[0, 1], ref, atol=1e-12)
    # A constant image stays constant (weights sum to 1, borders mirrored).
    flat = D.degrade(_flat(device, n=1, bands=1, size=32), "sr4", 0)
    assert torch.allclose(flat, torch.full_like(flat, 0.5), atol=1e-6)


def test_sr4_interior_equals_torch_antialiased_bicubic() -> None:
    # torch's antialiased bicubic uses the same a = -0.5 widened kernel; only borders differ.
    x = torch.rand(1, 2, 64, 64, dtype=torch.float64)
    ours = D.degrade(x, "sr4", 0)
    theirs = torch.nn.functional.interpolate(x, scale_factor=0.25, mode="bicubic", antialias=True)
    assert torch.allclose(ours[..., 2:-2, 2:-2], theirs[..., 2:-2, 2:-2], atol=1e-10, rtol=0)


def test_bad_inputs_raise_clear_errors() -> None:
    x = torch.rand(2, 4, 16, 16)
    with pytest.raises(ConfigError, match="unknown degradation task 'denoise'.*gaussian"):
        D.degrade(x, "denoise", 0)
    with pytest.raises(ConfigError, match="seed"):
        D.degrade(x, "gaussian", 0.5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="divisible by 4"):
        D.degrade(torch.rand(4, 18, 16), "sr4", 0)
    with pytest.raises(InputError, match="floating-point"):
        D.degrade(torch.ones(4, 16, 16, dtype=torch.int32), "gaussian", 0)
    with pytest.raises(InputError, match="shape"):
        D.degrade(torch.rand(16, 16), "gaussian", 0)
    with pytest.raises(InputError, match="at least 8"):
        D.degrade(torch.rand(2, 6, 30), "deblur", 0)


def test_degrade_cube_keeps_metadata_and_crops_for_sr4(small_cube: Cube) -> None:
    noisy = D.degrade_cube(small_cube, "gaussian", 0)
    assert noisy.shape == small_cube.shape and noisy.name == "small_gaussian"
    np.testing.assert_array_equal(noisy.wavelengths, small_cube.wavelengths)
    assert noisy.metadata["degradation"]["seed"] == 0
    np.testing.assert_array_equal(noisy.data, D.degrade_cube(small_cube, "gaussian", 0).data)
    odd = small_cube.crop(0, 0, 30, 39)
    with pytest.warns(UserWarning, match="cropped to 28×36"):
        lr = D.degrade_cube(odd, "sr4", 0)
    assert lr.shape == (7, 9, 31)
    assert D.crop_to_scale(odd, "sr4").shape == (28, 36, 31)
    assert D.crop_to_scale(odd, "gaussian") is odd


# ------------------------------------------------------------------------------ sensor
def _noise_model(a, b, units: str = "normalised"):
    from hiralign.noise import NoiseModel

    a, b = tuple(float(v) for v in a), tuple(float(v) for v in b)
    return NoiseModel(sigma=tuple(math.sqrt(v) for v in b), a=a, b=b, mean=(0.5,) * len(a),
                      scale=(1.0,) * len(a), units=units)


def test_sensor_variance_of_flat_patches_is_a_mu_plus_b(device: torch.device) -> None:
    bands = 5
    a = np.array([0.0, 1e-3, 4e-3, 1e-2, 3e-2])
    b = np.array([1e-3, 1e-4, 4e-4, 1e-5, 2e-3])
    model = _noise_model(a, b)
    levels = torch.tensor([0.05, 0.3, 0.9], device=device)
    x = levels.view(3, 1, 1, 1).expand(3, bands, 128, 128).contiguous()
    noise = (D.degrade(x, "sensor", 11, noise=model) - x).cpu().double()
    var = noise.var(dim=(-2, -1)).numpy()
    expected = a[None, :] * levels.cpu().numpy()[:, None] + b[None, :]
    np.testing.assert_allclose(var, expected, rtol=0.05)  # 16384 samples: 1.1 % standard error
    assert abs(float(noise.mean())) < 1e-3
    # The dict form (a run's noise.json) gives the same draw.
    assert torch.equal(D.degrade(x, "sensor", 11, noise=model.to_dict()), D.degrade(x, "sensor", 11, noise=model))


def test_sensor_without_a_model_draws_realistic_random_parameters(device: torch.device) -> None:
    n, bands = 24, 3
    x = torch.full((n, bands, 64, 64), 0.5, device=device)
    x[..., 32:] = 0.0  # left half at 0.5, right half dark: separates a·μ from b per image
    noise = (D.degrade(x, "sensor", 0) - x).cpu().double()
    var_bright = noise[..., :32].var(dim=(-2, -1))
    var_dark = noise[..., 32:].var(dim=(-2, -1))
    a_est = ((var_bright - var_dark) / 0.5).clamp(min=0)
    s_low, s_high = D.SENSOR_READ_SIGMA_RANGE
    spread = D.SENSOR_BAND_SPREAD
    sigma_dark = var_dark.sqrt()
    assert float(sigma_dark.min()) > 0.8 * s_low / spread and float(sigma_dark.max()) < 1.2 * s_high * spread
    assert float(sigma_dark.max() / sigma_dark.min()) > 10  # spans decades over images
    a_low, a_high = D.SENSOR_GAIN_RANGE
    assert float(a_est.max()) < 1.5 * a_high * spread and float(a_est.max()) > 10 * a_low
    # Bands of one image differ, within the per-band spread.
    ratio = sigma_dark.amax(dim=1) / sigma_dark.amin(dim=1)
    assert float(ratio.max()) > 1.1 and float(ratio.max()) < 1.1 * spread ** 2


@pytest.mark.parametrize("bands", [1, 16, 224])
def test_sensor_is_band_count_agnostic(bands: int, device: torch.device) -> None:
    x = torch.rand(2, bands, 16, 16, device=device)
    assert D.degrade(x, "sensor", 3).shape == x.shape
    model = _noise_model(np.full(bands, 1e-3), np.full(bands, 1e-4))
    assert torch.equal(D.degrade(x, "sensor", 3, noise=model), D.degrade(x, "sensor", 3, noise=model))
    with pytest.raises(InputError, match=f"{bands} bands but the data has {bands + 1}"):
        D.degrade(torch.rand(1, bands + 1, 8, 8, device=device), "sensor", 0, noise=model)


def test_a_noise_model_is_only_for_the_sensor_task() -> None:
    model = _noise_model([1e-3], [1e-4])
    with pytest.raises(ConfigError, match="only used by the sensor task"):
        D.degrade(torch.rand(1, 1, 8, 8), "gaussian", 0, noise=model)
    with pytest.raises(ConfigError, match="NoiseModel"):
        D.degrade(torch.rand(1, 1, 8, 8), "sensor", 0, noise=[1, 2])  # type: ignore[arg-type]


def test_degrade_cube_converts_a_counts_model_to_the_loaded_scale() -> None:
    from hiralign.noise import NoiseModel

    counts = np.full((96, 96, 2), 100.0)
    cube = Cube(data=(counts / 65535).astype(np.float32), name="imec",
                metadata={"scaling": {"divisor": 65535.0, "reason": "uint16 full scale"}})
    model = NoiseModel(sigma=(3.0, 4.0), a=(0.2, 0.1), b=(6.0, 5.0), mean=(100.0, 100.0),
                       scale=(65535.0, 65535.0), units="counts")
    noisy = D.degrade_cube(cube, "sensor", 1, noise=model)
    var_counts = ((noisy.data.astype(np.float64) - cube.data) * 65535).var(axis=(0, 1))
    np.testing.assert_allclose(var_counts, [0.2 * 100 + 6, 0.1 * 100 + 5], rtol=0.06)
    assert noisy.metadata["degradation"]["noise"]["units"] == "counts"


def test_random_sensor_range_covers_the_real_captures_after_normalisation() -> None:
    from conftest import shared_file

    from hiralign.intensity import noise_on_network_scale, scale_for_task
    from hiralign.io import load
    from hiralign.noise import estimate_noise

    for name in ("VIS_leaves_FD1_FN0_original.hdr", "RedYellowSet_3_FD1_FN0.hdr"):
        cube = load(shared_file("envi", name))
        net = noise_on_network_scale(estimate_noise(cube), scale_for_task("sensor", cube))
        spread = D.SENSOR_BAND_SPREAD
        a = np.array(net.a)
        read = np.sqrt(net.b)
        # Bands whose fitted a (or b) is ~0 are the estimate's, not the sensor's: the others must be covered,
        # also for a 4× noisier variant (a·4, b·4).
        for factor in (1.0, 4.0):
            a_pos, read_pos = a[a > 0] * factor, read[read > 0] * np.sqrt(factor)
            assert np.all(a_pos > D.SENSOR_GAIN_RANGE[0] / spread) and np.all(a_pos < D.SENSOR_GAIN_RANGE[1] * spread)
            assert np.all(read_pos > D.SENSOR_READ_SIGMA_RANGE[0] / spread)
            assert np.all(read_pos < D.SENSOR_READ_SIGMA_RANGE[1] * spread)
