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


# ------------------------------------------------------------------ input_notes
WL31 = np.arange(400, 701, 10.0)


def _cube(bands, wavelengths, peak=0.9, metadata=None, name="cube") -> Cube:
    data = np.linspace(0.0, peak, 16 * 16 * bands, dtype=np.float32).reshape(16, 16, bands)
    return Cube(data=data, wavelengths=wavelengths, name=name, metadata=dict(metadata or {}))


def test_input_notes_say_how_the_bands_are_fed() -> None:
    from hiralign.quality import input_notes

    kaist = _cube(31, WL31 + 20, name="kaist")
    assert input_notes(kaist, "gaussian", bands=31, wavelengths=WL31, model="gaussian") == [
        "kaist: 31 bands at 420–720 nm on gaussian's 31 bands at 400–700 nm: fed band by band (centres up to "
        "20 nm apart, within the 40 nm the run accepts), not resampled"]
    assert input_notes(_cube(31, WL31), "gaussian", bands=31, wavelengths=WL31) == []  # on the bands, full scale
    far = input_notes(_cube(31, WL31 + 60), "gaussian", bands=31, wavelengths=WL31, model="m")
    assert len(far) == 1 and "up to 60 nm from m's" in far[0] and "resampled onto the model's bands" in far[0]
    imec = _cube(16, np.linspace(476, 629, 16), name="imec")
    fixed = input_notes(imec, "gaussian", bands=31, wavelengths=WL31, model="gaussian")
    assert fixed == ["imec: 16 bands at 476–629 nm, but gaussian restores 31 bands at 400–700 nm: resampled onto "
                     "them and back (a band-agnostic model would take the cube as it is)"]
    agnostic = input_notes(imec, "gaussian", bands=31, wavelengths=WL31, band_agnostic=True, model="gaussian-any")
    assert agnostic == ["imec: 16 bands at 476–629 nm, not the 31 bands at 400–700 nm of the source set; "
                        "gaussian-any is band-agnostic and restores them as they are (no spectral resampling)"]
    swir = input_notes(_cube(8, np.linspace(1000, 1700, 8)), "gaussian", bands=31, wavelengths=WL31)
    assert "cannot be matched" in swir[0]
    sensor = input_notes(imec, "sensor", bands=31, wavelengths=WL31, model="gaussian")
    assert any("will be refused" in n for n in sensor)


def test_input_notes_say_how_dark_data_is_normalised() -> None:
    from hiralign.quality import input_notes

    dark = _cube(16, np.linspace(476, 629, 16), peak=250 / 65535, metadata=COUNTS, name="leaves")
    notes = input_notes(dark, "gaussian", bands=16, wavelengths=np.linspace(476, 629, 16))
    assert len(notes) == 1
    assert notes[0].startswith("leaves: values reach 0.38 % of full scale (250 counts in the file); the run "
                               "normalises by the 99.9th percentile")
    sensor = input_notes(dark, "sensor", bands=16, wavelengths=np.linspace(476, 629, 16))
    assert "the sensor run divides by the 99.9th percentile" in sensor[0]
    zero = _cube(16, np.linspace(476, 629, 16), peak=0.0, name="blank")
    assert "no positive values" in input_notes(zero, "gaussian", bands=16, wavelengths=None)[0]
