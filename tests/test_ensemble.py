"""Stage-1 label options: dihedral ensembles, blind noise levels, BM4D, blends (hiralign.ensemble)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hiralign import ensemble
from hiralign.cube import Cube
from hiralign.ensemble import (
    DIHEDRAL,
    ProxyConfig,
    blend,
    bm4d_restore,
    dihedral,
    ensemble_restore,
    make_proxy,
    noise_sigma,
    undo_dihedral,
)
from hiralign.errors import ConfigError, InputError
from hiralign.proxy import TileConfig, restore_cube


class Conv(torch.nn.Module):
    """A fixed, deliberately asymmetric 3×3 filter applied to every band (zero padding)."""

    def __init__(self, kernel: np.ndarray) -> None:
        super().__init__()
        self.kernel = torch.nn.Parameter(torch.from_numpy(kernel).float()[None, None], requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, b, h, w = x.shape
        return torch.nn.functional.conv2d(x.reshape(n * b, 1, h, w), self.kernel, padding=1).reshape(n, b, h, w)


class Upsample2(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def _cube(rng: np.random.Generator, h: int = 20, w: int = 28, b: int = 4) -> Cube:
    return Cube(data=rng.random((h, w, b), dtype=np.float32), wavelengths=np.linspace(400, 700, b), name="t")


@pytest.mark.parametrize(("turns", "mirror"), DIHEDRAL)
def test_dihedral_round_trip_on_non_square(rng: np.random.Generator, turns: int, mirror: bool) -> None:
    data = rng.random((5, 7, 3))
    moved = dihedral(data, turns, mirror)
    assert moved.shape == ((7, 5, 3) if turns % 2 else (5, 7, 3))
    np.testing.assert_array_equal(undo_dihedral(moved, turns, mirror), data)


def test_the_eight_transforms_are_distinct(rng: np.random.Generator) -> None:
    data = rng.random((6, 6, 1))
    views = {dihedral(data, t, m).tobytes() for t, m in DIHEDRAL}
    assert len(views) == 8


def test_ensemble_of_a_linear_filter_is_the_dihedrally_symmetrised_filter(rng: np.random.Generator) -> None:
    # zero padding is dihedrally invariant, so the ensemble equals the filter whose kernel is
    # the mean of the kernel's 8 transforms, everywhere including the borders
    kernel = np.arange(9, dtype=np.float64).reshape(3, 3) / 36
    cube = _cube(rng)
    out = ensemble_restore(Conv(kernel), cube, transforms=8, tiles=TileConfig(tile=64, overlap=0))
    sym = np.mean([np.rot90(k, t) for k in (kernel, kernel[:, ::-1]) for t in range(4)], axis=0)
    expected = restore_cube(Conv(sym), cube, tiles=TileConfig(tile=64, overlap=0))
    np.testing.assert_allclose(out.data, expected.data, atol=1e-5)
    assert out.shape == cube.shape and np.allclose(out.wavelengths, cube.wavelengths)
    # one transform is plain restoration; the asymmetric kernel makes the ensemble differ from it
    plain = ensemble_restore(Conv(kernel), cube, transforms=1, tiles=TileConfig(tile=64, overlap=0))
    np.testing.assert_allclose(plain.data, restore_cube(Conv(kernel), cube, tiles=TileConfig(tile=64)).data,
                               atol=1e-5)
    assert np.abs(plain.data - out.data).max() > 1e-3


def test_ensemble_with_an_upscaling_model(rng: np.random.Generator) -> None:
    cube = _cube(rng, 10, 14)
    out = ensemble_restore(Upsample2(), cube, scale=2, transforms=8)
    assert out.shape == (20, 28, 4)
    np.testing.assert_allclose(out.data, cube.data.repeat(2, 0).repeat(2, 1), atol=1e-6)


def test_noise_sigma_recovers_per_band_levels(rng: np.random.Generator) -> None:
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    smooth = (0.3 + 0.2 * np.sin(3 * xx) * np.cos(2 * yy))[..., None].repeat(3, axis=2)
    sigmas = np.array([0.01, 0.05, 0.1])
    noisy = smooth + rng.normal(size=smooth.shape) * sigmas
    np.testing.assert_allclose(noise_sigma(noisy), sigmas, rtol=0.08)
    assert noise_sigma(np.zeros((4, 4, 2))).min() > 0  # floored: a clean band never divides by 0
    with pytest.raises(InputError, match="noise estimation"):
        noise_sigma(np.zeros((1, 5, 2)))


def test_proxy_config_checks() -> None:
    with pytest.raises(ConfigError, match="unknown proxy source"):
        ProxyConfig(source="magic")
    with pytest.raises(ConfigError, match="transforms"):
        ProxyConfig(source="ensemble", transforms=9)
    with pytest.raises(ConfigError, match="blend_weight"):
        ProxyConfig(source="blend", blend_weight=1.5)
    assert ProxyConfig("bm4d").needs_bm4d and not ProxyConfig("bm4d").needs_model
    assert ProxyConfig("blend", classical="bm4d").needs_bm4d and ProxyConfig("blend").needs_model


def test_make_proxy_sources_and_their_errors(rng: np.random.Generator) -> None:
    cube = _cube(rng)
    model = Conv(np.eye(3)[::-1] / 3)
    plain = make_proxy(cube, ProxyConfig("model"), model=model)
    np.testing.assert_allclose(plain.data, restore_cube(model, cube).data, atol=1e-6)
    ens = make_proxy(cube, ProxyConfig("ensemble", transforms=4), model=model, name="p")
    np.testing.assert_allclose(ens.data, ensemble_restore(model, cube, transforms=4).data, atol=1e-6)
    assert ens.name == "p"
    classical = cube.with_data(np.full(cube.shape, 0.5, np.float32))
    mixed = make_proxy(cube, ProxyConfig("blend", transforms=4, blend_weight=0.25), model=model, classical=classical)
    np.testing.assert_allclose(mixed.data, 0.25 * ens.data + 0.75 * 0.5, atol=1e-6)
    only = make_proxy(cube, ProxyConfig("bm4d"), classical=classical)
    np.testing.assert_array_equal(only.data, classical.data)
    with pytest.raises(ConfigError, match="needs the source model"):
        make_proxy(cube, ProxyConfig("ensemble"))
    with pytest.raises(ConfigError, match="keeps the observation's size"):
        make_proxy(cube, ProxyConfig("blend"), model=Upsample2(), scale=2, classical=classical)
    with pytest.raises(InputError, match="shapes differ"):
        blend(cube, cube.crop(0, 0, 5, 5), 0.5)


def test_bm4d_missing_is_a_config_error(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ensemble, "bm4d_available", lambda: False)
    with pytest.raises(ConfigError, match="pip install bm4d"):
        bm4d_restore(_cube(rng))


def test_bm4d_restore_denoises_with_a_blind_sigma(rng: np.random.Generator) -> None:
    pytest.importorskip("bm4d")
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    clean = np.stack([0.2 + 0.1 * b + 0.3 * (xx > 0.5) + 0.1 * yy for b in range(6)], axis=2).astype(np.float32)
    sigmas = np.linspace(0.02, 0.08, 6)
    noisy = Cube(data=(clean + rng.normal(size=clean.shape) * sigmas).astype(np.float32), name="noisy")
    out = bm4d_restore(noisy)
    assert out.shape == noisy.shape and out.data.dtype == np.float32
    before = np.sqrt(np.mean((noisy.data - clean) ** 2))
    after = np.sqrt(np.mean((out.data - clean) ** 2))
    assert after < 0.5 * before
    with pytest.raises(InputError, match="noise levels"):
        bm4d_restore(noisy, sigma=np.ones(3))


def test_auto_uses_the_subspace_denoiser_for_noise_tasks_and_the_model_elsewhere() -> None:
    from hiralign.ensemble import resolve_source

    assert resolve_source("auto", "gaussian") == "subspace" and resolve_source("auto", "sensor") == "blend"
    assert resolve_source("auto", "complex") == "subspace"  # its robust fit handles stripes, dead lines, impulses
    for task, scale in (("sr4", 4), ("deblur", 1), ("gaussian", 2), ("complex", 2)):
        assert resolve_source("auto", task, scale) == "ensemble"
    assert resolve_source("bm4d", "sr4", 4) == "bm4d"  # explicit choices are kept (preflight refuses them)
    assert ProxyConfig().resolved("sr4", 4).source == "ensemble"
    assert ProxyConfig("blend").restorer == "subspace" and ProxyConfig("blend", classical="bm4d").needs_bm4d
    assert ProxyConfig("subspace").restorer == "subspace" and not ProxyConfig("subspace").needs_model
    with pytest.raises(ConfigError, match="classical restorer"):
        ProxyConfig("blend", classical="bm3d")
    with pytest.raises(ConfigError, match="resolved"):
        make_proxy(_cube(np.random.default_rng(0)), ProxyConfig(), model=Conv(np.eye(3)))


def _poisson_gaussian(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, shape: tuple[int, int] = (96, 96)):
    """A ramp scene in counts-like units with var = a·μ + b per band, and its noise model."""
    from hiralign.noise import NoiseModel

    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    clean = np.stack([5 + 240 * (xx / shape[1]) ** (1 + k) + 10 * (yy > shape[0] // 2) for k in range(a.size)],
                     axis=2)
    noisy = rng.poisson(clean / np.maximum(a, 1e-9)) * a if np.all(a > 0) else clean
    noisy = noisy + rng.normal(size=clean.shape) * np.sqrt(b)
    model = NoiseModel(sigma=tuple(np.sqrt(a * clean.mean((0, 1)) + b)), a=tuple(a), b=tuple(b),
                       mean=tuple(clean.mean((0, 1))), scale=(1.0,) * a.size)
    return clean, noisy, model


def test_stabilise_whitens_poisson_gaussian_noise_and_inverts_without_bias(rng: np.random.Generator) -> None:
    from hiralign.ensemble import stabilise

    a, b = np.array([0.15, 0.25, 0.5]), np.array([6.0, 8.0, 2.0])
    clean, noisy, model = _poisson_gaussian(rng, a, b)
    z, invert = stabilise(noisy, model)
    zc, _ = stabilise(clean, model)
    # noise of the stabilised cube: unit variance at every signal level (dark ramp start and bright end)
    for cols in (slice(0, 24), slice(72, 96)):
        std = (z - zc)[:, cols].std(axis=(0, 1))
        np.testing.assert_allclose(std, 1.0, atol=0.1)
    # the inverse of the stabilised clean image's expectation recovers the clean level (asymptotically unbiased):
    # average z over many noise draws of one bright level, invert, compare with that level
    level = np.full((4000, 1, 3), 120.0)
    draws = rng.poisson(level / a) * a + rng.normal(size=level.shape) * np.sqrt(b)
    zz, inv = stabilise(draws, model)
    np.testing.assert_allclose(inv(zz.mean(axis=0, keepdims=True)).ravel(), 120.0, rtol=0.01)
    np.testing.assert_allclose(invert(z), noisy, rtol=1e-6, atol=0.2)  # algebraic round trip up to the −1/8


def test_stabilise_divides_bands_without_signal_dependence_by_their_sigma(rng: np.random.Generator) -> None:
    from hiralign.ensemble import stabilise

    a, b = np.array([0.0, 1e-6]), np.array([4.0, 9.0])
    clean, noisy, model = _poisson_gaussian(rng, a, b)
    z, invert = stabilise(noisy, model)
    np.testing.assert_allclose(z[..., 0], noisy[..., 0] / 2.0, rtol=1e-9)
    np.testing.assert_allclose(invert(z), noisy, rtol=1e-9)


def test_bm4d_on_the_stabilised_cube_beats_a_blind_sigma_on_poisson_gaussian_noise(rng: np.random.Generator) -> None:
    pytest.importorskip("bm4d")
    a, b = np.array([0.5, 0.6, 0.7, 0.8]), np.array([2.0, 2.0, 3.0, 3.0])
    clean, noisy, model = _poisson_gaussian(rng, a, b, shape=(48, 48))
    cube = Cube(data=noisy.astype(np.float32), name="pg")
    rmse = {kind: float(np.sqrt(np.mean((bm4d_restore(cube, **kw).data - clean) ** 2)))
            for kind, kw in (("blind", {}), ("stabilised", {"noise": model}))}
    noisy_rmse = float(np.sqrt(np.mean((noisy - clean) ** 2)))
    assert rmse["stabilised"] < 0.5 * noisy_rmse
    assert rmse["stabilised"] <= rmse["blind"] * 1.02
    with pytest.raises(InputError, match="noise model of 4 bands"):
        bm4d_restore(Cube(data=noisy[..., :3].astype(np.float32), name="pg3"), noise=model)
