"""Guide generators without weights (patchnn, classic, shuffle), the registry and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hiralign.errors import ConfigError, InputError
from hiralign.generate import GENERATORS, get_generator, settings_class
from hiralign.generate.base import variation_seeds
from hiralign.progress import CallbackProgress, Cancelled

pytestmark = pytest.mark.usefixtures("one_thread")

# Small settings keep patchnn to a fraction of a second on 48×64 images.
FAST_PATCHNN = dict(coarsest_side=12, iterations=3, threads=1)


@pytest.fixture
def textured(rng: np.random.Generator) -> np.ndarray:
    """A 48×64 RGB with blobs and stripes (something for patches to rearrange)."""
    from scipy.ndimage import gaussian_filter

    y, x = np.mgrid[0:48, 0:64]
    base = gaussian_filter(rng.random((48, 64, 3)), sigma=(3, 3, 0))
    base = (base - base.min()) / (base.max() - base.min())
    stripes = 0.5 + 0.5 * np.sin(x / 3.0 + y / 7.0)
    return np.clip(0.6 * base + 0.4 * stripes[..., None] * np.array([1.0, 0.6, 0.3]), 0, 1).astype(np.float32)


def _make(name: str):
    return get_generator(name, **(FAST_PATCHNN if name == "patchnn" else {}))


@pytest.mark.parametrize("name", ["patchnn", "classic", "shuffle"])
def test_guides_have_input_size_dtype_range_and_vary(name: str, textured: np.ndarray) -> None:
    guides = _make(name).generate(textured, 3, seed=5)
    assert len(guides) == 3
    for g in guides:
        assert g.shape == textured.shape and g.dtype == np.float32
        assert 0.0 <= g.min() and g.max() <= 1.0
        assert np.abs(g - textured).mean() > 0.01
    assert np.abs(guides[0] - guides[1]).mean() > 0.005
    assert np.abs(guides[1] - guides[2]).mean() > 0.005


@pytest.mark.parametrize("name", ["patchnn", "classic", "shuffle"])
def test_seeds_are_reproducible_and_prefix_stable(name: str, textured: np.ndarray) -> None:
    gen = _make(name)
    first = gen.generate(textured, 2, seed=11)
    again = gen.generate(textured, 3, seed=11)
    other = gen.generate(textured, 1, seed=12)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert np.abs(other[0] - first[0]).mean() > 1e-3


def test_variation_seeds_depend_on_seed_and_index() -> None:
    assert variation_seeds(3, 2) == variation_seeds(3, 4)[:2]
    assert len(set(variation_seeds(3, 4))) == 4
    assert variation_seeds(3, 1) != variation_seeds(4, 1)


def test_patchnn_keeps_colour_statistics_on_real_scene() -> None:
    from conftest import shared_file

    from hiralign import io

    rgb = io.load_rgb(shared_file("kaist", "scene03.mat"), wavelengths="420:720:10")[64:160, 64:160]
    guides = get_generator("patchnn", threads=1).generate(rgb, 2, seed=0)
    for g in guides:
        assert np.abs(g.mean((0, 1)) - rgb.mean((0, 1))).max() < 0.05
        assert np.abs(g - rgb).mean() > 0.01


def test_patchnn_progress_reports_every_scale_and_previews_each_guide(textured: np.ndarray) -> None:
    from hiralign.generate.patchnn import pyramid_sizes

    gen = _make("patchnn")
    reports, previews = [], []
    progress = CallbackProgress(lambda d, t, m: reports.append((d, t, m)), lambda k, v: previews.append((k, v)))
    gen.generate(textured, 2, seed=0, progress=progress)
    levels = len(pyramid_sizes(textured.shape[:2], gen.settings))
    assert levels > 2
    assert len(reports) == 2 * levels and reports[-1][0] == reports[-1][1] == 2 * levels
    assert [k for k, _ in previews] == ["guide", "guide"]


@pytest.mark.parametrize("name", ["patchnn", "classic", "shuffle"])
def test_cancel_stops_generation(name: str, textured: np.ndarray) -> None:
    progress = CallbackProgress()
    progress.token.cancel()
    with pytest.raises(Cancelled):
        _make(name).generate(textured, 2, seed=0, progress=progress)


def test_patchnn_small_image_is_upscaled_and_returned_at_its_size(caplog: pytest.LogCaptureFixture) -> None:
    rgb = np.random.default_rng(0).random((10, 12, 3)).astype(np.float32)
    with caplog.at_level("INFO"):
        guides = _make("patchnn").generate(rgb, 1, seed=0)
    assert guides[0].shape == (10, 12, 3)
    assert "upscaling" in caplog.text


def test_patchnn_gpnn_recipe_and_speed_settings_both_run(textured: np.ndarray) -> None:
    from hiralign.generate.patchnn import PatchNNConfig, PatchNNGenerator

    slow = PatchNNGenerator(PatchNNConfig.gpnn(coarsest_side=12, iterations=2, fine_iterations=2, threads=1))
    fast = PatchNNGenerator(PatchNNConfig(coarsest_side=12, iterations=2, fine_side=20, search_dims=16,
                                            threads=1))
    for gen in (slow, fast):
        out = gen.generate(textured, 1, seed=1)[0]
        assert out.shape == textured.shape and np.isfinite(out).all()


def test_fold_of_unfold_is_identity_at_any_stride() -> None:
    import torch

    from hiralign.generate.patchnn import _pad_to_stride, fold_patches, unfold_patches

    image = torch.rand(1, 3, 23, 30)
    for stride in (1, 2, 3):
        padded = _pad_to_stride(image, 7, stride)
        back = fold_patches(unfold_patches(padded, 7, stride), padded.shape[-2:], 7, stride)
        torch.testing.assert_close(back[..., :23, :30], image)


def test_patch_search_backends_agree_and_ivf_recall_is_high() -> None:
    import faiss
    import torch

    from hiralign.generate.patch_search import PatchIndex, _torch_search

    rng = np.random.default_rng(0)
    centres = rng.random((40, 48)).astype(np.float32)
    keys = (centres[rng.integers(40, size=3000)] + 0.05 * rng.standard_normal((3000, 48))).astype(np.float32)
    queries = keys[rng.choice(3000, 300, replace=False)] + 0.01 * rng.standard_normal((300, 48)).astype(np.float32)
    exact_d, exact_i = faiss.knn(queries, keys, 1)
    keys_t = torch.from_numpy(keys)
    d_t, i_t = _torch_search(queries, keys_t, (keys_t * keys_t).sum(1), 1)
    assert (i_t[:, 0] == exact_i[:, 0]).mean() > 0.99
    np.testing.assert_allclose(d_t[:, 0], exact_d[:, 0], rtol=1e-3, atol=1e-3)
    ivf = PatchIndex(keys, torch.device("cpu"), approximate=True, nprobe=8)
    _, i_ivf = ivf.search(queries, 1)
    assert (i_ivf[:, 0] == exact_i[:, 0]).mean() > 0.9


def test_shuffle_permutes_whole_tiles() -> None:
    from hiralign.generate.shuffle import shuffle_tiles

    rgb = np.random.default_rng(0).random((40, 50, 3)).astype(np.float32)
    out = shuffle_tiles(rgb, 16, np.random.default_rng(1))
    tiles = lambda a: sorted(a[r:r + 16, c:c + 16].tobytes() for r in (0, 16) for c in (0, 16, 32))  # noqa: E731
    assert tiles(out) == tiles(rgb) and not np.array_equal(out, rgb)
    np.testing.assert_array_equal(out[32:], rgb[32:])  # the remainder strip stays


def test_classic_keeps_size_on_non_square_images(textured: np.ndarray) -> None:
    for g in get_generator("classic").generate(textured, 4, seed=3):
        assert g.shape == textured.shape


def test_registry_names_errors_and_settings() -> None:
    from hiralign.commands.generate import GENERATOR_NAMES

    assert GENERATOR_NAMES == GENERATORS
    with pytest.raises(ConfigError, match="unknown generator"):
        get_generator("gan")
    with pytest.raises(ConfigError, match="no setting 'sigma'"):
        get_generator("patchnn", sigma=2)
    with pytest.raises(ConfigError, match="patch_size"):
        get_generator("patchnn", patch_size=4)
    with pytest.raises(ConfigError, match="strength"):
        get_generator("unclip", strength=0)
    assert settings_class("shuffle")().patch_size == 32


def test_bad_inputs_raise_clear_errors() -> None:
    gen = get_generator("classic")
    with pytest.raises(InputError, match="shape"):
        gen.generate(np.zeros((16, 16)), 1, 0)
    bad = np.zeros((16, 16, 3), np.float32)
    bad[3, 3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        gen.generate(bad, 1, 0)
    with pytest.raises(ConfigError, match="positive integer"):
        gen.generate(np.zeros((16, 16, 3), np.float32), 0, 0)


def test_cli_writes_guides_and_record(tmp_path, textured: np.ndarray, small_cube) -> None:
    from hiralign import io
    from hiralign.cli import main

    picture = io.save_rgb(textured, tmp_path / "proxy one.png")
    cube = io.save(small_cube, tmp_path / "cube.npy")
    out = tmp_path / "guides"
    code = main(["--quiet", "generate", "--generator", "classic", "--n", "2", "--seed", "4",
                 str(picture), str(cube), "--out", str(out), "--set", "max_rotation_deg=5"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "cube_g0.png", "cube_g1.png", "generate.json", "proxy_one_g0.png", "proxy_one_g1.png"]
    assert io.load_rgb(out / "cube_g1.png").shape == (32, 40, 3)
    record = json.loads((out / "generate.json").read_text())
    assert record["generator"] == "classic" and record["settings"]["max_rotation_deg"] == 5
    assert [e["seed"] for e in record["inputs"]] == [4, 4 + 7919]
    assert record["inputs"][1]["variation_seeds"] == variation_seeds(4 + 7919, 2)


def test_cli_refuses_unclip_options_for_other_generators_and_missing_files(tmp_path, capsys) -> None:
    from hiralign.cli import main

    assert main(["generate", "--generator", "shuffle", "--prompt", "x", str(tmp_path), "--out",
                 str(tmp_path / "o")]) == 2
    assert "--prompt: only for --generator unclip" in capsys.readouterr().err
    assert main(["generate", "--generator", "shuffle", str(tmp_path / "nope.png"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "nope.png" in capsys.readouterr().err


def test_cli_auto_falls_back_to_patchnn_without_weights(tmp_path, monkeypatch, textured) -> None:
    from hiralign import io
    from hiralign.cli import main

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    picture = io.save_rgb(textured, tmp_path / "p.png")
    code = main(["--quiet", "generate", "--n", "1", str(picture), "--out", str(tmp_path / "o"),
                 "--set", "coarsest_side=12", "--set", "iterations=2"])
    assert code == 0
    assert json.loads((tmp_path / "o" / "generate.json").read_text())["generator"] == "patchnn"
