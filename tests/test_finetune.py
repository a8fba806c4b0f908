import numpy as np
import pytest
import torch

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.finetune import FinetuneConfig, aligned_sampler, finetune
from hiralign.models import build_model
from hiralign.patches import CubeSampler, WeightedCubeSampler


def _cubes(n: int, value: float, side: int = 24) -> list[Cube]:
    return [Cube(np.full((side, side, 6), value, np.float32), name=f"c{value}{i}") for i in range(n)]


def test_sampler_mixes_synthesized_and_proxies_at_ratio_r() -> None:
    proxies, synth = _cubes(2, 0.2), _cubes(6, 0.8)
    sampler = aligned_sampler(proxies, synth, FinetuneConfig(ratio=3.0))
    assert isinstance(sampler, WeightedCubeSampler)
    batch = sampler.sample(4000, 8, torch.Generator().manual_seed(0))
    share_synth = float((batch[:, 0, 0, 0] > 0.5).float().mean())
    assert abs(share_synth - 0.75) < 0.03


@pytest.mark.parametrize("mode,expected", [("proxy-only", 0.2), ("generated-only", 0.8)])
def test_ablation_modes_use_one_group(mode: str, expected: float) -> None:
    sampler = aligned_sampler(_cubes(2, 0.2), _cubes(2, 0.8), FinetuneConfig(mode=mode))
    assert isinstance(sampler, CubeSampler)
    assert torch.allclose(sampler.sample(8, 8, torch.Generator().manual_seed(0)), torch.tensor(expected))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="mode"):
        FinetuneConfig(mode="magic")
    with pytest.raises(ConfigError, match="ratio"):
        FinetuneConfig(ratio=-1)
    with pytest.raises(InputError, match="synthesized"):
        aligned_sampler(_cubes(1, 0.2), [], FinetuneConfig())


def test_finetune_lowers_the_loss_on_aligned_pairs(small_cube: Cube) -> None:
    torch.manual_seed(0)
    model = build_model("compact", bands=31, features=16, depth=3)
    flipped = small_cube.with_data(small_cube.data[:, ::-1].copy())
    config = FinetuneConfig(steps=30, batch_size=4, patch_size=32, lr=2e-3)
    result = finetune(model, "gaussian", [small_cube], [flipped], config, device="cpu")
    assert result.steps == 30 and len(result.losses) == 30
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
