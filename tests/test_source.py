"""Spectral upsampling and the synthetic source set (the demo set: tests/test_demo.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hiralign.errors import ConfigError, InputError, MissingFileError
from hiralign.rgb_spectra import (
    WAVELENGTHS_NM,
    Renderer,
    SpectralUpsampler,
    read_spectra_csv,
    reflectance_library,
    render_srgb,
    srgb_decode,
    srgb_encode,
    upsample_srgb,
)
from hiralign.source import SourceConfig, load_cube_set, make_source_cubes, skimage_image

REPO = Path(__file__).resolve().parents[1]


def test_bundled_libraries_load_offline_and_are_disjoint():
    source, target = reflectance_library("source"), reflectance_library("target")
    assert source.shape == (289, 31) and target.shape[1] == 31 and len(target) >= 60
    assert source.min() >= 0 and source.max() <= 1 and target.min() >= 0 and target.max() <= 1
    shared = {tuple(np.round(s, 3)) for s in source} & {tuple(np.round(t, 3)) for t in target}
    assert not shared
    with pytest.raises(InputError):
        reflectance_library("nope")


@pytest.mark.parametrize("illuminant", ["D65", "A", "FL11"])
def test_renderer_maps_white_and_grey_to_neutral_srgb(illuminant):
    renderer = Renderer.for_illuminant(illuminant)
    assert np.allclose(renderer.linear_rgb(np.ones(31)), 1.0, atol=1e-9)
    assert np.allclose(renderer.linear_rgb(np.full(31, 0.18)), 0.18, atol=1e-9)
    assert renderer.spd.max() == pytest.approx(1.0)
    with pytest.raises(InputError):
        Renderer.for_illuminant("sunlight-on-mars")


def test_srgb_transfer_functions_invert_each_other():
    values = np.linspace(0, 1, 101)
    assert np.allclose(srgb_encode(srgb_decode(values)), values, atol=1e-12)


@pytest.mark.parametrize("illuminant, library", [("D65", "source"), ("A", "target")])
def test_upsampled_cube_renders_back_to_the_photograph(illuminant, library):
    from hiralign.io import load_rgb

    image = load_rgb(skimage_image("astronaut.png"))[100:196, 150:246]
    cube = upsample_srgb(image, reflectance_library(library), illuminant)
    assert cube.shape == (96, 96, 31) and cube.dtype == np.float32
    reflectance = cube / Renderer.for_illuminant(illuminant).spd
    assert reflectance.min() >= 0 and reflectance.max() <= 1 + 1e-5
    error = np.abs(render_srgb(cube, illuminant) - image)
    assert error.mean() < 2e-3 and np.percentile(error, 99) < 1e-2


def test_upsampled_spectra_are_smooth_like_measured_reflectances():
    image = np.random.default_rng(0).uniform(0.05, 0.95, (20, 20, 3))
    spectra = SpectralUpsampler(reflectance_library("source"), Renderer.for_illuminant("D65")).upsample(
        srgb_decode(image)).reshape(-1, 31)
    roughness = np.abs(np.diff(spectra, 2, axis=1)).mean()
    library = reflectance_library("source")
    assert roughness < 3 * np.abs(np.diff(library, 2, axis=1)).mean()


def test_user_spectra_csv(tmp_path):
    wl = np.arange(380, 781, 5)
    good = tmp_path / "s.csv"
    good.write_text("nm,a,b\n" + "\n".join(f"{w},{0.5},{w / 1000}" for w in wl))
    spectra = read_spectra_csv(good)
    assert spectra.shape == (2, 31) and np.allclose(spectra[0], 0.5)
    assert np.allclose(spectra[1], WAVELENGTHS_NM / 1000)
    narrow = tmp_path / "n.csv"
    narrow.write_text("nm,a\n500,0.1\n600,0.2\n")
    with pytest.raises(InputError, match="400–700"):
        read_spectra_csv(narrow)


def test_source_cubes_are_reproducible_and_carry_their_recipe():
    from hiralign.io import load_rgb

    photo = load_rgb(skimage_image("astronaut.png"))
    layouts = [("astronaut", photo[:80, :80]), ("coffee", photo[200:280, 200:280])]
    config = SourceConfig(n=3, size=32, seed=5)
    first, again = make_source_cubes(config, layouts), make_source_cubes(config, layouts)
    assert [c.name for c in first] == ["source_000", "source_001", "source_002"]
    assert all(np.array_equal(a.data, b.data) for a, b in zip(first, again))
    assert first[0].metadata["layout"] == "astronaut" and first[2].metadata["layout"] == "astronaut"
    assert not np.array_equal(first[0].data, first[2].data)
    assert np.array_equal(first[0].wavelengths, WAVELENGTHS_NM)
    with pytest.raises(ConfigError):
        SourceConfig(n=0)


def test_make_source_command_writes_a_loadable_set(tmp_path, capsys):
    from hiralign.cli import main

    out = tmp_path / "src"
    assert main(["make-source", "--out", str(out), "--n", "2", "--size", "24"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cubes"] == 2
    cubes = load_cube_set(out)
    assert [c.shape for c in cubes] == [(24, 24, 31)] * 2
    assert np.allclose(cubes[0].wavelengths, WAVELENGTHS_NM)
    assert json.loads((out / "manifest.json").read_text())["config"]["illuminant"] == "D65"
    assert main(["make-source", "--out", str(out), "--size", "4"]) == 2  # bad settings: one-line error


def test_cube_set_errors(tmp_path):
    with pytest.raises(MissingFileError):
        load_cube_set(tmp_path / "none")
    with pytest.raises(InputError, match="manifest.json is missing"):
        load_cube_set(tmp_path)


def test_colour_science_leaves_no_fake_matplotlib_behind() -> None:
    import importlib.util
    import sys

    from hiralign.rgb_spectra import _colour

    _colour()
    assert "matplotlib" not in sys.modules or sys.modules["matplotlib"].__spec__ is not None
    importlib.util.find_spec("matplotlib")  # raised ValueError with colour's mock in place


def test_fine_grid_renders_like_the_31_band_grid_and_reaches_780_nm():
    from hiralign.rgb_spectra import FINE_WAVELENGTHS_NM

    fine, coarse = reflectance_library("source", FINE_WAVELENGTHS_NM), reflectance_library("source")
    assert fine.shape == (coarse.shape[0], 81) and FINE_WAVELENGTHS_NM[[0, -1]].tolist() == [380.0, 780.0]
    # The same measured spectra on both grids: equal where the grids meet (every 10 nm in 400–700).
    assert np.allclose(fine[:, 4:65:2], coarse, atol=1e-6)
    renderer_fine, renderer = Renderer.for_illuminant("D65", FINE_WAVELENGTHS_NM), Renderer.for_illuminant("D65")
    assert np.abs(renderer_fine.linear_rgb(fine) - renderer.linear_rgb(coarse)).max() < 0.02
    rgb = np.random.default_rng(0).uniform(0.05, 0.8, (200, 3))
    spectra = SpectralUpsampler(fine, renderer_fine).upsample(rgb)
    assert spectra.shape == (200, 81) and np.abs(renderer_fine.linear_rgb(spectra) - rgb).max() < 1e-3
    with pytest.raises(InputError, match="380–780"):
        reflectance_library("source", np.arange(350.0, 800.0, 10.0))


def test_fine_source_cubes_carry_81_bands_and_the_default_stays_31(tmp_path):
    from hiralign.io import load_rgb
    from hiralign.rgb_spectra import FINE_WAVELENGTHS_NM

    photo = load_rgb(skimage_image("coffee.png"))[:64, :64]
    fine = make_source_cubes(SourceConfig(n=1, size=24, grid="fine"), [("coffee", photo)])[0]
    coarse = make_source_cubes(SourceConfig(n=1, size=24), [("coffee", photo)])[0]
    assert fine.shape == (24, 24, 81) and np.array_equal(fine.wavelengths, FINE_WAVELENGTHS_NM)
    assert coarse.shape == (24, 24, 31)
    # Same crop and spectra choice; the fine cube's 10 nm bands are close to the 31-band cube.
    assert np.abs(fine.data[:, :, 4:65:2] - coarse.data).mean() < 0.02
    with pytest.raises(ConfigError, match="grid"):
        SourceConfig(grid="1nm")
