"""The shared stage layer: typed config, per-item stages, preflight, band-agnostic models, describe()."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from hiralign import io, stages
from hiralign.config import AdaptConfig, field_help, overrides, target_seed
from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError, ModelError, PreflightError, describe
from hiralign.finetune import FinetuneConfig
from hiralign.models import build_model
from hiralign.models.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from hiralign.proxy import TileConfig
from hiralign.runfolder import RunFolder
from hiralign.warp import WarpConfig

WL31 = np.arange(400, 701, 10.0)


class BandAgnostic(torch.nn.Module):
    """A tiny restorer for any band count: one learnt gain on a 3×3 spatial smoothing."""

    band_agnostic = True

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(0.9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def agnostic(bands: int, scale: int = 1) -> torch.nn.Module:
    """Plug-in factory ``test_stages:agnostic`` (the band count is not used)."""
    return BandAgnostic()


def _cube(bands: int, wl: np.ndarray | None, side: int = 24, seed: int = 0, name: str = "scene") -> Cube:
    rng = np.random.default_rng(seed)
    data = gaussian_filter(rng.random((side, side, bands)), sigma=(2, 2, 1)).astype(np.float32)
    return Cube((data - data.min()) / (data.max() - data.min()), wavelengths=wl, name=name)


@pytest.fixture(scope="module")
def compact31(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ckpt") / "compact31"
    model = build_model("compact", 31, features=8, depth=2)
    return save_checkpoint(model, folder, CheckpointConfig(arch="compact", task="gaussian", bands=31, wavelengths=WL31,
                                                          args={"features": 8, "depth": 2}))


# ------------------------------------------------------------------- config
def test_config_round_trips_through_json_exactly() -> None:
    config = AdaptConfig(task="sr4", model="/models/sr", generator="classic",
                         generator_config={"max_rotation_deg": 5.0}, guides=2,
                         warp=WarpConfig(iterations=50, stencil=5),
                         finetune=FinetuneConfig(steps=120, ratio=2.0, mode="generated-only", lr=1e-4),
                         tiles=TileConfig(tile=96, overlap=12, batch=2), seed=7, device="cuda:1")
    data = json.loads(json.dumps(config.to_dict()))
    assert AdaptConfig.from_dict(data) == config
    assert config.finetune.seed == 7  # one seed: finetuning always uses the run's
    assert overrides(config.warp) == {"iterations": 50, "stencil": 5}
    assert AdaptConfig.from_dict({"task": "gaussian"}) == AdaptConfig(task="gaussian")
    with pytest.raises(ConfigError, match="unknown setting"):
        AdaptConfig.from_dict({**data, "guide": 3})
    with pytest.raises(ConfigError, match="no setting 'scales'"):
        AdaptConfig(task="gaussian", generator_config={"scales": 5})
    with pytest.raises(ConfigError, match="PatchNNConfig"):
        AdaptConfig(task="gaussian", generator="patchnn", generator_config=FinetuneConfig())
    with pytest.raises(ConfigError, match="device"):
        AdaptConfig(task="gaussian", device="gpu")
    with pytest.raises(ConfigError, match="proxy-only"):
        AdaptConfig(task="gaussian", guides=0)
    assert not AdaptConfig(task="gaussian", finetune=FinetuneConfig(ratio=0)).needs_synthesis  # pairs decided once


def test_one_seed_derivation_and_help_texts_come_from_the_dataclasses() -> None:
    from hiralign.cli import build_parser

    assert [target_seed(5, i) for i in range(3)] == [5, 5 + 7919, 5 + 2 * 7919]
    assert AdaptConfig(task="gaussian", seed=5).target_seed(2) == 5 + 2 * 7919
    assert "synthesized:proxy sampling ratio" in field_help(FinetuneConfig, "ratio")
    assert field_help(FinetuneConfig, "steps").endswith("(default: 400)")
    adapt = build_parser()._subparsers._group_actions[0].choices["adapt"]  # noqa: SLF001 - argparse has no API
    helps = {a.dest: a.help for a in adapt._actions}  # noqa: SLF001
    assert helps["ratio"] == field_help(FinetuneConfig, "ratio").replace("%%", "%")
    assert helps["tile"] == field_help(TileConfig, "tile") and helps["guides"] == field_help(AdaptConfig, "guides")


def test_describe_gives_one_line_and_the_traceback() -> None:
    try:
        raise InputError("cube.hdr: band 3 is truncated")
    except InputError as exc:
        summary, details = describe(exc)
    assert summary == "cube.hdr: band 3 is truncated" and "Traceback" in details
    assert describe(ValueError("boom"))[0] == "Internal error: ValueError: boom"
    assert describe(MemoryError())[0].startswith("Out of memory")


# ------------------------------------------------------------------- stages
def test_a_16_band_target_is_restored_on_the_model_bands_and_mapped_back(compact31: Path, tmp_path: Path) -> None:
    model, ckpt = load_checkpoint(compact31)
    target = _cube(16, np.linspace(470, 630, 16), name="imec")
    proxy = stages.restore_target(model, ckpt, target, tiles=TileConfig(tile=16, overlap=4), device="cpu")
    back = stages.restore_target(model, ckpt, target, tiles=TileConfig(tile=16, overlap=4), device="cpu", back=True)
    assert proxy.n_bands == 31 and back.n_bands == 16
    np.testing.assert_allclose(back.wavelengths, target.wavelengths)
    run = RunFolder(tmp_path / "run")
    stored, rgb = stages.proxy_item(run, "imec", target, model, ckpt, tiles=TileConfig(tile=16, overlap=4),
                                    device="cpu")
    np.testing.assert_array_equal(stored.data, proxy.data)  # float32 cubes are stored exactly
    np.testing.assert_array_equal(rgb, io.load_rgb(run.proxy_rgb("imec")))  # what Generate reads
    assert np.abs(rgb - stages.proxy_rgb(proxy)).max() <= 0.5 / 65535 + 1e-7  # 16-bit PNG
    with pytest.raises(InputError, match="31-band"):
        stages.on_model_bands(_cube(16, None), model, ckpt)


def test_band_agnostic_models_take_any_band_count_unresampled(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    folder = save_checkpoint(BandAgnostic(), tmp_path / "agnostic",
                             CheckpointConfig(arch="test_stages:agnostic", task="gaussian", bands=31, wavelengths=WL31))
    model, ckpt = load_checkpoint(folder)  # the checkpoint says 31 bands; the model takes any
    for bands, wl in ((16, np.linspace(470, 630, 16)), (5, None)):
        cube = _cube(bands, wl)
        grid, mapped = stages.on_model_bands(cube, model, ckpt)
        assert grid is cube and not mapped
        out = stages.restore_target(model, ckpt, cube, tiles=TileConfig(tile=16, overlap=4), device="cpu", back=True)
        assert out.n_bands == bands
    config = AdaptConfig(task="gaussian", model=str(folder), device="cpu", guides=0,
                         finetune=FinetuneConfig(mode="proxy-only"))
    stages.preflight(config, [_cube(5, None)], ["proxy", "finetune", "restore"])  # no band problem


def test_preflight_reports_every_problem_at_once_before_writing(compact31: Path, tmp_path: Path) -> None:
    from hiralign.generate.unclip_weights import weights_available

    if weights_available():
        pytest.skip("unCLIP weights are present on this machine")
    config = AdaptConfig(task="gaussian", model=str(compact31), generator="unclip", device="cuda:7")
    targets = [_cube(31, WL31, name="ok"), _cube(16, None, name="nowl")]
    with pytest.raises(PreflightError) as info:
        stages.preflight(config, targets)
    message = str(info.value)
    assert "3 problems" in message
    assert "cuda:7" in message and "generator unclip" in message and "nowl" in message and "31-band" in message
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ModelError)
    wrong_task = AdaptConfig(task="complex", model=str(compact31), device="cpu", guides=0,
                             finetune=FinetuneConfig(mode="proxy-only"))
    with pytest.raises(ModelError, match="restores 'gaussian'"):
        stages.preflight(wrong_task, targets[:1])


def test_adapt_with_an_unavailable_generator_or_device_touches_no_existing_result(compact31: Path,
                                                                                  tmp_path: Path) -> None:
    from hiralign.generate.unclip_weights import weights_available
    from hiralign.pipeline import Adaptation

    if weights_available():
        pytest.skip("unCLIP weights are present on this machine")
    target = io.save(_cube(31, WL31, side=32), tmp_path / "scene.hdr")
    fast = dict(finetune=FinetuneConfig(steps=2, batch_size=2, patch_size=16, mode="proxy-only"), guides=0,
                tiles=TileConfig(tile=32, overlap=8), device="cpu")
    out = tmp_path / "run"
    Adaptation([target], AdaptConfig(task="gaussian", model=str(compact31), **fast), out).run_all()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    for bad in ({"generator": "unclip", "guides": 1, "finetune": FinetuneConfig(steps=2)}, {"device": "cuda:7"}):
        config = AdaptConfig(task="gaussian", model=str(compact31), **{**fast, **bad})
        with pytest.raises(PreflightError):
            Adaptation([target], config, out).run_all()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_the_seam_check_runs_only_where_a_tiled_network_reaches_the_restoration() -> None:
    rng = np.random.default_rng(3)
    clean = gaussian_filter(rng.random((48, 48, 6)), (2, 2, 0)).astype(np.float32)
    target = Cube(clean + 0.02 * rng.standard_normal(clean.shape).astype(np.float32))
    restored = target.with_data(clean)
    tiles = TileConfig(tile=16, overlap=4)
    denoiser_only = AdaptConfig(task="gaussian", tiles=tiles)  # auto: subspace proxies, fuse 1
    assert not denoiser_only.network_in_restoration()
    assert stages.quality_item(target, restored, denoiser_only)["seams"] is None
    for fused in (AdaptConfig(task="gaussian", tiles=tiles, fuse_proxies=0.5),
                  AdaptConfig(task="sensor", tiles=tiles),  # blend: the model's ensemble is in the proxies
                  AdaptConfig(task="deblur", tiles=tiles)):  # model proxies: the network is the restoration
        assert fused.network_in_restoration()
        seams = stages.quality_item(target, restored, fused)["seams"]
        assert seams["tile"] == 16 and seams["overlap"] == 4


def test_a_dark_captures_run_scores_at_its_own_peak_not_at_full_scale() -> None:
    # a uint16 capture reaching 0.4 % of full scale would score ~76 dB at peak 1 for anything near it
    from hiralign.intensity import IntensityScale

    rng = np.random.default_rng(0)
    bright = rng.uniform(0.2, 0.9, (16, 16, 4)).astype(np.float32)
    near = bright + rng.normal(0, 0.02, bright.shape).astype(np.float32)
    dark = 0.004
    clean = Cube(bright * dark, name="clean")
    restored = clean.with_data(near * dark)
    identity = stages.score_item("x", clean, restored, restored, "gaussian")["adapted"]
    scale = stages.RunScale(IntensityScale(values=(dark,), mode="cube", percentile=99.9))
    own = stages.score_item("x", clean, restored.with_data(near), restored, "gaussian", scale=scale)
    expected = stages.score_item("x", Cube(bright, name="clean"), clean.with_data(near), clean.with_data(near),
                                 "gaussian")["adapted"]
    assert identity.psnr > 70 and stages.score_peak(None) == 1.0 and stages.score_peak(scale) == dark
    for label in ("source", "adapted"):  # the proxy is on the normalised scale, the restoration on the file's
        assert own[label].psnr == pytest.approx(expected.psnr, abs=1e-3)
        assert own[label].sam == pytest.approx(identity.sam, abs=1e-3)
