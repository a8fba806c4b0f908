"""The embedded demo target set: recognisable photographs as cubes, degraded by D_task (hiralign.demo)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hiralign.demo import REBUILD_COMMAND, SCENES, DemoConfig, make_demo_cubes, make_demo_set, quantize
from hiralign.errors import ConfigError
from hiralign.source import SOURCE_LAYOUTS, load_cube_set

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo"


def test_demo_set_pairs_observations_with_clean_references(tmp_path):
    from hiralign.degrade import degrade

    out = make_demo_set(tmp_path / "demo", DemoConfig(scenes=("logo",), size=32))
    observed, clean = load_cube_set(out), load_cube_set(out, "clean")
    assert [c.name for c in observed] == [c.name for c in clean] == ["logo"]
    # The stored clean cube is exactly the one degraded; both at 12-bit precision.
    expected = degrade(clean[0].to_torch()[None], "gaussian", 0)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(observed[0].data, quantize(expected, 12), atol=1e-6)
    for cube in (observed[0], clean[0]):
        assert np.allclose(cube.data * 4096, np.round(cube.data * 4096))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["illuminant"] == "D50" and manifest["rebuild"] == REBUILD_COMMAND


def test_demo_scenes_are_photographs_the_source_model_never_saw():
    assert not {file for file, _ in SCENES.values()} & set(SOURCE_LAYOUTS)
    assert DemoConfig().illuminant != "D65" and DemoConfig().library != "source"


@pytest.mark.parametrize("kwargs, message", [({"scenes": ("nope",)}, "unknown demo scene"),
                                             ({"size": 8}, "16–512 pixels"), ({"bits": 3}, "bits must be")])
def test_bad_demo_settings_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DemoConfig(**kwargs)


def test_shipped_demo_set_is_small_complete_and_rebuilt_by_its_command():
    manifest = json.loads((DEMO / "manifest.json").read_text())
    assert manifest["rebuild"] == REBUILD_COMMAND
    assert [e["clean"] for e in manifest["cubes"]] == [f"clean/{name}.npz" for name in DemoConfig().scenes]
    assert sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file()) < 8_000_000
    observed, clean = load_cube_set(DEMO), load_cube_set(DEMO, "clean")
    size = DemoConfig().size
    assert all(o.shape == c.shape == (size, size, 31) for o, c in zip(observed, clean))
    noise = np.std(observed[0].data - clean[0].data)
    assert 10 / 255 < noise < 70 / 255
    # The shipped files are what the command makes today (one scene, to stay fast).
    rebuilt = make_demo_cubes(DemoConfig(scenes=("logo",)))[0]
    shipped = clean[DemoConfig().scenes.index("logo")]
    np.testing.assert_allclose(rebuilt.data, shipped.data, atol=2.0 ** -12)
    # A recognisable scene: the histology image is not noise; its clean cube has structure
    # at every scale, the observation is far noisier than the clean reference.
    histology = clean[0].data.mean(axis=2)
    assert np.corrcoef(histology[:, :-1].ravel(), histology[:, 1:].ravel())[0, 1] > 0.8


def test_make_demo_command_builds_a_set_and_refuses_unknown_scenes(tmp_path, capsys):
    from hiralign.cli import main

    assert main(["make-demo", "--out", str(tmp_path / "d"), "--scenes", "galaxies", "--size", "24"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["scenes"] == ["observed/galaxies.npz"] and printed["config"]["size"] == 24
    with pytest.raises(SystemExit) as exc:
        main(["make-demo", "--out", str(tmp_path / "e"), "--scenes", "astronaut"])
    assert exc.value.code != 0 and "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
