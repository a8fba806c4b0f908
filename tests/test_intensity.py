"""Intensity normalisation: robust scales, the task policy, the way back to the input's range."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from conftest import shared_file

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.intensity import (
    IntensityScale,
    denormalise,
    estimate_scale,
    noise_on_network_scale,
    normalise,
    robust_peak,
    scale_for_task,
    to_input_range,
)
from hiralign.noise import NoiseModel

COUNTS = {"scaling": {"divisor": 65535.0, "reason": "uint16 full scale"}, "dtype": "uint16"}


def _dark_capture(rng: np.random.Generator, peak_counts: float = 250.0, shape=(40, 50, 4), name="dark") -> Cube:
    counts = np.rint(rng.random(shape) * peak_counts)
    return Cube(data=(counts / 65535).astype(np.float32), name=name, metadata=dict(COUNTS),
                wavelengths=np.linspace(476, 629, shape[-1]))


def test_robust_peak_ignores_a_few_hot_pixels_and_pools_cubes() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((100, 100, 3)).astype(np.float32) * 0.5
    a[0, :5] = 40.0  # 15 hot samples of 30 000: under the 0.1 % the percentile ignores
    assert robust_peak(a)[0] == pytest.approx(0.5, rel=0.01)
    b = a * 2
    assert robust_peak([a, b])[0] == pytest.approx(float(np.percentile(np.concatenate([a.ravel(), b.ravel()]), 99.9)),
                                                   rel=1e-3)
    with pytest.raises(InputError, match="all zero"):
        robust_peak(np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ConfigError, match="percentile"):
        robust_peak(a, percentile=20)


def test_one_scale_per_run_or_per_band() -> None:
    rng = np.random.default_rng(1)
    cubes = [_dark_capture(rng, 250.0), _dark_capture(rng, 500.0)]
    run = estimate_scale(cubes)
    assert len(run.values) == 1 and run.mode == "cube"
    assert run.values[0] * 65535 == pytest.approx(500 * 0.999, rel=0.01)  # pooled: the brighter capture sets it
    data = np.stack([np.full((8, 8), 0.1), np.full((8, 8), 0.4), np.zeros((8, 8))], axis=-1).astype(np.float32)
    per = estimate_scale(data, mode="band")
    # An all-zero band takes the all-bands scale instead of dividing by 0.
    assert per.values == pytest.approx((0.1, 0.4, 0.4))
    with pytest.raises(ConfigError, match="mode"):
        estimate_scale(data, mode="pixel")


def test_normalise_denormalise_round_trip_and_record() -> None:
    rng = np.random.default_rng(2)
    cube = _dark_capture(rng)
    scale = estimate_scale(cube, mode="band")
    z = normalise(cube, scale)
    assert z.data.dtype == np.float32 and np.percentile(z.data, 99.9) == pytest.approx(1.0, rel=0.02)
    assert IntensityScale.from_dict(json.loads(json.dumps(z.metadata["intensity_scale"]))) == scale
    back = denormalise(z, scale)
    np.testing.assert_allclose(back.data, cube.data, rtol=1e-6)
    assert "intensity_scale" not in back.metadata
    np.testing.assert_array_equal(back.wavelengths, cube.wavelengths)
    np.testing.assert_allclose(normalise(cube.data, scale), z.data)  # arrays work too
    with pytest.raises(InputError, match="4 bands but the cube has 3"):
        normalise(cube.data[..., :3], scale)
    with pytest.raises(InputError, match="> 0"):
        IntensityScale(values=(0.0,))
    with pytest.raises(InputError, match="values"):
        IntensityScale.from_dict({"mode": "cube"}, source="intensity.json")


def test_policy_sensor_always_normalises_protocol_tasks_only_when_needed() -> None:
    rng = np.random.default_rng(3)
    dark = _dark_capture(rng)
    full = Cube(data=rng.random((30, 30, 4)).astype(np.float32), name="full")
    sensor = scale_for_task("sensor", full)
    assert not sensor.is_identity and sensor.values[0] == pytest.approx(1.0, rel=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cube filling [0, 1]: no warning, scale 1
        kept = scale_for_task("gaussian", full)
    assert kept.is_identity and kept.mode == "none" and "no rescaling" in kept.reason
    with pytest.warns(UserWarning, match="divided by it"):
        dark_scale = scale_for_task("gaussian", dark)  # dark 10-bit data: normal input, normalised
    assert dark_scale.values[0] * 65535 == pytest.approx(250, rel=0.02)
    with pytest.warns(UserWarning, match="percentile is 2"):
        scale_for_task("sr4", Cube(data=full.data * 2.5, name="bright"))
    with pytest.raises(ConfigError, match="unknown degradation task"):
        scale_for_task("denoise", full)


def test_to_input_range_clips_to_the_input_dtype_and_keeps_its_metadata() -> None:
    rng = np.random.default_rng(4)
    cube = _dark_capture(rng)
    restored = cube.with_data(cube.data + np.float32(-0.001), name="restored")  # some values below 0
    out = to_input_range(restored, cube)
    assert out.data.min() >= 0.0 and out.metadata["dtype"] == "uint16" and out.metadata["scaling"]["divisor"] == 65535
    assert out.name == "restored" and out.shape == cube.shape
    np.testing.assert_array_equal(out.wavelengths, cube.wavelengths)
    above = restored.with_data(np.full(cube.shape, 1.2, np.float32))
    assert float(to_input_range(above, cube).data.max()) == pytest.approx(1.0)
    floats = Cube(data=np.full((4, 4, 4), -0.5, np.float32), name="f")
    assert float(to_input_range(floats, floats).data.min()) == -0.5  # float inputs are not clipped
    with pytest.raises(InputError, match="shape"):
        to_input_range(cube.crop(0, 0, 8, 8), cube)


def test_noise_model_moves_to_the_network_scale() -> None:
    counts = NoiseModel(sigma=(4.0, 3.0), a=(0.2, 0.1), b=(6.0, 5.0), mean=(80.0, 60.0),
                        scale=(65535.0, 65535.0), units="counts")
    scale = IntensityScale(values=(250 / 65535,), mode="cube", percentile=99.9)
    net = noise_on_network_scale(counts, scale)
    assert net.a == pytest.approx((0.2 / 250, 0.1 / 250)) and net.b == pytest.approx((6 / 62500, 5 / 62500))
    per_band = noise_on_network_scale(counts, IntensityScale(values=(250 / 65535, 125 / 65535), mode="band"))
    assert per_band.a[1] == pytest.approx(0.1 / 125) and per_band.b[1] == pytest.approx(5 / 125 ** 2)


def test_real_imec_capture_is_normalised_not_refused() -> None:
    from hiralign.io import load

    cube = load(shared_file("envi", "VIS_leaves_FD1_FN0_original.hdr"))
    with pytest.warns(UserWarning, match="intensity"):
        scale = scale_for_task("gaussian", cube)
    peak_counts = scale.values[0] * 65535
    assert 150 < peak_counts <= 278  # the 99.9th percentile is under the file's maximum 278
    z = normalise(cube, scale_for_task("sensor", cube))
    assert 0.95 < np.percentile(z.data, 99.9) < 1.05


def test_re_degrading_on_the_network_scale_reproduces_the_captures_noise() -> None:
    """The sensor task's chain: counts model → network scale → degrade → back to counts."""
    import torch
    from scipy.ndimage import gaussian_filter

    from hiralign.degrade import degrade
    from hiralign.noise import estimate_noise

    rng = np.random.default_rng(5)
    base = gaussian_filter(rng.random((128, 128, 4)), (5, 5, 0))
    clean_counts = 20 + 200 * (base - base.min()) / (base.max() - base.min())
    capture_counts = rng.poisson(clean_counts / 0.2) * 0.2 + rng.normal(size=clean_counts.shape) * np.sqrt(6.0)
    capture = Cube(data=(np.rint(capture_counts) / 65535).astype(np.float32), name="capture", metadata=dict(COUNTS))
    clean = capture.with_data((clean_counts / 65535).astype(np.float32))
    model = estimate_noise(capture)
    scale = scale_for_task("sensor", capture)
    z = torch.from_numpy(normalise(clean, scale).data).permute(2, 0, 1).contiguous()
    z_noisy = degrade(z, "sensor", 0, noise=noise_on_network_scale(model, scale))
    redegraded = denormalise(capture.with_data(z_noisy.permute(1, 2, 0).numpy()), scale)
    again = estimate_noise(redegraded)
    np.testing.assert_allclose(again.sigma, model.sigma, rtol=0.05)
    np.testing.assert_allclose(np.mean(again.a), np.mean(model.a), rtol=0.15)
