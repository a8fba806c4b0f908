"""The ``interpolate`` proxy source (hiralign.completion): masked observations completed without a network."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from hiralign.completion import CompletionConfig, complete_cube, fill_bands, fill_spatially, missing_entries
from hiralign.cube import Cube
from hiralign.degrade import degrade
from hiralign.ensemble import ProxyConfig, make_proxy, resolve_source
from hiralign.errors import ConfigError, InputError
from hiralign.progress import CallbackProgress, Cancelled, CancelToken


def _scene(size: int = 40, bands: int = 31, seed: int = 0) -> Cube:
    """A low-rank scene: 3 smooth abundance maps times 3 smooth spectra, values in (0.1, 0.9)."""
    rng = np.random.default_rng(seed)
    maps = gaussian_filter(rng.random((size, size, 3)), sigma=(1.5, 1.5, 0))
    wavelengths = np.linspace(450, 700, bands)
    spectra = np.stack([np.exp(-((wavelengths - c) / 80) ** 2) for c in (480, 560, 660)])
    data = maps.reshape(-1, 3) @ spectra
    data = 0.1 + 0.8 * (data - data.min()) / (data.max() - data.min())
    return Cube(data.reshape(size, size, bands).astype(np.float32), wavelengths=wavelengths, name="scene")


def _observe(scene: Cube, task: str) -> Cube:
    data = degrade(torch.from_numpy(scene.data).permute(2, 0, 1), task, 0).permute(1, 2, 0).numpy()
    return scene.with_data(np.ascontiguousarray(data), name="observed")


def _rmse(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b)[where] ** 2)))


def test_inpaint_is_completed_closer_to_the_scene_than_per_band_interpolation_and_keeps_what_was_seen() -> None:
    scene = _scene()
    observed = _observe(scene, "inpaint")
    missing = observed.data == 0
    assert missing.mean() > 0.8
    spatial = complete_cube(observed, CompletionConfig(iterations=0), task="inpaint")
    full = complete_cube(observed, task="inpaint")
    np.testing.assert_array_equal(full.data[~missing], observed.data[~missing])
    np.testing.assert_array_equal(spatial.data[~missing], observed.data[~missing])
    zeros = _rmse(observed.data, scene.data, missing)
    # each band's own 10 % of the pixels, then the spectra's subspace: the other bands at a pixel say what it is
    assert _rmse(spatial.data, scene.data, missing) < 0.3 * zeros
    assert _rmse(full.data, scene.data, missing) < 0.7 * _rmse(spatial.data, scene.data, missing)
    assert full.wavelengths is not None and np.allclose(full.wavelengths, scene.wavelengths)


def test_bandmiss_fills_missing_bands_over_wavelength_and_keeps_an_observed_bands_dark_zeros() -> None:
    scene = _scene()
    data = scene.data.copy()
    data[:5, :5, 0] = 0.0  # a black corner of an observed band: a scene value, not a missing one
    data[..., [3, 7]] = 0.0
    observed = scene.with_data(data)
    out = complete_cube(observed, task="bandmiss")
    np.testing.assert_array_equal(out.data[:5, :5, 0], 0.0)
    wl = scene.wavelengths
    t = (wl[3] - wl[2]) / (wl[4] - wl[2])
    np.testing.assert_allclose(out.data[..., 3], (1 - t) * data[..., 2] + t * data[..., 4], rtol=1e-6)
    assert _rmse(out.data, scene.data, np.broadcast_to(np.isin(np.arange(31), [3, 7]), data.shape)) < 0.01
    # without the task every zero counts as missing: the corner is filled from its neighbours
    assert complete_cube(observed).data[:5, :5, 0].min() > 0


def test_missing_bands_beyond_the_observed_ones_repeat_the_nearest_and_order_does_not_matter() -> None:
    data = np.arange(2 * 2 * 4, dtype=np.float32).reshape(2, 2, 4) + 1
    data[..., 0] = 0.0
    wavelengths = np.array([400.0, 500.0, 600.0, 700.0])
    out = fill_bands(data, wavelengths, np.array([True, False, False, False]))
    np.testing.assert_array_equal(out[..., 0], data[..., 1])
    flipped = fill_bands(data[..., ::-1], wavelengths[::-1], np.array([False, False, False, True]))
    np.testing.assert_array_equal(flipped[..., ::-1], out)


def test_a_cube_without_zeros_comes_back_unchanged_and_one_with_nothing_observed_is_refused() -> None:
    scene = _scene()
    np.testing.assert_array_equal(complete_cube(scene).data, scene.data)
    with pytest.raises(InputError, match="empty.*nothing was observed"):
        complete_cube(Cube(np.zeros((4, 4, 3), np.float32), name="empty"))
    with pytest.raises(ConfigError, match="rank"):
        CompletionConfig(rank=0)


def test_bands_with_too_few_or_collinear_observed_pixels_take_the_nearest_value() -> None:
    data = np.zeros((6, 6, 2), np.float32)
    data[2, 3, 0] = 0.5  # one observed pixel
    data[1, :, 1] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # one observed row: collinear, no triangle
    out = fill_spatially(data, data != 0)
    np.testing.assert_array_equal(out[..., 0], 0.5)
    np.testing.assert_array_equal(out[4, :, 1], data[1, :, 1])
    assert missing_entries(data)[0].tolist() == [False, False]


def test_completion_cancels_between_bands() -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        complete_cube(_observe(_scene(), "inpaint"), progress=CallbackProgress(token=token))


def test_auto_takes_interpolate_for_the_masking_tasks_and_restored_is_the_proxies() -> None:
    from hiralign.config import AdaptConfig

    for task in ("bandmiss", "inpaint"):
        assert resolve_source("auto", task) == "interpolate"
        config = AdaptConfig(task=task)
        assert config.proxy_for().restorer == "interpolate" and not config.network_in_restoration()
    assert ProxyConfig("interpolate").restorer == "interpolate" and not ProxyConfig("interpolate").needs_model
    with pytest.raises(ConfigError, match="keeps the observation's size"):
        make_proxy(_scene(), ProxyConfig("interpolate"), scale=4)


def test_a_resampled_capture_is_completed_on_its_own_bands_then_resampled() -> None:
    # a resampled zero band is no longer zero: the completion must see the capture's own zeros
    from hiralign.bands import resample_bands

    capture = _scene(bands=6)
    data = capture.data.copy()
    data[..., [1, 4]] = 0.0
    capture = capture.with_data(data)
    grid = resample_bands(capture, np.linspace(450, 700, 4))
    proxy = make_proxy(grid, ProxyConfig("interpolate"), task="bandmiss", own_bands=capture)
    expected = resample_bands(complete_cube(capture, task="bandmiss"), grid.wavelengths)
    np.testing.assert_allclose(proxy.data, expected.data, atol=1e-6)
    assert not np.allclose(make_proxy(grid, ProxyConfig("interpolate"), task="bandmiss").data, proxy.data)


def test_an_inpaint_run_with_the_defaults_restores_with_the_completion_and_so_does_its_checkpoint(
        tmp_path) -> None:
    from hiralign import io
    from hiralign.config import AdaptConfig
    from hiralign.finetune import FinetuneConfig
    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
    from hiralign.pipeline import Adaptation
    from hiralign.proxy import TileConfig
    from hiralign.restoration import Recipe, restore_capture

    torch.manual_seed(0)
    bands = 31
    wavelengths = np.linspace(450, 700, bands)
    source = save_checkpoint(build_model("compact", bands=bands, scale=1, features=8, depth=2), tmp_path / "source",
                             CheckpointConfig(arch="compact", task="inpaint", bands=bands, scale=1,
                                              wavelengths=wavelengths, args={"features": 8, "depth": 2}),
                             {"kind": "test"})
    scenes = [_scene(32, seed=s) for s in (1, 2)]
    targets = [io.save(_observe(s, "inpaint").with_data(_observe(s, "inpaint").data, name=f"t{i}"),
                       tmp_path / f"t{i}.hdr") for i, s in enumerate(scenes)]
    config = AdaptConfig(task="inpaint", model=str(source), guides=0,
                         finetune=FinetuneConfig(steps=2, batch_size=2, patch_size=16, mode="proxy-only"),
                         tiles=TileConfig(tile=32, overlap=8), device="cpu")
    Adaptation(targets, config, tmp_path / "run").run_all()
    observed = io.load(targets[0])
    expected = complete_cube(observed, task="inpaint")
    restored = io.load(tmp_path / "run" / "restored" / "t0.hdr")
    np.testing.assert_allclose(restored.data, expected.data, atol=1e-5)
    model, ckpt = load_checkpoint(tmp_path / "run" / "checkpoint")
    recipe = Recipe.from_checkpoint(tmp_path / "run" / "checkpoint", ckpt)
    assert recipe.proxy.source == "interpolate" and not recipe.network_needed
    again = restore_capture(model, ckpt, observed, recipe, tiles=TileConfig(tile=32, overlap=8))
    np.testing.assert_allclose(again.data, expected.data, atol=1e-5)
