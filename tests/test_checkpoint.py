"""Checkpoint bundles, plug-in models and the shipped source models."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hiralign.errors import MissingFileError, ModelError
from hiralign.models.checkpoint import CheckpointConfig, load_checkpoint, read_provenance, save_checkpoint
from hiralign.models.compact import CompactRestorer
from hiralign.models.plugin import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


WAVELENGTHS = np.arange(400.0, 701.0, 10.0)
REPO = Path(__file__).resolve().parents[1]


def _trained_model(bands=6, scale=1):
    torch.manual_seed(0)
    model = CompactRestorer(bands, scale=scale, features=8, depth=3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def _save(tmp_path, model=None, **config):
    model = model or _trained_model()
    cfg = CheckpointConfig(**{"arch": "compact", "task": "gaussian", "bands": 6, "args": {"features": 8, "depth": 3},
                              **config})
    return save_checkpoint(model, tmp_path / "ckpt", cfg, {"steps": 3, "seed": 7}), model


def test_round_trip_restores_the_same_function_and_config(tmp_path, device):
    folder, model = _save(tmp_path, wavelengths=np.linspace(450, 700, 6))
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "provenance.json"]
    loaded, config = load_checkpoint(folder, device)
    assert (config.arch, config.task, config.bands, config.scale) == ("compact", "gaussian", 6, 1)
    assert config.wavelengths == tuple(np.linspace(450, 700, 6))
    assert not loaded.training
    x = torch.rand(1, 6, 10, 10)
    with torch.no_grad():
        assert torch.allclose(loaded(x.to(device)).cpu(), model(x), atol=1e-6)
    prov = read_provenance(folder)
    assert prov["seed"] == 7 and prov["hiralign_version"] and prov["saved_at"]


def test_super_resolution_round_trip(tmp_path):
    model = _trained_model(bands=4, scale=4)
    folder = save_checkpoint(model, tmp_path / "sr", CheckpointConfig("compact", "sr4", 4, scale=4,
                                                                      args={"features": 8, "depth": 3}))
    loaded, config = load_checkpoint(folder)
    x = torch.rand(1, 4, 6, 6)
    with torch.no_grad():
        assert loaded(x).shape == (1, 4, 24, 24) and torch.allclose(loaded(x), model(x), atol=1e-6)


def test_saving_over_an_existing_bundle_replaces_it_whole(tmp_path):
    folder, _ = _save(tmp_path)
    (folder / "stray.txt").write_text("old")
    _save(tmp_path, task="complex")
    assert not (folder / "stray.txt").exists()
    assert load_checkpoint(folder)[1].task == "complex"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary folders left


def test_every_file_of_a_bundle_gets_the_same_plain_permissions(tmp_path):
    """safetensors writes its file 0600; a bundle shared with a group must be readable whole."""
    folder, _ = _save(tmp_path)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert len(set(modes.values())) == 1, modes


def test_missing_folder_is_a_missing_file_error(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "config.json").unlink(), "config.json is missing"),
    (lambda f: (f / "model.safetensors").unlink(), "model.safetensors is missing"),
    (lambda f: (f / "model.safetensors").write_bytes(b"\x00garbage" * 10), "cannot read the weights"),
    (lambda f: (f / "config.json").write_text("{not json"), "cannot read"),
    (lambda f: (f / "config.json").write_text('{"arch": "compact"}'), "missing key"),
    (lambda f: _edit_config(f, arch="resnet9000"), "unknown architecture"),
    (lambda f: _edit_config(f, bands=7), "do not fit"),
    (lambda f: _edit_config(f, format_version=99), "newer"),
    (lambda f: _edit_config(f, args={"features": 8, "depth": 3, "colour": "red"}), "rejects"),
])
def test_damaged_bundles_give_model_errors(tmp_path, damage, message):
    folder, _ = _save(tmp_path)
    damage(folder)
    with pytest.raises(ModelError, match=message):
        load_checkpoint(folder)


def test_a_file_is_not_a_checkpoint_folder(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a checkpoint folder"):
        load_checkpoint(path)


def _edit_config(folder, **changes):
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


class _Doubler(torch.nn.Module):
    def __init__(self, bands: int):
        super().__init__()
        self.mix = torch.nn.Conv2d(bands, bands, 1)

    def forward(self, x):
        return self.mix(x)


def test_torchscript_plugin_loads_finetunes_and_saves_as_a_bundle(tmp_path):
    scripted = torch.jit.script(_Doubler(5))
    path = tmp_path / "user_model.pt"
    torch.jit.save(scripted, str(path))
    model, config = load_model(path, bands=5, task="gaussian")
    assert config.arch == "torchscript" and config.bands == 5
    with torch.no_grad():
        model.mix.weight.mul_(2.0)  # "finetuned"
    folder = save_checkpoint(model, tmp_path / "ckpt", config)
    assert (folder / "module.pt").is_file()
    loaded, _ = load_checkpoint(folder)
    x = torch.rand(1, 5, 4, 4)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))


def test_factory_plugin_with_state_dicts(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(
        "import torch\n"
        "def make(bands, scale=1, width=3):\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(bands, width, 1), torch.nn.Conv2d(width, bands, 1))\n"
        "def broken(bands, scale=1):\n"
        "    return torch.nn.Conv2d(bands, bands + 1, 1)\n"
        "def not_a_model(bands, scale=1):\n"
        "    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reference = torch.nn.Sequential(torch.nn.Conv2d(4, 3, 1), torch.nn.Conv2d(3, 4, 1))
    from safetensors.torch import save_file

    save_file(reference.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save(reference.state_dict(), tmp_path / "w.pth")
    x = torch.rand(1, 4, 5, 5)
    for weights in ("w.safetensors", "w.pth"):
        model, config = load_model("my_nets:make", bands=4, task="complex", state_dict=tmp_path / weights)
        assert config.arch == "my_nets:make"
        with torch.no_grad():
            assert torch.allclose(model(x), reference(x))
    folder = save_checkpoint(model, tmp_path / "ckpt", config)
    assert load_checkpoint(folder)[1].arch == "my_nets:make"
    with pytest.raises(ModelError, match="maps"):
        load_model("my_nets:broken", bands=4)
    with pytest.raises(ModelError, match="not a torch.nn.Module"):
        load_model("my_nets:not_a_model", bands=4)
    with pytest.raises(ModelError, match="no callable"):
        load_model("my_nets:missing", bands=4)
    with pytest.raises(ModelError, match="cannot import"):
        load_model("no_such_package_xyz:make", bands=4)
    with pytest.raises(ModelError, match="does not fit"):
        load_model("my_nets:make", bands=4, args={"width": 5}, state_dict=tmp_path / "w.pth")
    sys.modules.pop("my_nets", None)


def test_plugin_specs_that_are_nothing_are_refused(tmp_path):
    with pytest.raises(MissingFileError):
        load_model(str(tmp_path / "missing_folder"))
    with pytest.raises(ModelError, match="band count"):
        load_model("some.module:factory")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torchscript")
    with pytest.raises(ModelError, match="TorchScript"):
        load_model(bad, bands=3)


@pytest.mark.parametrize("task, scale", [("gaussian", 1), ("complex", 1), ("sr4", 4), ("bandmiss", 1), ("inpaint", 1)])
def test_shipped_source_models_load_and_record_their_training(task, scale):
    from hiralign.resources import shipped_model

    folder = shipped_model(task)
    assert folder == REPO / "resources" / "models" / task
    model, config = load_checkpoint(folder)
    assert (config.task, config.bands, config.scale) == (task, 31, scale)
    assert config.wavelengths == tuple(WAVELENGTHS)
    prov = read_provenance(folder)
    assert prov["kind"] == "source pretraining"
    assert prov["seeds"]["train"] == prov["train_config"]["seed"]
    assert prov["train_config"]["task"] == task and prov["result"]["steps"] == prov["train_config"]["steps"]
    assert prov["metrics"]["validation_psnr"] > 20
    assert sum(f.stat().st_size for f in folder.iterdir()) < 4_000_000
    with torch.no_grad():
        assert model(torch.rand(1, 31, 16, 16)).shape == (1, 31, 16 * scale, 16 * scale)

