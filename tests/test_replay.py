"""Source replay: the source set rebuilt from provenance and mixed into finetuning."""
import numpy as np
import pytest
import torch

from hiralign.cube import Cube
from hiralign.errors import ConfigError
from hiralign.finetune import FinetuneConfig, aligned_sampler
from hiralign.patches import WeightedCubeSampler
from hiralign.replay import replay_cubes, source_set_config
from hiralign.rgb_spectra import GRIDS

SMALL = {"n": 2, "size": 32, "seed": 3, "illuminant": "D65", "library": "source", "subset": 0.75, "min_zoom": 0.35}


def _pretrained(**extra: object) -> dict:
    return {"kind": "hiralign-pretrained", "source": {"config": {**SMALL, **extra}}}


def _like(wavelengths: np.ndarray, side: int = 16) -> list[Cube]:
    return [Cube(np.zeros((side, side, len(wavelengths)), np.float32), wavelengths=wavelengths, name="p")]


def test_the_source_config_is_found_through_adapted_checkpoints() -> None:
    adapted = {"kind": "hiralign-adapted", "source_provenance": {"kind": "hiralign-adapted",
                                                                "source_provenance": _pretrained()}}
    assert source_set_config(adapted)["seed"] == 3
    assert source_set_config({"kind": "someone else's"}) is None


def test_same_band_count_is_replayed_band_by_band_as_pretraining_made_it() -> None:
    from hiralign.source import SourceConfig, make_source_cubes

    kaist = np.arange(420.0, 721.0, 10.0)  # 31 bands, index-wise on the 400–700 nm model
    replay = replay_cubes(_pretrained(), _like(kaist))
    assert len(replay.cubes) == 2 and "band by band" in replay.note
    expected = make_source_cubes(SourceConfig(**SMALL))
    for got, want in zip(replay.cubes, expected):
        np.testing.assert_array_equal(got.data, want.data)


def test_other_bands_are_resampled_from_the_fine_grid_and_beyond_it_refused() -> None:
    imec = np.linspace(470.0, 630.0, 16)
    replay = replay_cubes(_pretrained(grid="fine"), _like(imec))
    assert [c.n_bands for c in replay.cubes] == [16, 16]
    np.testing.assert_allclose(replay.cubes[0].wavelengths, imec)
    assert np.all(np.isfinite(replay.cubes[0].data)) and replay.cubes[0].data.max() > 0
    nir = np.linspace(600.0, 975.0, 25)
    refused = replay_cubes(_pretrained(grid="fine"), _like(nir))
    assert refused.cubes == () and "beyond" in refused.note and f"{GRIDS['fine'][-1]:.0f}" in refused.note
    assert replay_cubes({}, _like(imec)).cubes == ()
    assert "unusable" in replay_cubes(_pretrained(n=0), _like(imec)).note


def test_replayed_patches_are_drawn_at_their_weight() -> None:
    proxies = [Cube(np.full((24, 24, 4), 0.2, np.float32), name="p")]
    source = [Cube(np.full((40, 40, 4), 0.9, np.float32), name="s")]
    sampler = aligned_sampler(proxies, [], FinetuneConfig(mode="proxy-only", source_replay=1 / 3), source)
    assert isinstance(sampler, WeightedCubeSampler)
    batch = sampler.sample(4000, 8, torch.Generator().manual_seed(0))
    assert abs(float((batch[:, 0, 0, 0] > 0.5).float().mean()) - 0.25) < 0.03
    off = aligned_sampler(proxies, [], FinetuneConfig(mode="proxy-only", source_replay=0), source)
    assert float(off.sample(64, 8, torch.Generator().manual_seed(0)).max()) == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="source_replay"):
        FinetuneConfig(source_replay=-1)


def test_auto_replays_with_classical_proxies_only() -> None:
    from hiralign.config import AdaptConfig
    from hiralign.finetune import AUTO_REPLAY

    assert AdaptConfig(task="gaussian").replay_weight() == AUTO_REPLAY  # subspace proxies
    assert AdaptConfig(task="sr4").replay_weight(4) == 0.0  # the network restores the targets
    explicit = AdaptConfig(task="gaussian", finetune=FinetuneConfig(source_replay=0))
    assert explicit.replay_weight() == 0.0


def test_an_adapted_checkpoint_records_what_it_replayed(tmp_path) -> None:
    from scipy.ndimage import gaussian_filter

    from hiralign import io
    from hiralign.config import AdaptConfig
    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, read_provenance, save_checkpoint
    from hiralign.pipeline import Adaptation
    from hiralign.proxy import TileConfig

    wavelengths = np.linspace(450, 660, 8)
    torch.manual_seed(0)
    save_checkpoint(build_model("compact", bands=8, features=8, depth=2), tmp_path / "source",
                    CheckpointConfig(arch="compact", task="gaussian", bands=8, wavelengths=wavelengths,
                                     args={"features": 8, "depth": 2}), _pretrained(grid="fine"))
    rng = np.random.default_rng(0)
    scene = gaussian_filter(rng.random((40, 40, 8)), (2, 2, 1)).astype(np.float32)
    target = io.save(Cube(scene + 0.03 * rng.standard_normal(scene.shape).astype(np.float32),
                          wavelengths=wavelengths, name="t"), tmp_path / "t.hdr")
    for weight, cubes in ((None, 2), (0.0, 0)):
        config = AdaptConfig(task="gaussian", model=str(tmp_path / "source"), guides=0, device="cpu",
                             tiles=TileConfig(tile=32, overlap=8),
                             finetune=FinetuneConfig(steps=3, batch_size=2, patch_size=24, mode="proxy-only",
                                                     source_replay=weight))
        out = tmp_path / f"run{weight}"
        Adaptation([target], config, out).run_all()
        record = read_provenance(out / "checkpoint")["source_replay"]
        assert record["cubes"] == cubes and record["weight"] == (0.33 if weight is None else 0.0)
