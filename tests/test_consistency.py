"""Data consistency (sr4, bandmiss, inpaint): the projections themselves, and what a run and its recipe do with them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from hiralign import io
from hiralign.config import AdaptConfig
from hiralign.consistency import consistent_cube, project_onto_observation
from hiralign.cube import Cube
from hiralign.degrade import degrade
from hiralign.ensemble import ProxyConfig
from hiralign.errors import ConfigError, InputError
from hiralign.finetune import FinetuneConfig
from hiralign.models import build_model
from hiralign.models.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from hiralign.pipeline import Adaptation
from hiralign.proxy import TileConfig
from hiralign.restoration import CaptureRestorer, Recipe, restore_capture
from hiralign.runfolder import RunFolder

BANDS = 4


def _shrink(data: np.ndarray) -> np.ndarray:
    """sr4's own degradation of an (H, W, B) array."""
    return degrade(torch.from_numpy(np.ascontiguousarray(data)).permute(2, 0, 1), "sr4", 0).permute(1, 2, 0).numpy()


def _scene(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = gaussian_filter(rng.random((height, width, BANDS)), sigma=(1.5, 1.5, 0.5))
    return (0.2 + 0.6 * (data - data.min()) / (data.max() - data.min())).astype(np.float32)


def test_the_projection_down_samples_exactly_to_the_observation_and_comes_closer_to_the_scene() -> None:
    scene = _scene(48, 36, 0)  # not square: rows and columns have their own operators
    observed = _shrink(scene)
    guess = scene + 0.05 * np.random.default_rng(1).standard_normal(scene.shape).astype(np.float32)
    projected = project_onto_observation(guess, observed, "sr4")
    assert projected.shape == scene.shape and projected.dtype == np.float32
    assert np.abs(_shrink(projected) - observed).max() < 1e-5
    # the scene lies in the set projected onto, so the projection is never farther from it
    assert np.linalg.norm(projected - scene) < np.linalg.norm(guess - scene)
    assert np.abs(project_onto_observation(projected, observed, "sr4") - projected).max() < 1e-5  # idempotent
    # what the down-sampling cannot see is left alone: a consistent cube does not move
    assert np.abs(project_onto_observation(scene, observed, "sr4") - scene).max() < 1e-5


@pytest.mark.parametrize("task", ["bandmiss", "inpaint"])
def test_a_masking_task_keeps_every_observed_value_and_restores_only_the_missing_ones(task: str) -> None:
    scene = _scene(24, 20, 5)
    observed = degrade(torch.from_numpy(scene).permute(2, 0, 1)[None], task, 3)[0].permute(1, 2, 0).numpy()
    missing = observed == 0
    assert missing.any() and (~missing).any()
    guess = scene + 0.05 * np.random.default_rng(2).standard_normal(scene.shape).astype(np.float32)
    projected = project_onto_observation(guess, observed, task)
    assert projected.dtype == np.float32
    np.testing.assert_array_equal(projected[~missing], observed[~missing])  # observed: exactly as observed
    np.testing.assert_array_equal(projected[missing], guess[missing])  # missing: the restoration's
    assert np.linalg.norm(projected - scene) < np.linalg.norm(guess - scene)
    if task == "bandmiss":  # a whole band is missing or observed, even where an observed value is 0
        band_zero = observed.copy()
        band_zero[0, 0, ~missing.all(axis=(0, 1))] = 0.0
        kept = project_onto_observation(guess, band_zero, task)
        assert np.all(kept[0, 0, ~missing.all(axis=(0, 1))] == 0.0)
    with pytest.raises(InputError, match=rf"{task} observation is 24×20×4, but the restoration is 24×20×3"):
        project_onto_observation(guess[..., :3], observed, task)


def test_tasks_without_a_noise_free_down_sampling_are_left_unchanged() -> None:
    cube = Cube(_scene(16, 16, 2), name="noisy")
    for task in ("gaussian", "complex", "deblur", "sensor"):
        assert consistent_cube(cube, cube, task) is cube


def test_a_mismatched_observation_is_refused_with_both_shapes() -> None:
    with pytest.raises(InputError, match=r"observation is 10×10×4.*down-samples to 12×12×4"):
        project_onto_observation(_scene(48, 48, 0), np.zeros((10, 10, BANDS), np.float32), "sr4")


def test_the_setting_is_a_boolean_recorded_with_the_run() -> None:
    assert AdaptConfig(task="sr4").consistency is True
    off = AdaptConfig(task="sr4", consistency=False)
    assert AdaptConfig.from_dict(off.to_dict()) == off
    with pytest.raises(ConfigError, match="consistency must be true or false"):
        AdaptConfig(task="sr4", consistency="yes")


def test_recipes_recorded_before_the_setting_restore_as_they_did() -> None:
    settings = AdaptConfig(task="sr4").to_dict()
    assert Recipe.from_provenance({"kind": "hiralign-adapted", "settings": settings}, "sr4", 4).consistency
    assert "projected onto" in Recipe.from_provenance({"kind": "hiralign-adapted", "settings": settings},
                                                       "sr4", 4).describe()
    del settings["consistency"]
    old = Recipe.from_provenance({"kind": "hiralign-adapted", "settings": settings}, "sr4", 4)
    assert not old.consistency and "projected" not in old.describe()


def test_masking_runs_recorded_before_those_tasks_had_consistency_restore_as_they_did() -> None:
    from hiralign.stages import adapted_provenance

    settings = AdaptConfig(task="bandmiss").to_dict()
    before = Recipe.from_provenance({"kind": "hiralign-adapted", "settings": settings}, "bandmiss")
    assert not before.consistency and not before.projects  # then only sr4 was projected
    assert Recipe.from_provenance({"kind": "hiralign-adapted", "settings": AdaptConfig(task="sr4").to_dict()},
                                  "sr4", 4).consistency
    record = adapted_provenance(AdaptConfig(task="bandmiss", model="resources/models/gaussian"), [])
    assert record["projected_onto_observation"] is True
    now = Recipe.from_provenance({**record, "settings": settings}, "bandmiss")
    assert now.projects and now.proxy.source == "interpolate" and "completion of the observed" in now.describe()
    # recorded before auto took interpolate: the network, its ensemble's labels, projected
    del record["proxy_source"]
    earlier = Recipe.from_provenance({**record, "settings": settings}, "bandmiss")
    assert earlier.proxy.source == "ensemble" and earlier.fuse == 0 and "observed bands kept" in earlier.describe()
    off = adapted_provenance(AdaptConfig(task="inpaint", model="resources/models/gaussian", consistency=False), [])
    assert off["projected_onto_observation"] is False
    assert not adapted_provenance(AdaptConfig(task="gaussian", model="resources/models/gaussian"),
                                  [])["projected_onto_observation"]


def test_a_run_recorded_before_a_setting_existed_still_resumes(tmp_path: Path) -> None:
    record = {"targets": ["a.hdr"], "settings": AdaptConfig(task="sr4").to_dict()}
    older = json.loads(json.dumps(record))
    del older["settings"]["consistency"]
    folder = RunFolder(tmp_path / "run")
    folder.claim(older)
    folder.release()
    again = RunFolder(tmp_path / "run")
    assert again.claim(record)  # resumed, not "a run with other settings"
    again.release()
    changed = json.loads(json.dumps(record))
    changed["settings"]["consistency"] = False
    older["settings"]["consistency"] = True
    RunFolder(tmp_path / "other").claim(older)
    with pytest.raises(ConfigError, match="other settings"):  # a setting both record and differ in still counts
        RunFolder(tmp_path / "other").claim(changed)


@pytest.fixture(scope="module")
def sr4_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("sr4")
    torch.manual_seed(0)
    model = build_model("compact", bands=BANDS, scale=4, features=8, depth=2)
    source = save_checkpoint(model, root / "source", CheckpointConfig(
        arch="compact", task="sr4", bands=BANDS, scale=4, wavelengths=np.linspace(450, 700, BANDS),
        args={"features": 8, "depth": 2}), {"kind": "test"})
    targets = []
    for seed in (1, 2):
        low = _shrink(_scene(48, 48, seed))
        targets.append(io.save(Cube(low, wavelengths=np.linspace(450, 700, BANDS), name=f"low{seed}"),
                               root / f"low{seed}.hdr"))
    return {"root": root, "source": source, "targets": targets}


def _adapt(sr4_run: dict, out: Path, consistency: bool) -> Path:
    config = AdaptConfig(task="sr4", model=str(sr4_run["source"]), guides=0, consistency=consistency,
                         finetune=FinetuneConfig(steps=3, batch_size=2, patch_size=24, mode="proxy-only"),
                         tiles=TileConfig(tile=32, overlap=8), restore_transforms=2, device="cpu")
    Adaptation(sr4_run["targets"], config, out).run_all()
    return out


def test_an_sr4_run_projects_its_proxies_and_restorations_and_its_recipe_does_the_same(sr4_run: dict,
                                                                                       tmp_path: Path) -> None:
    on = _adapt(sr4_run, tmp_path / "on", True)
    off = _adapt(sr4_run, tmp_path / "off", False)
    model, ckpt = load_checkpoint(on / "checkpoint")
    restorer = CaptureRestorer.build(model, ckpt, Recipe.from_checkpoint(on / "checkpoint", ckpt),
                                     tiles=TileConfig(tile=32, overlap=8))
    assert json.loads((on / "report.json").read_text())["intensity"]["mode"] == "none"
    assert json.loads((on / "report.json").read_text())["projected_onto_observation"]
    assert not json.loads((off / "report.json").read_text())["projected_onto_observation"]
    for path in sr4_run["targets"]:
        target = io.load(path)
        name = path.stem
        for run, projected in ((on, True), (off, False)):
            restored = io.load(run / "restored" / f"{name}.hdr").data
            proxy = io.load(run / "proxies" / f"{name}.hdr").data  # the targets fill [0, 1]: no intensity scale
            for cube in (restored, proxy):
                miss = np.abs(_shrink(cube) - target.data).max()
                assert (miss < 1e-4) if projected else (miss > 1e-2), (run, miss)
        again = restorer(target)  # hiralign restore with the run's recorded recipe
        assert np.abs(again.data - io.load(on / "restored" / f"{name}.hdr").data).max() < 1e-5


def test_hiralign_restore_can_turn_the_projection_off_for_new_captures(sr4_run: dict, tmp_path: Path) -> None:
    from hiralign.cli import build_parser
    from hiralign.restoration import restore_files

    assert build_parser().parse_args(["restore", "x.hdr", "--model", "m", "--out", "o"]).consistency is None
    assert build_parser().parse_args(["restore", "x.hdr", "--model", "m", "--out", "o",
                                      "--no-consistency"]).consistency is False
    run = _adapt(sr4_run, tmp_path / "run", True)
    target = io.load(sr4_run["targets"][0])
    as_recorded = restore_files(run / "checkpoint", sr4_run["targets"][:1], tmp_path / "as-recorded")
    kept = restore_files(run / "checkpoint", sr4_run["targets"][:1], tmp_path / "kept", consistency=False)
    assert as_recorded["recipe"]["consistency"] and not kept["recipe"]["consistency"]
    for folder, projected in ((tmp_path / "as-recorded", True), (tmp_path / "kept", False)):
        miss = np.abs(_shrink(io.load(folder / "low1.hdr").data) - target.data).max()
        assert (miss < 1e-4) if projected else (miss > 1e-2)


def test_a_capture_on_other_bands_than_the_model_is_consistent_with_itself_not_with_the_model_grid(
        sr4_run: dict) -> None:
    # a fixed-band model resamples the capture onto its bands and the result back: the projection
    # must hold against the capture the user has (a projection on the model grid does not survive the way back)
    model, ckpt = load_checkpoint(sr4_run["source"])
    wavelengths = np.linspace(470, 690, 6)
    low = _shrink(np.concatenate([_scene(48, 48, 3), _scene(48, 48, 4)[..., :2]], axis=2))
    capture = Cube(low, wavelengths=wavelengths, name="other-bands")
    recipe = Recipe(task="sr4", proxy=ProxyConfig(source="model"), consistency=True)
    from hiralign.stages import on_model_bands

    assert on_model_bands(capture, model, ckpt)[1]  # resampled onto the model's 4 bands and back
    restored = restore_capture(model, ckpt, capture, recipe, tiles=TileConfig(tile=32, overlap=8))
    assert restored.shape == (48, 48, 6)
    assert np.abs(_shrink(restored.data) - capture.data).max() < 1e-4


def test_a_masking_task_is_kept_on_the_captures_own_bands_never_on_a_resampled_grid(tmp_path: Path) -> None:
    # interpolating bands mixes a zero (missing) band with observed ones: nothing is exact on the model's grid
    from hiralign.stages import on_model_bands, restore_target

    torch.manual_seed(0)
    model = build_model("compact", bands=BANDS, scale=1, features=8, depth=2)
    ckpt = CheckpointConfig(arch="compact", task="bandmiss", bands=BANDS, scale=1,
                            wavelengths=np.linspace(450, 700, BANDS), args={"features": 8, "depth": 2})
    data = np.concatenate([_scene(32, 32, 6), _scene(32, 32, 7)[..., :2]], axis=2)
    data[..., [1, 4]] = 0.0  # two missing bands
    capture = Cube(data, wavelengths=np.linspace(470, 690, 6), name="six-bands")
    assert on_model_bands(capture, model, ckpt)[1]
    tiles = TileConfig(tile=32, overlap=8)
    back = restore_target(model, ckpt, capture, tiles=tiles, device="cpu", back=True, consistent=True)
    observed = [0, 2, 3, 5]
    np.testing.assert_array_equal(back.data[..., observed], data[..., observed])
    assert np.abs(back.data[..., [1, 4]]).max() > 0  # the missing bands are the network's
    raw = restore_target(model, ckpt, capture, tiles=tiles, device="cpu", consistent=False)
    grid = restore_target(model, ckpt, capture, tiles=tiles, device="cpu", consistent=True)
    np.testing.assert_array_equal(grid.data, raw.data)  # a proxy on the model's grid is left as the network made it


def test_hiralign_proxy_projects_as_adapts_stage_one_does(sr4_run: dict, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    from hiralign.cli import main

    target = io.load(sr4_run["targets"][0])
    for flag, projected in (([], True), (["--no-consistency"], False)):
        out = tmp_path / ("on" if projected else "off")
        assert main(["proxy", str(sr4_run["targets"][0]), "--model", str(sr4_run["source"]), "--out", str(out),
                     "--tile", "32", "--overlap", "8", *flag]) == 0
        assert json.loads(capsys.readouterr().out)["proxies"][0]["projected_onto_observation"] is projected
        miss = np.abs(_shrink(io.load(out / "low1.hdr").data) - target.data).max()
        assert (miss < 1e-4) if projected else (miss > 1e-2)


def test_a_source_model_restores_and_scores_as_hiralign_proxy_makes_its_proxies(sr4_run: dict, tmp_path: Path,
                                                                                 capsys: pytest.CaptureFixture) -> None:
    # one source model, three commands: restore and evaluate must not hand back the unprojected network
    from hiralign.cli import main

    source, path = str(sr4_run["source"]), str(sr4_run["targets"][0])
    tiles = ["--tile", "32", "--overlap", "8"]
    assert main(["proxy", path, "--model", source, "--out", str(tmp_path / "proxy"), *tiles]) == 0
    capsys.readouterr()
    assert main(["restore", path, "--model", source, "--out", str(tmp_path / "restore"), *tiles]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recipe"]["consistency"] and not report["recipe"]["adapted"]
    assert "projected onto the cubes that down-sample exactly" in report["recipe"]["is"]
    np.testing.assert_allclose(io.load(tmp_path / "restore" / "low1.hdr").data,
                               io.load(tmp_path / "proxy" / "low1.hdr").data, atol=1e-6)
    assert main(["restore", path, "--model", source, "--out", str(tmp_path / "raw"), "--no-consistency", *tiles]) == 0
    assert not json.loads(capsys.readouterr().out)["recipe"]["consistency"]

    clean = io.save(Cube(_scene(48, 48, 5), wavelengths=np.linspace(450, 700, BANDS), name="clean"),
                    tmp_path / "clean.hdr")
    scores = {}
    for flag in ([], ["--network-only"]):
        assert main(["evaluate", "--clean", str(clean), "--task", "sr4", "--model", source, *tiles, *flag]) == 0
        (row,) = json.loads(capsys.readouterr().out)["models"]
        scores[bool(flag)] = row
    from hiralign.evaluate import score_cube

    model, ckpt = load_checkpoint(sr4_run["source"])
    observed = Cube(_shrink(_scene(48, 48, 5)), wavelengths=np.linspace(450, 700, BANDS))
    projected = restore_capture(model, ckpt, observed, Recipe.network_only("sr4", consistency=True),
                                tiles=TileConfig(tile=32, overlap=8))
    assert "(recipe)" in scores[False]["label"] and "(recipe)" not in scores[True]["label"]
    assert scores[False]["mean"]["psnr"] == pytest.approx(score_cube(projected, io.load(clean)).psnr, abs=1e-3)
    assert scores[False]["mean"]["psnr"] > scores[True]["mean"]["psnr"]  # the projection brings it closer
