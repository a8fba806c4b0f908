"""The one training loop: steps, sampling, resume, cancel, validation; and pretraining."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.models.compact import CompactRestorer
from hiralign.patches import CubeSampler, WeightedCubeSampler, augment
from hiralign.progress import CallbackProgress, Cancelled, CancelToken
from hiralign.train import TrainConfig, make_validation_set, train

pytestmark = pytest.mark.usefixtures("one_thread")


def _cubes(n=3, size=24, bands=5, seed=0):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        data = gaussian_filter(rng.random((size, size, bands)), sigma=(2, 2, 1)).astype(np.float32)
        out.append(Cube(data=(data - data.min()) / np.ptp(data), name=f"c{i}"))
    return out


def _model(bands=5, scale=1):
    torch.manual_seed(0)
    return CompactRestorer(bands, scale=scale, features=8, depth=3)


def _config(**kw):
    return TrainConfig(**{"task": "gaussian", "steps": 6, "batch_size": 3, "patch_size": 16, "state_every": 2, **kw})


def test_a_few_steps_record_losses_and_validation(device):
    cubes = _cubes()
    previews = []
    progress = CallbackProgress(on_preview=lambda k, v: previews.append((k, v)))
    result = train(_model(), CubeSampler(cubes), _config(validate_every=3, log_every=2), progress,
                   validation=make_validation_set(cubes[:1], "gaussian", size=16), device=device)
    assert result.steps == 6 and len(result.losses) == 6 and all(np.isfinite(result.losses))
    assert [s for s, _ in result.validation] == [3, 6] and result.final_psnr > 10
    assert [v["step"] for k, v in previews if k == "loss"] == [2, 4, 6]
    assert any(k == "validation" for k, _ in previews)
    assert result.wall_s > 0 and result.seconds_per_step * 6 == pytest.approx(result.wall_s, rel=0.2)
    assert json.dumps(result.to_dict())


def test_training_lowers_the_loss():
    # Grey spectra (all bands equal): averaging the noisy bands is quickly learnt.
    cubes = [Cube(np.repeat(c.data[..., :1], 5, axis=2)) for c in _cubes(size=32)]
    result = train(_model(), CubeSampler(cubes), _config(steps=80, batch_size=4, lr=3e-2), device="cpu")
    assert np.mean(result.losses[-10:]) < 0.7 * np.mean(result.losses[:10])


def test_super_resolution_trains_low_to_high_resolution():
    cubes = _cubes(size=32)
    validation = make_validation_set(cubes[:1], "sr4", size=30)
    assert validation.degraded.shape[-1] * 4 == validation.clean.shape[-1] == 28
    result = train(_model(scale=4), CubeSampler(cubes), _config(task="sr4", steps=3), validation=validation,
                   device="cpu")
    assert result.steps == 3 and result.final_psnr > 5


def _cancel_at(step):
    token = CancelToken()
    return CallbackProgress(on_report=lambda done, total, msg: token.cancel() if done >= step else None,
                            token=token)


def test_cancel_saves_a_consistent_state_and_resume_continues_exactly(tmp_path):
    cubes = _cubes()
    straight = _model()
    full = train(straight, CubeSampler(cubes), _config(), device="cpu")

    state = tmp_path / "state.pt"
    model = _model()
    with pytest.raises(Cancelled):
        train(model, CubeSampler(cubes), _config(), _cancel_at(3), state_path=state, device="cpu")
    saved = torch.load(state, weights_only=True)
    assert saved["step"] == 3 and len(saved["losses"]) == 3
    assert all(torch.equal(saved["model"][k], v) for k, v in model.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # nothing half-written

    resumed_model = _model()
    resumed = train(resumed_model, CubeSampler(cubes), _config(), state_path=state, resume=True, device="cpu")
    assert resumed.resumed_from == 3 and resumed.steps == 6
    assert np.allclose(resumed.losses, full.losses, rtol=1e-5)
    for key, value in straight.state_dict().items():
        assert torch.allclose(resumed_model.state_dict()[key], value, atol=1e-6), key


def test_resuming_a_finished_run_does_nothing_more(tmp_path):
    state = tmp_path / "state.pt"
    train(_model(), CubeSampler(_cubes()), _config(steps=2), state_path=state, device="cpu")
    again = train(_model(), CubeSampler(_cubes()), _config(steps=2), state_path=state, resume=True, device="cpu")
    assert again.steps == 2 and again.resumed_from == 2 and len(again.losses) == 2


def test_resume_refuses_changed_settings_and_damaged_states(tmp_path):
    state = tmp_path / "state.pt"
    with pytest.raises(Cancelled):
        train(_model(), CubeSampler(_cubes()), _config(), _cancel_at(2), state_path=state, device="cpu")
    with pytest.raises(ConfigError, match="lr"):
        train(_model(), CubeSampler(_cubes()), _config(lr=0.5), state_path=state, resume=True, device="cpu")
    state.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="cannot read the training state"):
        train(_model(), CubeSampler(_cubes()), _config(), state_path=state, resume=True, device="cpu")


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError):
        _config(task="nonsense")
    with pytest.raises(ConfigError, match="multiple of 4"):
        _config(task="sr4", patch_size=18)
    with pytest.raises(ConfigError, match="loss"):
        _config(loss="huber")
    with pytest.raises(ConfigError, match="larger than the smallest"):
        train(_model(), CubeSampler(_cubes(size=12)), _config(), device="cpu")


def test_weighted_sampler_mixes_groups_at_the_given_ratio():
    zeros = [np.zeros((20, 20, 2), np.float32)]
    ones = [np.ones((20, 20, 2), np.float32)]
    sampler = WeightedCubeSampler([(ones, 3.0), (zeros, 1.0), (ones, 0.0)])
    batch = sampler.sample(4000, 8, torch.Generator().manual_seed(0))
    assert batch.shape == (4000, 2, 8, 8)
    assert batch[:, 0, 0, 0].mean().item() == pytest.approx(0.75, abs=0.03)
    assert len(sampler.samplers) == 2 and sampler.min_side == 20
    with pytest.raises(ConfigError):
        WeightedCubeSampler([(ones, 0.0)])
    with pytest.raises(InputError, match="band counts"):
        WeightedCubeSampler([(ones, 1.0), ([np.zeros((20, 20, 3), np.float32)], 1.0)])


def test_cube_sampler_crops_come_from_the_cubes_and_are_reproducible():
    cube = np.arange(30 * 30 * 2, dtype=np.float32).reshape(30, 30, 2)
    sampler = CubeSampler([cube])
    a = sampler.sample(5, 7, torch.Generator().manual_seed(3))
    b = sampler.sample(5, 7, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    full = torch.from_numpy(cube.transpose(2, 0, 1))
    for patch in a:
        top, left = divmod(int(patch[0, 0, 0]) // 2, 30)
        assert torch.equal(patch, full[:, top:top + 7, left:left + 7])
    with pytest.raises(InputError):
        CubeSampler([])


def test_augment_applies_one_of_the_eight_square_symmetries_per_patch():
    batch = torch.rand(32, 2, 5, 5)
    out = augment(batch, torch.Generator().manual_seed(0))
    variants = lambda p: [torch.rot90(q, k, dims=(-2, -1)) for q in (p, p.flip(-1)) for k in range(4)]  # noqa: E731
    seen = set()
    for src, dst in zip(batch, out):
        matches = [i for i, v in enumerate(variants(src)) if torch.equal(v, dst)]
        assert matches
        seen.add(matches[0])
    assert len(seen) > 4


@pytest.mark.slow
def test_pretrain_command_writes_a_checkpoint_and_resumes(tmp_path):
    from hiralign.cli import main
    from hiralign.models.checkpoint import load_checkpoint, read_provenance
    from hiralign.source import SourceConfig, make_source_set

    source = make_source_set(tmp_path / "source", SourceConfig(n=3, size=32))
    out = tmp_path / "model"
    args = ["pretrain", "--task", "gaussian", "--source", str(source), "--out", str(out), "--steps", "2",
            "--batch-size", "2", "--patch-size", "16", "--val-cubes", "1", "--device", "cpu",
            "--arch-args", '{"features": 8, "depth": 3}']
    assert main(args) == 0
    model, config = load_checkpoint(out)
    prov = read_provenance(out)
    assert config.task == "gaussian" and config.bands == 31 and config.args == {"features": 8, "depth": 3}
    assert prov["result"]["steps"] == 2 and prov["projector"]["rank"] == 4
    assert prov["source"]["train_cubes"] == ["source_000", "source_001"]
    assert not (tmp_path / ".model.train_state.pt").exists()
    assert main(args[:-2] + ["--arch-args", "[1]"]) == 2
    assert main(["pretrain", "--task", "gaussian", "--source", str(tmp_path / "nothing"), "--out", str(out)]) == 2


@pytest.mark.slow
def test_pretrain_continues_from_a_checkpoint_and_refuses_one_that_does_not_fit(tmp_path, capsys):
    from hiralign.cli import main
    from hiralign.models.checkpoint import load_checkpoint, read_provenance
    from hiralign.source import SourceConfig, make_source_set

    source = make_source_set(tmp_path / "source", SourceConfig(n=3, size=32))
    common = ["--source", str(source), "--steps", "2", "--batch-size", "2", "--patch-size", "16",
              "--val-cubes", "1", "--device", "cpu"]
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["pretrain", "--task", "gaussian", "--out", str(first), *common,
                 "--arch-args", '{"features": 8, "depth": 3}']) == 0
    start, _ = load_checkpoint(first)
    assert main(["pretrain", "--task", "gaussian", "--out", str(second), *common, "--init", str(first),
                 "--lr", "1e-4"]) == 0
    continued, config = load_checkpoint(second)
    assert config.args == {"features": 8, "depth": 3}  # the architecture came from --init
    # Adam moves a weight by at most about lr per step: 2 steps of 1e-4 stay near the start,
    # where a fresh network (its own initialisation and projector) would be far off.
    moved = max(float((value - continued.state_dict()[key]).abs().max()) for key, value in start.state_dict().items())
    assert 0 < moved < 5e-4
    prov = read_provenance(second)
    assert prov["projector"] is None and prov["init"]["steps"] == 2
    assert prov["init"]["provenance"]["projector"]["rank"] == 4
    capsys.readouterr()
    # another task of the same scale is a warm start, recorded as such
    assert main(["pretrain", "--task", "inpaint", "--out", str(tmp_path / "warm"), *common, "--init", str(first)]) == 0
    assert load_checkpoint(tmp_path / "warm")[1].task == "inpaint"
    assert read_provenance(tmp_path / "warm")["init"]["task"] == "gaussian"
    capsys.readouterr()
    assert main(["pretrain", "--task", "sr4", "--out", str(tmp_path / "third"), *common,
                 "--init", str(first)]) == 2
    err = capsys.readouterr().err
    assert "cannot continue from" in err and "trained for gaussian (×1), which does not up-scale as sr4 (×4)" in err
    assert not (tmp_path / "third").exists()


def _sensor_noise(bands=5, a=2e-3, b=4e-4):
    from hiralign.noise import NoiseModel

    return NoiseModel(sigma=(b ** 0.5,) * bands, a=(a,) * bands, b=(b,) * bands, mean=(0.5,) * bands,
                      scale=(1.0,) * bands, units="normalised")


def test_sensor_task_trains_on_the_given_noise_model_and_records_it(tmp_path):
    cubes = _cubes()
    noise = _sensor_noise()
    config = _config(task="sensor", noise=noise.to_dict())  # a dict from a run's noise.json is accepted
    assert config.noise == noise
    recorded = json.loads(json.dumps(config.to_dict()))
    assert recorded["noise"]["a"] == list(noise.a) and TrainConfig(**recorded) == config
    validation = make_validation_set(cubes[:1], "sensor", size=16, noise=noise)
    residual = (validation.degraded - validation.clean).double()
    expected = float((noise.a[0] * validation.clean.double() + noise.b[0]).mean())
    assert float(residual.var()) == pytest.approx(expected, rel=0.15)
    state = tmp_path / "state.pt"
    result = train(_model(), CubeSampler(cubes), config, validation=validation, state_path=state, device="cpu")
    assert result.steps == 6 and all(np.isfinite(result.losses))
    # Another noise model is another run: resuming with it is refused.
    with pytest.raises(ConfigError, match="noise"):
        train(_model(), CubeSampler(cubes), _config(task="sensor", noise=_sensor_noise(b=1e-3), steps=8),
              state_path=state, resume=True, device="cpu")
    # Without a model (source pretraining) the sensor task draws random parameters.
    assert train(_model(), CubeSampler(cubes), _config(task="sensor", steps=2), device="cpu").steps == 2


def test_a_noise_model_for_another_task_or_band_count_is_refused():
    with pytest.raises(ConfigError, match="only used by the sensor task"):
        _config(task="gaussian", noise=_sensor_noise())
    with pytest.raises(InputError, match="3 bands but the data has 5"):
        train(_model(), CubeSampler(_cubes()), _config(task="sensor", noise=_sensor_noise(bands=3)), device="cpu")
