"""The training-free subspace denoiser (hiralign.classical)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from hiralign.classical import SubspaceConfig, signal_subspace, subspace_denoise, whiten
from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.progress import Cancelled, NullProgress


def _low_rank_scene(rng: np.random.Generator, side: int = 64, bands: int = 24, rank: int = 3) -> np.ndarray:
    """(side, side, bands) scene: ``rank`` smooth abundance maps times smooth spectra, in [0.1, 0.9]."""
    maps = gaussian_filter(rng.random((side, side, rank)), sigma=(3, 3, 0))
    maps = (maps - maps.min((0, 1))) / np.ptp(maps, axis=(0, 1))
    wl = np.linspace(0, 1, bands)
    spectra = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (k + 1) * wl / 2 + k) for k in range(rank)])
    scene = maps @ spectra / rank
    return 0.1 + 0.8 * (scene - scene.min()) / np.ptp(scene)


def test_subspace_denoising_removes_most_of_non_iid_gaussian_noise(rng: np.random.Generator) -> None:
    clean = _low_rank_scene(rng)
    sigma = np.linspace(0.04, 0.2, clean.shape[2])
    noisy = Cube((clean + rng.normal(size=clean.shape) * sigma).astype(np.float32), name="noisy")
    out = subspace_denoise(noisy)
    assert out.shape == noisy.shape and out.data.dtype == np.float32 and out.name == "noisy"
    before, after = (float(np.sqrt(np.mean((c - clean) ** 2))) for c in (noisy.data, out.data))
    assert after < 0.2 * before  # low rank + white noise: projection and NLM remove > 80 % of the error
    # the mean spectrum is kept (no bias): the denoiser moves noise, not level
    np.testing.assert_allclose(out.data.mean((0, 1)), clean.mean((0, 1)), atol=0.01)


def test_the_automatic_subspace_follows_the_scene_rank(rng: np.random.Generator) -> None:
    for rank in (2, 5):
        clean = _low_rank_scene(rng, bands=30, rank=rank)
        noisy = clean + rng.normal(size=clean.shape) * 0.02
        white, _ = whiten(noisy)
        _, basis, values = signal_subspace(white, SubspaceConfig(min_components=1))
        assert basis.shape == (30, rank) and values[rank] < 3 < values[rank - 1]
        np.testing.assert_allclose(basis.T @ basis, np.eye(rank), atol=1e-9)
    _, basis, _ = signal_subspace(white, SubspaceConfig(components=7))
    assert basis.shape == (30, 7)
    _, basis, _ = signal_subspace(white[..., :2], SubspaceConfig())
    assert basis.shape == (2, 2)  # never more components than bands


def test_a_noise_model_stabilises_poisson_gaussian_noise_first(rng: np.random.Generator) -> None:
    from hiralign.noise import NoiseModel

    clean = 250 * _low_rank_scene(rng, bands=16) ** 3  # 0.25–180 counts: noise varies 10× over the image
    a, b = 1.0, 1.0
    noisy = rng.poisson(clean / a) * a + rng.normal(size=clean.shape) * np.sqrt(b)
    model = NoiseModel(sigma=(float(np.sqrt(a * clean.mean() + b)),) * 16, a=(a,) * 16, b=(b,) * 16,
                       mean=tuple(clean.mean((0, 1))), scale=(1.0,) * 16, units="counts")
    cube = Cube(noisy.astype(np.float32), name="pg")
    err = {kind: float(np.sqrt(np.mean((subspace_denoise(cube, noise=n).data - clean) ** 2)))
           for kind, n in (("blind", None), ("stabilised", model))}
    assert err["stabilised"] < 0.35 * float(np.sqrt(np.mean((noisy - clean) ** 2)))
    assert err["stabilised"] < err["blind"]
    with pytest.raises(InputError, match="noise model of 16 bands"):
        subspace_denoise(Cube(noisy[..., :8].astype(np.float32), name="x"), noise=model)


def test_a_noise_model_uses_the_stabilised_strength_and_search_radius(rng: np.random.Generator, monkeypatch) -> None:
    import hiralign.classical as classical
    from hiralign.noise import NoiseModel

    seen: list[tuple[float, int]] = []
    real = classical.denoise_eigen_image

    def spy(image, config=SubspaceConfig()):
        seen.append((config.strength, config.patch_distance))
        return real(image, config)

    monkeypatch.setattr(classical, "denoise_eigen_image", spy)
    clean = 100 * _low_rank_scene(rng, side=32, bands=8)
    cube = Cube((clean + rng.normal(size=clean.shape)).astype(np.float32), name="x")
    model = NoiseModel(sigma=(1.0,) * 8, a=(0.0,) * 8, b=(1.0,) * 8, mean=tuple(clean.mean((0, 1))),
                       scale=(1.0,) * 8, units="counts")
    config = SubspaceConfig(strength=0.7, patch_distance=8, stabilised_strength=0.5, stabilised_patch_distance=3)
    subspace_denoise(cube, config)
    assert set(seen) == {(0.7, 8)}
    seen.clear()
    subspace_denoise(cube, config, noise=model)
    assert set(seen) == {(0.5, 3)}
    with pytest.raises(ConfigError):
        SubspaceConfig(stabilised_patch_distance=0)


def test_bad_settings_and_cubes_are_refused_and_cancel_is_honoured(rng: np.random.Generator) -> None:
    for bad in ({"components": -1}, {"threshold": 1.0}, {"strength": 0}, {"patch_size": 0}):
        with pytest.raises(ConfigError):
            SubspaceConfig(**bad)
    with pytest.raises(InputError, match="≥ 2 bands"):
        subspace_denoise(Cube(rng.random((8, 8, 1), dtype=np.float32), name="one"))

    class CancelAtOnce(NullProgress):
        def check(self) -> None:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        subspace_denoise(Cube(rng.random((16, 16, 6), dtype=np.float32), name="c"), progress=CancelAtOnce())


def test_the_wiener_stage_keeps_what_the_pilot_calls_signal_and_drops_the_rest(rng: np.random.Generator) -> None:
    from hiralign.classical import dct_wiener

    clean = 4 * gaussian_filter(rng.normal(size=(40, 52)), 2)
    noisy = clean + rng.normal(size=clean.shape)
    # an exact pilot: the oracle Wiener filter removes most of the unit noise
    out = dct_wiener(noisy, clean, patch=8, step=2, chunk_rows=3)  # several chunks
    assert out.shape == clean.shape
    assert np.sqrt(np.mean((out - clean) ** 2)) < 0.4
    # a zero pilot says "no signal anywhere": the output is ~0; a constant image stays constant
    assert np.abs(dct_wiener(noisy, np.zeros_like(noisy))).max() < 1e-6 + np.abs(noisy).max() * 1e-3
    flat = np.full((17, 9), 30.0)  # DC gain P²/(P² + 1) with P = 120: within 1e-4 of 1
    np.testing.assert_allclose(dct_wiener(flat, flat, patch=4, step=1), flat, rtol=1e-4)


def test_stripes_dead_lines_and_impulses_are_fitted_around(rng: np.random.Generator) -> None:
    from hiralign.outliers import unreliable_mask

    clean = _low_rank_scene(rng, side=96, bands=18)
    noisy = clean + rng.normal(size=clean.shape) * 0.03
    corrupt = noisy.copy()
    corrupt[:, 10:14, 2] = 0.0                                  # dead lines
    hit = rng.random(clean.shape[:2]) < 0.4                       # 40 % salt and pepper in band 5
    corrupt[..., 5] = np.where(hit, np.where(rng.random(hit.shape) < 0.5, 0.0, 1.0), corrupt[..., 5])
    mask = unreliable_mask(corrupt)
    assert mask[:, 10:14, 2].all() and mask[..., 5][hit].all() and mask[..., 5][~hit].sum() == 0
    assert not mask[..., [0, 1, 3, 9]].any()  # noisy data never repeats exactly
    cube = Cube(corrupt.astype(np.float32), name="complex")
    rmse = {}
    for kind, config in (("robust", SubspaceConfig()), ("plain", SubspaceConfig(robust=False))):
        rmse[kind] = np.sqrt(np.mean((subspace_denoise(cube, config).data - clean) ** 2, axis=(0, 1)))
    noise_only = np.sqrt(np.mean((subspace_denoise(Cube(noisy.astype(np.float32), name="n")).data - clean) ** 2,
                                 axis=(0, 1)))
    # the dead lines and impulses cost nothing once fitted around (the plain denoiser keeps 15× / 8× the error)
    for band in (2, 5):
        assert rmse["robust"][band] < 1.3 * noise_only[band] and rmse["plain"][band] > 5 * noise_only[band]


def test_stripes_weaker_than_the_noise_are_removed() -> None:
    # a fixed scene: in some draws (2 of 8 seeds tried) the striped band takes a subspace component of its
    # own and both denoisers keep half of its stripes (the limit in hiralign.outliers' docstring)
    rng = np.random.default_rng(0)
    clean = _low_rank_scene(rng, side=96, bands=18)
    noisy = clean + rng.normal(size=clean.shape) * 0.1
    stripes = (rng.random(96) < 0.15) * rng.uniform(-0.25, 0.25, 96)
    noisy[..., 9] += stripes[None, :]
    cube = Cube(noisy.astype(np.float32), name="striped")
    striped_columns = stripes != 0
    left = {}
    for kind, config in (("robust", SubspaceConfig()), ("plain", SubspaceConfig(robust=False))):
        error = (subspace_denoise(cube, config).data[..., 9] - clean[..., 9]).mean(axis=0)
        left[kind] = float(np.sqrt(np.mean(error[striped_columns] ** 2)))
        assert np.all(np.abs(error[~striped_columns]) < 0.05)  # no stripe is invented where there is none
    # the column offsets, read off a fit on the signal components only, leave a fraction of the stripes; the
    # plain denoiser's fourth component (min_components 4 on this rank-3 scene) is the striped band's own
    stripe_rms = np.sqrt(np.mean(stripes[striped_columns] ** 2))
    assert left["robust"] < 0.25 * stripe_rms
    assert left["robust"] < 0.6 * left["plain"]


def test_the_bm3d_eigen_filter_is_optional_and_refused_in_one_line_without_it(rng: np.random.Generator,
                                                                               monkeypatch) -> None:
    import hiralign.classical as classical
    from hiralign.config import AdaptConfig
    from hiralign.ensemble import ProxyConfig
    from hiralign.stages import proxy_problems

    with pytest.raises(ConfigError, match="eigen-image filter"):
        SubspaceConfig(eigen_filter="bm5d")
    monkeypatch.setattr(classical, "bm3d_available", lambda: False)
    cube = Cube(_low_rank_scene(rng, side=16, bands=6).astype(np.float32), name="x")
    with pytest.raises(ConfigError, match="pip install bm3d"):
        subspace_denoise(cube, SubspaceConfig(eigen_filter="bm3d"))
    for proxy in (ProxyConfig(source="subspace-bm3d"), ProxyConfig(source="blend", classical="subspace-bm3d")):
        problems = proxy_problems(AdaptConfig(task="gaussian", proxy=proxy))
        assert len(problems) == 1 and "pip install bm3d" in problems[0]
    assert proxy_problems(AdaptConfig(task="gaussian", proxy=ProxyConfig(source="subspace"))) == []


def test_bm3d_on_the_eigen_images_denoises(rng: np.random.Generator) -> None:
    pytest.importorskip("bm3d")
    from hiralign.ensemble import classical_restore

    clean = _low_rank_scene(rng, side=32, bands=8)
    noisy = Cube((clean + rng.normal(size=clean.shape) * 0.08).astype(np.float32), name="noisy")
    out = classical_restore(noisy, "subspace-bm3d")
    nlm = classical_restore(noisy, "subspace")
    assert out.shape == noisy.shape and out.data.dtype == np.float32
    before, after = (float(np.sqrt(np.mean((c - clean) ** 2))) for c in (noisy.data, out.data))
    assert after < 0.2 * before and not np.array_equal(out.data, nlm.data)


def test_the_bm3d_filter_leaves_cubes_with_outliers_to_nlm(rng: np.random.Generator) -> None:
    pytest.importorskip("bm3d")
    clean = _low_rank_scene(rng, side=32, bands=8)
    data = clean + rng.normal(size=clean.shape) * 0.05
    data[rng.random(data.shape) < 0.01] = 1.0  # impulses: the robust fit masks them
    cube = Cube(data.astype(np.float32), name="impulses")
    np.testing.assert_array_equal(subspace_denoise(cube, SubspaceConfig(eigen_filter="bm3d")).data,
                                  subspace_denoise(cube).data)
