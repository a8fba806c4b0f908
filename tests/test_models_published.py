"""Published backbones: shapes, published sizes, training signal, TorchScript, bad settings."""
from __future__ import annotations

import pytest
import torch

from hiralign.errors import ConfigError, ModelError
from hiralign.models import ARCHS, build_model
from hiralign.models.blocks import count_parameters, pad_to_multiple

pytestmark = pytest.mark.usefixtures("one_thread")

#: name -> (scale, published parameter count at 31 bands; see docs/backbones.md for sources)
PUBLISHED = {
    "sert_tiny": (1, 1.00e6),
    "sert_small": (1, 1.40e6),
    "sert_base": (1, 1.91e6),
    "qrnn3d": (1, 0.86e6),
    "gdrrn": (4, 0.22e6),
    "essaformer": (4, 0.73e6),
}
DENOISERS = [name for name, (scale, _) in PUBLISHED.items() if scale == 1]
SUPER_RESOLVERS = [name for name, (scale, _) in PUBLISHED.items() if scale > 1]
#: Settings that make training deterministic (no dropout / stochastic depth).
NO_NOISE = {"sert_tiny": {"drop_path_rate": 0.0}, "sert_small": {"drop_path_rate": 0.0},
            "sert_base": {"drop_path_rate": 0.0}, "essaformer": {"dropout": 0.0}}


def make(name: str, bands: int, device: torch.device, **args) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, bands, scale=PUBLISHED[name][0], **args).to(device)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_registered_with_published_size(name: str) -> None:
    assert name in ARCHS
    scale, published = PUBLISHED[name]
    params = count_parameters(build_model(name, 31, scale=scale))
    assert abs(params - published) / published < 0.15, (name, params, published)


@pytest.mark.parametrize("name,bands,size", [
    *[(name, 31, (32, 32)) for name in DENOISERS],
    ("sert_tiny", 3, (19, 45)), ("sert_small", 10, (17, 7)), ("sert_base", 2, (5, 33)),
    ("qrnn3d", 3, (19, 45)), ("qrnn3d", 10, (17, 7))])
def test_denoiser_keeps_shape_for_any_bands_and_size(name, bands, size, device) -> None:
    model = make(name, bands, device).eval()
    x = torch.rand(1, bands, *size, device=device)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and y.device == x.device
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", SUPER_RESOLVERS)
@pytest.mark.parametrize("bands,size", [(31, (8, 8)), (4, (5, 11)), (12, (9, 3))])
def test_super_resolver_upsamples_by_four(name, bands, size, device) -> None:
    model = make(name, bands, device).eval()
    x = torch.rand(2, bands, *size, device=device)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, bands, 4 * size[0], 4 * size[1])
    assert torch.isfinite(y).all()


def training_pair(name: str, bands: int, device: torch.device):
    """A smooth clean batch and its degraded input (noise, or ×4 box down-sampling)."""
    generator = torch.Generator().manual_seed(1)
    coarse = torch.rand(2, bands, 8, 8, generator=generator)
    clean = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear",
                                            align_corners=False)
    if PUBLISHED[name][0] == 1:
        degraded = clean + 0.1 * torch.randn(clean.shape, generator=generator)
    else:
        degraded = torch.nn.functional.avg_pool2d(clean, 4)
    return degraded.to(device), clean.to(device)


#: SERT's three configurations share every module; the deeper two only add time.
TRAINED = [pytest.param(name, marks=pytest.mark.slow) if name in ("sert_small", "sert_base")
           else name for name in PUBLISHED]


@pytest.mark.parametrize("name", TRAINED)
def test_backward_and_adam_steps_lower_the_loss(name: str, device: torch.device) -> None:
    model = make(name, 6, device, **NO_NOISE.get(name, {})).train()
    degraded, clean = training_pair(name, 6, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)  # the published SERT rate; higher overshoots at init
    losses = []
    for _ in range(4):
        loss = torch.nn.functional.l1_loss(model(degraded), clean)
        optimizer.zero_grad()
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(torch.nn.functional.l1_loss(model(degraded), clean).item())
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("name", TRAINED)
def test_torchscript_export_matches_eager(name: str, device: torch.device, tmp_path) -> None:
    model = make(name, 5, device).eval()
    scripted = torch.jit.script(model)
    path = tmp_path / f"{name}.pt"
    scripted.save(str(path))
    loaded = torch.jit.load(str(path), map_location=device)
    x = torch.rand(1, 5, 13, 18, device=device)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", DENOISERS)
def test_denoiser_refuses_a_scale(name: str) -> None:
    with pytest.raises(ModelError, match="scale must be 1"):
        build_model(name, 31, scale=4)


@pytest.mark.parametrize("name", SUPER_RESOLVERS)
@pytest.mark.parametrize("scale", [1, 5])
def test_super_resolver_refuses_unsupported_scales(name: str, scale: int) -> None:
    with pytest.raises(ModelError, match="super-resolution"):
        build_model(name, 31, scale=scale)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_bad_settings_are_config_errors(name: str) -> None:
    scale = PUBLISHED[name][0]
    with pytest.raises(ConfigError, match="unknown setting.*nonsense"):
        build_model(name, 31, scale=scale, nonsense=3)
    with pytest.raises(ConfigError, match="band count"):
        build_model(name, 0, scale=scale)


@pytest.mark.parametrize("args", [{"num_heads": [5, 5]}, {"split_sizes": [3, 4]},
                                  {"depths": [4]}])
def test_inconsistent_sert_settings_name_the_problem(args) -> None:
    with pytest.raises(ConfigError, match="sert_tiny: invalid settings"):
        build_model("sert_tiny", 31, **args)


def test_sr_scales_other_than_four(device: torch.device) -> None:
    for name in SUPER_RESOLVERS:
        for scale in (2, 3):
            torch.manual_seed(0)
            model = build_model(name, 4, scale=scale, **({"dim": 72} if name == "essaformer"
                                                         else {})).to(device).eval()
            with torch.no_grad():
                y = model(torch.rand(1, 4, 5, 6, device=device))
            assert y.shape == (1, 4, 5 * scale, 6 * scale)


def test_padding_reflects_and_falls_back_to_replication() -> None:
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (1, 2, 4, 8)
    torch.testing.assert_close(padded[..., :3, :5], x)
    torch.testing.assert_close(padded[..., 3, :5], x[..., 1, :])  # reflection of row 1
    tiny = pad_to_multiple(x, 32)
    assert tiny.shape == (1, 2, 32, 32)
    torch.testing.assert_close(tiny[..., 31, 31], x[..., 2, 4])  # edge replicated


@pytest.mark.parametrize("name,task,args", [("sert_tiny", "gaussian", {"depths": [2, 2]}),
                                            ("gdrrn", "sr4", {"recursions": 3})])
def test_checkpoint_round_trip(name, task, args, tmp_path) -> None:
    from hiralign.models.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint

    scale = PUBLISHED[name][0]
    model = make(name, 4, torch.device("cpu"), **args).eval()
    config = CheckpointConfig(arch=name, task=task, bands=4, scale=scale, args=args)
    save_checkpoint(model, tmp_path / "ckpt", config, {"note": "test"})
    loaded, loaded_config = load_checkpoint(tmp_path / "ckpt")
    assert loaded_config.args == args and type(loaded) is type(model)
    x = torch.rand(1, 4, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
