"""No-reference quality report: noise drop, signal-free method noise, spectral drift, seams."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.quality import quality_report, seam_ratio, summary_text, tile_borders

COUNTS = {"scaling": {"divisor": 65535.0, "reason": "uint16 full scale"}, "dtype": "uint16"}


@pytest.fixture(scope="module")
def scene():
    """A textured 96×128×4 scene in counts, and a noisy capture of it (σ = 4 counts)."""
    rng = np.random.default_rng(0)
    base = gaussian_filter(rng.random((96, 128, 4)), (3, 3, 0))
    base = (base - base.min()) / (base.max() - base.min())
    clean = 40 + 160 * base
    noisy = clean + rng.normal(size=clean.shape) * 4.0
    as_cube = lambda counts, name: Cube(data=(counts / 65535).astype(np.float32), name=name,  # noqa: E731
                                        metadata=dict(COUNTS))
    return as_cube(clean, "clean"), as_cube(noisy, "noisy"), clean, noisy


def test_an_ideal_restoration_scores_as_signal_free(scene) -> None:
    clean, noisy, _, _ = scene
    report = quality_report(noisy, clean, tile=32, overlap=8)
    assert json.loads(json.dumps(report)) == report
    assert report["units"] == "counts"
    assert np.allclose(report["noise"]["sigma_before"], 4.0, rtol=0.1)
    assert report["noise"]["min_ratio"] > 3  # the clean scene's own finest detail is far below 4 counts
    mn = report["method_noise"]
    assert np.allclose(mn["std"], 4.0, rtol=0.05)
    assert mn["mean_abs_corr_with_restored"] < 0.03 and abs(mn["mean_lag1_autocorr"]) < 0.03
    assert mn["mean_lowpass_energy_fraction"] == pytest.approx(mn["white_lowpass_energy_fraction"], abs=0.01)
    assert report["spectra"]["max_abs_drift_percent"] < 0.5 and report["spectra"]["max_abs_region_drift_percent"] < 1
    assert len(report["spectra"]["regions"]) == 4
    assert report["seams"]["method_noise_border_step_ratio"] == pytest.approx(1.0, abs=0.2)
    text = summary_text(report)
    assert "× lower" in text and "seams" in text and "counts" in text


def test_over_smoothing_leaves_structure_in_the_method_noise(scene) -> None:
    clean, noisy, _, noisy_counts = scene
    ideal = quality_report(noisy, clean)["method_noise"]
    smoothed = noisy.with_data(gaussian_filter(noisy.data, (3, 3, 0)))
    mn = quality_report(noisy, smoothed)["method_noise"]
    assert mn["mean_lowpass_energy_fraction"] > 3 * ideal["mean_lowpass_energy_fraction"]
    assert mn["mean_lag1_autocorr"] > ideal["mean_lag1_autocorr"] + 0.1
    assert quality_report(noisy, clean)["seams"] is None  # no tile grid given


def test_spectral_drift_is_reported_per_band_and_region(scene) -> None:
    clean, noisy, _, _ = scene
    shifted = clean.data.copy()
    shifted[..., 1] *= 0.95
    shifted[:48, :64, 2] *= 1.10  # one region only
    spectra = quality_report(noisy, clean.with_data(shifted))["spectra"]
    assert spectra["drift_percent"][1] == pytest.approx(-5.0, abs=0.2)
    assert spectra["drift_percent"][0] == pytest.approx(0.0, abs=0.2)
    region = spectra["regions"][0]
    assert region["rows"] == [0, 48] and region["cols"] == [0, 64]
    assert region["drift_percent"][2] == pytest.approx(10.0, abs=0.5)
    assert spectra["max_abs_region_drift_percent"] == pytest.approx(10.0, abs=0.5)


def test_a_tile_seam_is_measured(scene) -> None:
    clean, noisy, _, _ = scene
    tile, overlap = 32, 8
    assert tile_borders(128, tile, overlap).tolist() == [24, 32, 48, 56, 72, 80, 96, 104]
    seamed = clean.data.copy()
    # A per-tile brightness offset, as unblended tiles would give: a step at every tile start.
    for k, start in enumerate(range(0, 128, tile - overlap)):
        seamed[:, start:, :] += np.float32(((-1) ** k) * 2 / 65535)  # 2 counts under noise of σ = 4
    seams = quality_report(noisy, clean.with_data(seamed), tile=tile, overlap=overlap)["seams"]
    assert seams["method_noise_border_step_ratio"] > 1.5 > seams["method_noise_null_step_ratio"]
    assert seams["input_border_step_ratio"] == pytest.approx(1, abs=0.3)
    assert seam_ratio(np.zeros((16, 16, 1)), 32, 8) is None  # one tile: no border


def test_bad_inputs_raise_input_errors(scene) -> None:
    clean, noisy, _, _ = scene
    with pytest.raises(InputError, match="shape"):
        quality_report(noisy, clean.crop(0, 0, 16, 16))
    with pytest.raises(InputError, match="overlap"):
        quality_report(noisy, clean, tile=16, overlap=16)
    bad = clean.data.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="finite"):
        quality_report(noisy.data, bad)
