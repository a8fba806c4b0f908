"""End-to-end `adapt` runs on tiny cubes through the real stages."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from hiralign import io
from hiralign.cli import main
from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError, ModelError
from hiralign.finetune import FinetuneConfig
from hiralign.models import build_model
from hiralign.models.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from hiralign.pipeline import Adaptation, AdaptConfig
from hiralign.progress import CallbackProgress, Cancelled
from hiralign.proxy import TileConfig

BANDS = 8
WL = np.linspace(450, 660, BANDS)


def _scene(seed: int, side: int = 40) -> Cube:
    rng = np.random.default_rng(seed)
    data = gaussian_filter(rng.random((side, side, BANDS)), sigma=(2, 2, 1.5))
    data = (data - data.min()) / (data.max() - data.min())
    return Cube(data.astype(np.float32), wavelengths=WL, name=f"scene{seed}")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("adapt")
    torch.manual_seed(0)
    model = build_model("compact", bands=BANDS, features=8, depth=2)
    ckpt = root / "source"
    save_checkpoint(model, ckpt, CheckpointConfig(arch="compact", task="gaussian", bands=BANDS, wavelengths=WL,
                                                  args={"features": 8, "depth": 2}), {"kind": "test"})
    targets, clean = [], []
    for seed in (1, 2):
        scene = _scene(seed)
        clean.append(io.save(scene, root / f"clean{seed}.hdr"))
        observed = scene.with_data(np.clip(scene.data + 0.05 * np.random.default_rng(seed).standard_normal(
            scene.data.shape), 0, 1).astype(np.float32))
        targets.append(io.save(observed, root / f"target{seed}.hdr"))
    return {"root": root, "ckpt": ckpt, "targets": targets, "clean": clean}


def _config(tiny_run: dict, **kw) -> AdaptConfig:
    finetune = FinetuneConfig(steps=kw.pop("steps", 6), batch_size=2, patch_size=24, mode=kw.pop("mode", "hiralign"))
    return AdaptConfig(task="gaussian", model=str(tiny_run["ckpt"]), finetune=finetune,
                       tiles=TileConfig(tile=32, overlap=8), device="cpu", **kw)


def test_proxy_only_run_writes_the_layout_and_resumes(tiny_run: dict, tmp_path: Path) -> None:
    config = _config(tiny_run, mode="proxy-only", guides=0)
    out = tmp_path / "run"
    report = Adaptation(tiny_run["targets"], config, out, clean=tiny_run["clean"]).run_all()
    for name in ("target1", "target2"):
        assert (out / "proxies" / f"{name}.hdr").is_file() and (out / "proxies" / f"{name}_rgb.png").is_file()
        assert io.load(out / "restored" / f"{name}.hdr").shape == (40, 40, BANDS)
    model, ckpt = load_checkpoint(out / "checkpoint")
    assert ckpt.task == "gaussian" and ckpt.bands == BANDS
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["metrics"]["mean"]) == {"source", "adapted"} and saved["timings_s"]["finetune"] >= 0
    assert np.isfinite(report["metrics"]["mean"]["adapted"]["psnr"])
    assert "proxies" in saved["metrics"]["rows"]["source"] and "restored/" in saved["metrics"]["rows"]["adapted"]
    stamp = (out / "restored" / "target1.img").stat().st_mtime_ns
    again = Adaptation(tiny_run["targets"], config, out, clean=tiny_run["clean"]).run_all()
    assert again["resumed"] and (out / "restored" / "target1.img").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="other settings"):
        Adaptation(tiny_run["targets"], _config(tiny_run, mode="proxy-only", guides=0, seed=5), out).run_all()


def test_cancel_leaves_completed_stages_and_a_rerun_finishes(tiny_run: dict, tmp_path: Path) -> None:
    config = _config(tiny_run, mode="proxy-only", guides=0, steps=25)
    out = tmp_path / "run"
    progress = CallbackProgress()

    def cancel_in_finetune(key: str, value: object) -> None:
        if key == "loss":
            progress.token.cancel()

    progress._on_preview = cancel_in_finetune
    with pytest.raises(Cancelled):
        Adaptation(tiny_run["targets"], config, out, progress=progress).run_all()
    assert (out / "proxies" / "target1.hdr").is_file()
    assert not (out / "checkpoint").exists() and not (out / "restored").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    report = Adaptation(tiny_run["targets"], config, out).run_all()
    assert report["resumed"] and (out / "checkpoint" / "model.safetensors").is_file()


def test_bad_inputs_are_refused(tiny_run: dict, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no target"):
        Adaptation([], _config(tiny_run), tmp_path / "a")
    with pytest.raises(InputError, match="clean references"):
        Adaptation(tiny_run["targets"], _config(tiny_run), tmp_path / "b", clean=tiny_run["clean"][:1])
    with pytest.raises(ModelError, match="restores 'gaussian'"):
        Adaptation(tiny_run["targets"], AdaptConfig(task="complex", model=str(tiny_run["ckpt"]), device="cpu",
                                                           guides=0, finetune=FinetuneConfig(mode="proxy-only")),
                   tmp_path / "c").run_all()
    assert not (tmp_path / "c").exists()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "precious.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        Adaptation(tiny_run["targets"], _config(tiny_run, mode="proxy-only", guides=0), tmp_path / "d").run_all()
    assert (tmp_path / "d" / "precious.txt").read_text() == "keep me"


def test_cli_adapt_reports_errors_without_traceback(tiny_run: dict, tmp_path: Path, capsys) -> None:
    code = main(["adapt", "--target", str(tmp_path / "missing.hdr"), "--task", "gaussian",
                 "--model", str(tiny_run["ckpt"]), "--out", str(tmp_path / "run"), "--mode", "proxy-only",
                 "--guides", "0", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "missing.hdr" in err and "Traceback" not in err
