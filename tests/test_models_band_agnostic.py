"""Band-agnostic restorers (spectral window, subspace), random band layouts, their pretraining."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hiralign.errors import ConfigError, InputError, ModelError
from hiralign.models import ARCHS, build_model
from hiralign.models.spectral_window import SpectralWindowRestorer, band_windows
from hiralign.models.subspace import SubspaceRestorer, spectral_subspace
from hiralign.patches import BandLayouts, BandLayoutSampler

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"spectral_window": {"features": 8, "depth": 3}, "subspace": {"features": 8, "depth": 3, "correction": 4}}
#: The settings of the shipped subspace models, small.
SHIPPED = {"features": 8, "depth": 3, "correction": 0, "start": "adaptive", "normalise": True, "leaky": True}


@pytest.mark.parametrize("arch, args", [(a, SMALL[a]) for a in sorted(SMALL)] + [("subspace", SHIPPED)])
@pytest.mark.parametrize("scale", [1, 4])
def test_one_model_takes_any_band_count(arch, args, scale):
    model = build_model(arch, 31, scale, **args)
    assert getattr(model, "band_agnostic", False) is True
    for bands in (1, 3, 16, 31, 72):
        x = torch.rand(2, bands, 12, 10)
        out = model(x)
        assert out.shape == (2, bands, 12 * scale, 10 * scale)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_weights_do_not_depend_on_the_nominal_band_count(arch):
    trained = build_model(arch, 31, 1, **SMALL[arch])
    other = build_model(arch, 16, 1, **SMALL[arch])
    other.load_state_dict(trained.state_dict())  # no band-sized tensor anywhere
    x = torch.rand(1, 16, 8, 8)
    assert torch.equal(trained(x), other(x))


def test_odd_sizes_are_padded_and_cropped_back():
    for model in (SpectralWindowRestorer(features=4, depth=2, unshuffle=4), SubspaceRestorer(features=4, depth=2)):
        assert model(torch.rand(1, 7, 13, 9)).shape == (1, 7, 13, 9)


def test_band_windows_reflect_at_both_ends():
    x = torch.arange(4.0).view(1, 4, 1, 1).expand(1, 4, 2, 2)
    windows = band_windows(x, 2)[0, :, :, 0, 0]
    assert windows.tolist() == [[2, 1, 0, 1, 2], [1, 0, 1, 2, 3], [0, 1, 2, 3, 2], [1, 2, 3, 2, 1]]
    assert band_windows(torch.rand(1, 1, 3, 3), 3).shape == (1, 1, 7, 3, 3)  # one band: repeated
    assert band_windows(torch.rand(1, 2, 3, 3), 4)[0, 0, :, 0, 0].shape == (9,)  # wider than the cube


def test_window_restorer_starts_as_identity_and_bicubic():
    x = torch.rand(2, 9, 8, 8)
    assert torch.equal(SpectralWindowRestorer(features=4, depth=2)(x), x)
    up = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(SpectralWindowRestorer(scale=4, features=4, depth=2)(x), up)


def test_chunked_inference_equals_one_pass():
    model = SpectralWindowRestorer(features=6, depth=3, chunk=5)
    torch.nn.init.normal_(model.tail.weight, std=0.1)
    x = torch.rand(2, 13, 8, 8)
    model.eval()
    chunked = model(x)
    model.chunk = 1000
    assert torch.allclose(chunked, model(x), atol=1e-6)


def test_subspace_is_orthonormal_padded_and_sign_fixed():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((2, 12, 10, 10), dtype=np.float32))
    mean, basis = spectral_subspace(x, 5)
    assert mean.shape == (2, 12, 1, 1) and basis.shape == (2, 12, 5)
    assert torch.allclose(basis.transpose(1, 2) @ basis, torch.eye(5).expand(2, 5, 5), atol=1e-5)
    _, flipped = spectral_subspace(-x + 1.0, 5)  # negated data: same subspace, signs chosen by skewness
    eigen = torch.einsum("nbk,nbhw->nkhw", basis, x - mean).reshape(2, 5, -1)
    assert ((eigen ** 3).sum(-1) >= 0).all()
    assert torch.allclose(flipped.abs(), basis.abs(), atol=1e-4)
    _, few = spectral_subspace(x[:, :3], 5)
    assert few.shape == (2, 3, 5) and torch.equal(few[:, :, 3:], torch.zeros(2, 3, 2))


def test_subspace_restorer_starts_as_the_rank_k_projection():
    rng = np.random.default_rng(1)
    maps, spectra = rng.random((3, 16, 16)), rng.random((20, 3))
    low_rank = torch.from_numpy(np.einsum("kp,bk->bp", maps.reshape(3, -1), spectra).reshape(1, 20, 16, 16)).float()
    model = SubspaceRestorer(rank=3, features=4, depth=2, correction=0)
    assert torch.allclose(model(low_rank), low_rank, atol=1e-4)  # a rank-3 cube (plus its mean) is kept
    noisy = low_rank + 0.1 * torch.randn_like(low_rank)
    restored = model(noisy)
    assert (restored - low_rank).square().mean() < 0.5 * (noisy - low_rank).square().mean()
    with pytest.raises(ConfigError):
        SubspaceRestorer(rank=0)


def test_both_archs_are_registered_and_check_settings():
    assert {"spectral_window", "subspace"} <= set(ARCHS)
    with pytest.raises(ConfigError):
        build_model("spectral_window", 31, 1, depth=1)
    with pytest.raises(ModelError):
        build_model("nope", 31)


def _fine_cubes(n: int = 3, side: int = 24):
    grid = np.arange(380.0, 781.0, 5.0)
    rng = np.random.default_rng(0)
    cubes = [(rng.random((side, side, 1)) * (grid / 780.0)).astype(np.float32) for _ in range(n)]
    return cubes, grid


def test_band_layouts_are_random_inside_the_grid_and_reproducible():
    cubes, grid = _fine_cubes()
    layouts = BandLayouts(min_bands=8, max_bands=20, min_step_nm=4, max_step_nm=12, jitter=0.25)
    sampler = BandLayoutSampler(cubes, grid, layouts)
    gen, again = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    counts = set()
    for _ in range(12):
        batch = sampler.sample(2, 16, gen)
        wl = sampler.last_wavelengths
        counts.add(batch.shape[1])
        assert 8 <= batch.shape[1] <= 20 and batch.shape == (2, wl.size, 16, 16)
        assert grid[0] <= wl[0] and wl[-1] <= grid[-1] and np.all(np.diff(wl) > 0)
        assert np.diff(wl).mean() <= 12 * (1 + 2 * 0.25 / (wl.size - 1)) + 1e-9  # the end bands move too
        # Each cube is linear in wavelength, so interpolation is exact: band = pixel · λ / 780.
        assert torch.allclose(batch / batch[:, :1].clamp_min(1e-6),
                              torch.from_numpy(wl / wl[0]).float().view(1, -1, 1, 1).expand_as(batch), atol=1e-3)
        assert torch.equal(batch, sampler.sample(2, 16, again))
    assert len(counts) > 3
    with pytest.raises(ConfigError):
        BandLayouts(min_bands=2)
    with pytest.raises(InputError):
        BandLayoutSampler(cubes, grid[:-1])


def test_training_on_random_layouts_sees_many_band_counts():
    from hiralign.train import TrainConfig, train

    cubes, grid = _fine_cubes(side=32)
    model = SpectralWindowRestorer(features=8, depth=3)
    sampler = BandLayoutSampler(cubes, grid, BandLayouts(min_bands=6, max_bands=24))
    seen = []
    original = sampler.sample

    def spy(n, size, generator):
        out = original(n, size, generator)
        seen.append(out.shape[1])
        return out

    sampler.sample = spy
    result = train(model, sampler, TrainConfig(task="gaussian", steps=10, batch_size=2, patch_size=16),
                   device="cpu")
    assert len(set(seen)) > 3  # one model, one optimiser, a new band count nearly every step
    assert np.isfinite(result.losses).all() and model.tail.weight.abs().sum() > 0  # the zero tail has moved


@pytest.fixture(scope="module")
def fine_source(tmp_path_factory):
    from hiralign.io import load_rgb
    from hiralign.source import SourceConfig, make_source_cubes, skimage_image, write_cube_set

    photo = load_rgb(skimage_image("astronaut.png"))
    config = SourceConfig(n=3, size=32, seed=1, grid="fine")
    cubes = make_source_cubes(config, [("astronaut", photo[100:164, 100:164])])
    out = tmp_path_factory.mktemp("fine") / "src"
    write_cube_set(out, {f"{c.name}.npz": c for c in cubes}, [{"file": f"{c.name}.npz"} for c in cubes],
                   {"kind": "hiralign synthetic source set", "config": {"grid": "fine"}})
    return out


def test_pretrain_with_band_layouts_writes_a_band_agnostic_checkpoint(fine_source, tmp_path):
    from hiralign.models.checkpoint import load_checkpoint, read_provenance
    from hiralign.pretrain import VALIDATION_WAVELENGTHS, PretrainSettings, pretrain
    from hiralign.train import TrainConfig

    settings = PretrainSettings(arch="subspace", args={"features": 8, "depth": 3, "correction": 4}, val_cubes=1,
                                val_size=32, band_layouts=BandLayouts(min_bands=8, max_bands=16))
    out, result = pretrain(fine_source, tmp_path / "ckpt", TrainConfig(task="gaussian", steps=3, batch_size=2,
                                                                       patch_size=16), settings, device="cpu")
    model, config = load_checkpoint(out, "cpu")
    assert getattr(model, "band_agnostic", False)
    assert config.bands == 31 and np.allclose(config.wavelengths, VALIDATION_WAVELENGTHS)
    provenance = read_provenance(out)
    assert provenance["band_agnostic"] is True and provenance["band_layouts"]["max_bands"] == 16
    assert result.final_psnr is not None
    assert model(torch.rand(1, 16, 16, 16)).shape == (1, 16, 16, 16)
    with pytest.raises(ConfigError, match="band-agnostic"):
        pretrain(fine_source, tmp_path / "bad", TrainConfig(task="gaussian", steps=1, batch_size=2, patch_size=16),
                 PretrainSettings(arch="compact", val_cubes=1, band_layouts=BandLayouts()), device="cpu")


def test_pretrain_command_band_layout_options(fine_source, tmp_path, capsys):
    from hiralign.cli import main

    out = tmp_path / "cli"
    args = ["pretrain", "--task", "gaussian", "--arch", "spectral_window", "--arch-args",
            '{"features": 4, "depth": 2}', "--source", str(fine_source), "--out", str(out), "--steps", "2",
            "--batch-size", "2", "--patch-size", "16", "--val-cubes", "1", "--device", "cpu"]
    assert main(args + ["--band-layouts", "8:12", "--band-step", "4:8"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    layouts = json.loads((out / "provenance.json").read_text())["band_layouts"]
    assert (layouts["min_bands"], layouts["max_step_nm"]) == (8, 8.0)
    assert main(args + ["--band-layouts", "eight"]) == 2  # one-line error, no traceback


def test_shipped_band_agnostic_models_are_found_by_kind():
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.resources import resources_dir, shipped_model

    assert shipped_model("gaussian").name == "gaussian"
    with pytest.raises(ModelError, match="band-agnostic"):
        shipped_model("no-such-task", band_agnostic=True)
    for folder in sorted((resources_dir() / "models").glob("*-any")):
        model, config = load_checkpoint(folder, "cpu")
        assert shipped_model(folder.name[:-4], band_agnostic=True) == folder
        assert getattr(model, "band_agnostic", False)
        out = model(torch.rand(1, 16, 16, 16))
        assert out.shape == (1, 16, 16 * config.scale, 16 * config.scale)


def test_haar_noise_estimate_and_smoothed_starts():
    from hiralign.models.subspace import gaussian_blur, haar_noise_sigma

    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 3, 64, 64, generator=gen) * torch.tensor([0.01, 0.05, 0.2]).view(1, 3, 1, 1)
    ratio = haar_noise_sigma(noise + torch.linspace(0, 1, 64).view(1, 1, 1, 64)) / torch.tensor([0.01, 0.05, 0.2])
    assert ((ratio - 1).abs() < 0.1).all()  # a smooth ramp does not bias the estimate
    flat = torch.full((1, 2, 9, 9), 0.5)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat)
    assert gaussian_blur(torch.rand(1, 2, 3, 3), 1.0).shape == (1, 2, 3, 3)  # smaller than the kernel
    # A smooth rank-2 scene plus noise: both smoothed starts beat the bare projection.
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    clean = torch.einsum("khw,kb->bhw", torch.stack([yy, xx]), torch.rand(2, 20, generator=gen))[None]
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=gen)
    errors = {}
    for start in ("projection", "blur", "adaptive"):
        with torch.no_grad():
            out = SubspaceRestorer(rank=4, features=4, depth=2, correction=0, start=start)(noisy)
        errors[start] = float((out - clean).square().mean())
    assert errors["blur"] < errors["projection"] and errors["adaptive"] < errors["projection"]
    with pytest.raises(ConfigError, match="start"):
        SubspaceRestorer(start="wiener")


def test_normalised_subspace_restorer_is_scale_equivariant():
    model = SubspaceRestorer(features=6, depth=3, correction=0, start="adaptive", normalise=True)
    torch.nn.init.normal_(model.tail.weight, std=0.05)  # a non-zero CNN output
    x = torch.rand(2, 12, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(0.004 * x), 0.004 * model(x), rtol=1e-3, atol=1e-7)  # dark 10-bit data
        plain = SubspaceRestorer(features=6, depth=3, correction=0, start="adaptive")
        plain.load_state_dict(model.state_dict())
        assert not torch.allclose(plain(0.004 * x), 0.004 * plain(x), rtol=1e-3, atol=1e-7)
