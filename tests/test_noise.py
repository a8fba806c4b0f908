"""Blind noise estimation: σ_b and Poisson–Gaussian (a_b, b_b) on known synthetic noise and the real IMEC files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_file
from scipy.ndimage import gaussian_filter

from hiralign.cli import main
from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.io import load, save
from hiralign.noise import NoiseModel, analyse, estimate_noise, estimate_sigma, robust_std

COUNTS = {"scaling": {"divisor": 65535.0, "reason": "uint16 full scale"}, "dtype": "uint16"}


def _smooth_counts(rng: np.random.Generator, shape=(128, 256, 8), low=10.0, high=300.0) -> np.ndarray:
    base = gaussian_filter(rng.random(shape), (6, 6, 1))
    base = (base - base.min()) / (base.max() - base.min())
    return low + (high - low) * base


def _as_uint16_file_cube(counts: np.ndarray, name: str = "syn") -> Cube:
    """What hiralign.io.load makes of a 10-bit capture stored as uint16."""
    stored = np.clip(np.rint(counts), 0, 1023)
    return Cube(data=(stored / 65535).astype(np.float32), name=name, metadata=dict(COUNTS),
                wavelengths=np.linspace(476, 629, counts.shape[-1]))


def _poisson_gaussian(rng, clean, a, b):
    return rng.poisson(clean / a) * a + rng.normal(size=clean.shape) * np.sqrt(b)


def test_robust_std_is_not_quantised_on_integer_data() -> None:
    rng = np.random.default_rng(1)
    sigmas = np.linspace(2.0, 5.0, 13)
    # Haar details of integer images are half-integers: MAD/0.6745 jumps, the estimator does not.
    x = np.rint(rng.normal(size=(13, 4, 40000)) * sigmas[:, None, None])
    d = 0.5 * (x[:, 0] - x[:, 1] - x[:, 2] + x[:, 3])
    truth = np.sqrt(sigmas ** 2 + 1 / 12)  # rounding adds 1/12 count² per pixel
    est = robust_std(d)
    mad = np.median(np.abs(d), axis=-1) / 0.6745
    assert np.max(np.abs(est / truth - 1)) < 0.02
    assert np.max(np.abs(mad / truth - 1)) > 2 * np.max(np.abs(est / truth - 1))
    # Outliers (edges) barely move it.
    d[:, :400] = 200.0
    assert np.max(np.abs(robust_std(d) / truth - 1)) < 0.04


@pytest.mark.parametrize("rounded", [False, True])
def test_per_band_sigma_of_gaussian_noise_within_ten_percent(rounded: bool) -> None:
    rng = np.random.default_rng(2)
    clean = _smooth_counts(rng)
    sigma = np.linspace(1.5, 9.0, clean.shape[-1])
    noisy = clean + rng.normal(size=clean.shape) * sigma
    if rounded:
        cube = _as_uint16_file_cube(noisy)
        truth = np.sqrt(sigma ** 2 + 1 / 12)
    else:
        cube = Cube(data=noisy.astype(np.float32), name="float")
        truth = sigma
    analysis = analyse(cube)
    model = analysis.model
    assert model.units == ("counts" if rounded else "loaded")
    assert np.max(np.abs(np.array(model.sigma) / truth - 1)) < 0.10
    # Signal-independent noise: the fitted variance is flat at σ² over the levels (a·μ small, b ≈ σ²).
    assert np.max(np.abs(model.variance(analysis.bin_mean) / truth[:, None] ** 2 - 1)) < 0.10
    assert np.all(np.array(model.a) * np.array(model.mean) < 0.25 * truth ** 2)
    assert np.allclose(model.b, truth ** 2, rtol=0.25)
    np.testing.assert_allclose(estimate_sigma(cube.data * (65535 if rounded else 1)), model.sigma, rtol=1e-6)


def test_poisson_gaussian_parameters_of_integer_counts_are_recovered() -> None:
    rng = np.random.default_rng(3)
    clean = _smooth_counts(rng, (256, 256, 8))
    bands = clean.shape[-1]
    a_true, b_true = np.linspace(0.1, 0.3, bands), np.linspace(3.0, 9.0, bands)
    cube = _as_uint16_file_cube(_poisson_gaussian(rng, clean, a_true, b_true))
    analysis = analyse(cube)
    model = analysis.model
    a, b = np.array(model.a), np.array(model.b)
    b_eff = b_true + 1 / 12
    # Per band, 32768 blocks leave a ~10 % statistical error on a (8 seeds: bias 3 %, std 13 % at
    # half this size); b is an intercept extrapolated below the darkest level set, looser still.
    assert np.max(np.abs(a / a_true - 1)) < 0.3 and abs(np.mean(a / a_true) - 1) < 0.08
    assert abs(np.mean(b) / np.mean(b_eff) - 1) < 0.35
    # The model's variance at the measured levels is what matters to the sensor task: within 10 %.
    levels = analysis.bin_mean
    true_var = a_true[:, None] * levels + b_eff[:, None]
    assert np.max(np.abs(model.variance(levels) / true_var - 1)) < 0.10
    sigma_true = np.sqrt(a_true * clean.mean(axis=(0, 1)) + b_eff)
    assert np.max(np.abs(np.array(model.sigma) / sigma_true - 1)) < 0.10
    assert all(model.signal_dependent)
    # The all-bands fit of a sensor with one gain: precise.
    cube_one = _as_uint16_file_cube(_poisson_gaussian(rng, clean, 0.2, 6.0))
    pa, pb = analyse(cube_one).pooled_ab
    assert pa == pytest.approx(0.2, rel=0.05) and pb == pytest.approx(6.0 + 1 / 12, rel=0.15)


def test_shared_model_pools_captures_of_one_sensor() -> None:
    rng = np.random.default_rng(4)
    cubes = [_as_uint16_file_cube(_poisson_gaussian(rng, _smooth_counts(rng, (96, 128, 4)), 0.2, 5.0), f"c{i}")
             for i in range(3)]
    shared = estimate_noise(cubes)
    assert shared.sources == ("c0", "c1", "c2") and shared.n_samples == 3 * 48 * 64
    assert np.allclose(shared.a, 0.2, rtol=0.25)
    with pytest.raises(InputError, match="bands"):
        estimate_noise([cubes[0], Cube(data=cubes[1].data[..., :3], name="other")])
    with pytest.raises(InputError, match="scale"):
        estimate_noise([cubes[0], Cube(data=cubes[1].data, name="float")])


def test_model_scales_serialises_and_validates() -> None:
    model = NoiseModel(sigma=(4.0, 3.0), a=(0.2, 0.1), b=(6.0, 5.0), mean=(80.0, 60.0),
                       scale=(65535.0, 65535.0), units="counts", wavelengths=(500.0, 600.0), sources=("x",))
    again = NoiseModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    # Counts → the network's view x / s with s = 250 counts (in loaded units 250 / 65535).
    s = 250 / 65535
    net = model.on_scale(1 / s, "normalised")
    assert net.a == pytest.approx((0.2 / 250, 0.1 / 250)) and net.b == pytest.approx((6 / 250 ** 2, 5 / 250 ** 2))
    assert net.sigma == pytest.approx((4 / 250, 3 / 250)) and net.units == "normalised"
    per_band = model.on_scale([1.0, 2.0], "loaded")
    assert per_band.b == pytest.approx((6 / 65535 ** 2, 5 * 4 / 65535 ** 2))
    assert model.variance(np.array([[10.0], [20.0]])).ravel() == pytest.approx([8.0, 7.0])
    with pytest.raises(InputError, match="bands"):
        NoiseModel(sigma=(1.0,), a=(0.1, 0.2), b=(1.0,), mean=(1.0,), scale=(1.0,))
    with pytest.raises(InputError, match="lacks 'a'"):
        NoiseModel.from_dict({"sigma": [1.0], "b": [1.0]}, source="noise.json")
    with pytest.raises(InputError, match="≥ 0"):
        NoiseModel(sigma=(1.0,), a=(-0.1,), b=(1.0,), mean=(1.0,), scale=(1.0,))


def test_bad_cubes_raise_input_errors() -> None:
    with pytest.raises(InputError, match="2×2"):
        estimate_noise(Cube(data=np.zeros((1, 5, 3), np.float32), name="thin"))
    bad = np.zeros((8, 8, 2), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        estimate_noise(bad)
    with pytest.raises(InputError, match="at least one"):
        estimate_noise([])


def test_a_capture_sized_cube_is_fast() -> None:
    import time

    rng = np.random.default_rng(5)
    cube = _as_uint16_file_cube(_poisson_gaussian(rng, _smooth_counts(rng, (256, 512, 16)), 0.2, 6.0))
    start = time.perf_counter()
    estimate_noise(cube)
    # Not a timing assertion of performance (benchmarks do that), only a guard against a 10× regression.
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("name, a_fact, b_fact", [("VIS_leaves_FD1_FN0_original.hdr", 0.14, 5.4),
                                                   ("RedYellowSet_3_FD1_FN0.hdr", 0.25, 8.2)])
def test_real_imec_captures_match_the_measured_facts(name: str, a_fact: float, b_fact: float) -> None:
    cube = load(shared_file("envi", name))
    analysis = analyse(cube)
    model = analysis.model
    assert model.units == "counts" and model.n_bands == 16 and model.wavelengths is not None
    # FACTS.md: σ ≈ 3–5 counts on means of 50–120 counts.
    assert np.all((np.array(model.sigma) > 2.5) & (np.array(model.sigma) < 6.0))
    assert np.all((np.array(model.mean) > 40) & (np.array(model.mean) < 130))
    a, b = analysis.pooled_ab
    assert a == pytest.approx(a_fact, rel=0.25) and np.median(model.a) == pytest.approx(a_fact, rel=0.5)
    # b is an intercept extrapolated below the darkest level set, and the bands differ (RedYellowSet's
    # first six bands have b ≈ 13–18 counts², the others 3–5; the all-bands fit gives 3.7 where
    # FACTS.md, fitted otherwise, says 8.2): a factor of 2.5.
    assert b_fact / 2.5 < b < b_fact * 2.5


# ------------------------------------------------------------------------------ CLI
def test_noise_command_prints_json_and_writes_a_plot(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(6)
    counts = np.clip(np.rint(_poisson_gaussian(rng, _smooth_counts(rng, (64, 96, 5)), 0.2, 6.0)), 0, 1023)
    files = []
    for i in range(2):
        cube = Cube(data=(counts / 65535).astype(np.float32), wavelengths=np.linspace(476, 629, 5), name=f"c{i}")
        path = tmp_path / f"c{i}.npy"
        np.save(path, counts.astype(np.uint16))
        files.append(path)
        assert cube.n_bands == 5
    plot = tmp_path / "noise.png"
    written = tmp_path / "noise.json"
    assert main(["noise", *map(str, files), "--plot", str(plot), "--shared", "--wavelengths", "476:629:38.25",
                 "--out", str(written)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert NoiseModel.from_dict(json.loads(written.read_text())).to_dict() == out["shared"]["model"]
    assert [f["file"] for f in out["files"]] == [str(f) for f in files]
    first = out["files"][0]["model"]
    assert first["units"] == "counts" and len(first["sigma"]) == 5 and len(first["a"]) == 5
    assert first["wavelengths"] == pytest.approx(list(np.linspace(476, 629, 5)))
    assert out["shared"]["model"]["sources"] == ["c0", "c1"]
    assert np.allclose(np.mean(first["a"]), 0.2, rtol=0.3)
    from hiralign.io.images import read_image

    image = read_image(plot)
    assert image.ndim == 3 and image.shape[0] > 200 and image.std() > 0.05


def test_noise_command_reports_a_bad_file_in_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not a numpy file")
    assert main(["noise", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.npy" in err[0] and "Traceback" not in err[0]
    assert main(["noise", str(tmp_path / "absent.hdr")]) == 2
    assert "absent.hdr" in capsys.readouterr().err


def test_noise_command_on_a_saved_envi_cube(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(7)
    cube = Cube(data=(_smooth_counts(rng, (32, 32, 3), 0.2, 0.8)
                      + rng.normal(size=(32, 32, 3)) * 0.01).astype(np.float32), name="f")
    path = save(cube, tmp_path / "f.hdr")
    assert main(["noise", str(path)]) == 0
    model = json.loads(capsys.readouterr().out)["files"][0]["model"]
    assert model["units"] == "loaded" and np.allclose(model["sigma"], 0.01, rtol=0.25)


def test_samples_without_data_are_left_out() -> None:
    from types import SimpleNamespace

    rng = np.random.default_rng(8)
    clean = _smooth_counts(rng, (128, 128, 3))
    noisy = np.clip(np.rint(_poisson_gaussian(rng, clean, 0.2, 6.0)), 0, 1023)
    reference = estimate_noise(_as_uint16_file_cube(noisy))
    holed = noisy.copy()
    mask = np.zeros((128, 128, 1), bool)
    mask[20:70, 30:90] = True  # a no-data region: zeros in data, as io.load leaves them
    holed[mask[..., 0]] = 0
    cube = _as_uint16_file_cube(holed)
    masked = estimate_noise(SimpleNamespace(data=cube.data, mask=mask, name="holed", metadata=cube.metadata,
                                            wavelengths=None))
    unmasked = estimate_noise(cube)
    np.testing.assert_allclose(masked.sigma, reference.sigma, rtol=0.05)
    np.testing.assert_allclose(masked.variance(np.array([[100.0]] * 3)), reference.variance(np.array([[100.0]] * 3)),
                               rtol=0.1)
    assert np.min(unmasked.a) < 0.8 * np.min(masked.a) or np.max(np.abs(np.array(unmasked.sigma)
                                                                        / reference.sigma - 1)) > 0.05
