"""Warp-based spectral transfer (paper Sec. III-B 2): units on synthetic data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError, MissingFileError
from hiralign.progress import CallbackProgress, Cancelled
from hiralign.warp import WarpConfig, WarpResult, warp
from hiralign.warp import descriptors as desc
from hiralign.warp import losses as L
from hiralign.warp.model import aggregate, interpolate
from hiralign.warp.refine import WindowBank, refine
from hiralign.warp.retrieval import build_index, search_seeds

pytestmark = pytest.mark.usefixtures("one_thread")


FAST = WarpConfig(iterations=30)


def textured_cube(rng: np.random.Generator, height: int = 28, width: int = 32, bands: int = 6) -> np.ndarray:
    """A cube with fine texture (unique patches) in [0, 1]."""
    data = gaussian_filter(rng.random((height, width, bands)), sigma=(1.0, 1.0, 0.8))
    data -= data.min()
    return (data / data.max()).astype(np.float32)


# --------------------------------------------------------------------------- descriptors
def test_descriptor_layout_matches_eq9(rng):
    image = rng.random((9, 11, 3)).astype(np.float32)
    features = desc.feature_map(image, chroma_weight=0.25, gradient_weight=0.5)
    assert features.shape == (9, 11, 12)
    np.testing.assert_allclose(features[..., :3], image)
    np.testing.assert_allclose(features[..., 3:6], 0.25 * image / (image.sum(2, keepdims=True) + 1e-6), rtol=1e-5)
    np.testing.assert_allclose(features[4, 5, 9:12], 0.5 * 0.5 * (image[4, 6] - image[4, 4]), rtol=1e-5)
    padded = desc.padded_features(features, 5)
    rows = desc.descriptor_rows(padded, 5, 3, 6)
    assert rows.shape == (3 * 11, 300)
    # pixel (4, 0): its 5×5 patch replicates the left border
    expected = np.stack([features[np.clip(4 + dy, 0, 8), np.clip(0 + dx, 0, 10)]
                         for dy in range(-2, 3) for dx in range(-2, 3)]).ravel()
    np.testing.assert_allclose(rows[(4 - 3) * 11 + 0], expected)
    assert list(desc.row_tiles(9, 11, 30)) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]


def test_refinement_keeps_the_k_best_of_the_expanded_pool(rng):
    height, width, k = 14, 17, 6
    proxy_feat = rng.random((height, width, 12)).astype(np.float32)
    guide_feat = rng.random((height, width, 12)).astype(np.float32)
    guide_desc = desc.all_descriptors(desc.padded_features(guide_feat, 5), 5)
    proxy_desc = desc.all_descriptors(desc.padded_features(proxy_feat, 5), 5)
    seeds = rng.integers(0, height * width, size=(height * width, 4))
    seeds[:, 0] = [0, width - 1, (height - 1) * width, height * width - 1][0]  # a corner seed
    bank = WindowBank(proxy_feat, 5, 1, torch.device("cpu"))
    cand, dist = refine(bank, guide_desc, seeds, k, torch.device("cpu"))
    assert cand.shape == dist.shape == (height * width, k)
    for u in rng.choice(height * width, 25, replace=False):
        pool = []
        for q in seeds[u]:
            qy, qx = divmod(int(q), width)
            pool += [(qy + dy) * width + qx + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                     if 0 <= qy + dy < height and 0 <= qx + dx < width]
        brute = np.sort(np.abs(proxy_desc[pool] - guide_desc[u]).mean(axis=1))[:k]
        np.testing.assert_allclose(dist[u], brute, rtol=1e-5)
        np.testing.assert_allclose(np.abs(proxy_desc[cand[u]] - guide_desc[u]).mean(axis=1), dist[u], rtol=1e-5)
        assert set(cand[u]) <= set(pool)
    assert np.all(np.diff(dist, axis=1) >= 0)


@pytest.mark.parametrize("kind,dims", [("exact", 0), ("ivf", 0), ("hnsw", 0), ("ivf", 8)])
def test_index_kinds_find_the_query_itself(rng, kind, dims):
    data = rng.random((128 * 128, 24)).astype(np.float32)
    index = build_index(data, WarpConfig(index=kind, retrieval_dims=dims))
    assert index.kind == kind
    queries = data[::97]
    seeds = search_seeds(index, queries, 4)
    assert seeds.shape == (queries.shape[0], 4) and seeds.min() >= 0
    assert np.mean(seeds[:, 0] == np.arange(0, data.shape[0], 97)) > 0.9


def test_small_images_use_an_exact_index(rng):
    index = build_index(rng.random((400, 12)).astype(np.float32), WarpConfig(index="ivf"))
    assert index.kind == "exact"


# --------------------------------------------------------------------------- model and losses
@pytest.mark.parametrize("boundary", ["clamp", "reflect"])
def test_local_interpolation_gradient(boundary):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 5, 6, dtype=torch.float64, generator=gen, requires_grad=True)  # 3×3 stencil
    image = torch.rand(3, 5, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, x: interpolate(m, x, boundary), (logits, image))


def test_soft_aggregation_gradient_and_value():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 4, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    values = torch.rand(5, 4, 4, 6, dtype=torch.float64, generator=gen)
    assert torch.autograd.gradcheck(lambda lg: aggregate(lg, values, 0.7), (logits,))
    expected = (torch.softmax(logits / 0.7, 0)[:, None] * values).sum(0)
    torch.testing.assert_close(aggregate(logits, values, 0.7), expected)


def test_fast_mutual_information_matches_autograd_reference():
    gen = torch.Generator().manual_seed(2)
    guide = torch.rand(3, 20, 21, generator=gen)
    guide[2] = 0.5  # a constant channel is skipped
    terms = L.GuideTerms(guide, 5, 7, 16)
    x = (0.7 * guide + 0.2 * torch.rand(3, 20, 21, generator=gen)).requires_grad_()
    fast = L.mutual_information_loss(x, terms)
    (grad_fast,) = torch.autograd.grad(fast, x)
    ref = L.mutual_information_reference(x, terms)
    (grad_ref,) = torch.autograd.grad(ref, x)
    assert abs(float(fast.detach()) - float(ref.detach())) < 1e-5
    torch.testing.assert_close(grad_fast, grad_ref, atol=1e-7, rtol=1e-4)
    perfect = L.mutual_information_loss(guide.clone().requires_grad_(), terms)
    assert abs(float(perfect.detach())) < 1e-5 < float(fast.detach())


def test_patch_l1_equals_mean_over_unfolded_patches():
    gen = torch.Generator().manual_seed(3)
    guide, est = torch.rand(3, 11, 13, generator=gen), torch.rand(3, 11, 13, generator=gen)
    terms = L.GuideTerms(guide, 5, 7, 8)
    unfold = torch.nn.functional.unfold
    expected = (unfold(est[None], 5) - unfold(guide[None], 5)).abs().mean()
    torch.testing.assert_close(L.patch_l1(est, terms), expected)


# --------------------------------------------------------------------------- the whole warp
def test_operator_properties_and_sources(rng, device):
    cube = textured_cube(rng)
    rgb = cube[..., :3].copy()
    guide = np.ascontiguousarray(np.roll(rgb, (2, -3), axis=(0, 1)))
    result = warp(cube, guide, FAST, proxy_rgb=rgb, device=str(device))
    assert isinstance(result, WarpResult)
    h, w, b = cube.shape
    op = result.operator
    assert op.shape == (h * w, h * w) and op.format == "csr"
    assert op.data.min() >= 0
    np.testing.assert_allclose(np.asarray(op.sum(axis=1)).ravel(), 1.0, atol=1e-5)
    nnz = np.diff(op.indptr)
    assert nnz.max() <= FAST.candidates * FAST.stencil ** 2
    np.testing.assert_allclose(op @ cube.reshape(-1, b), result.synthesized.reshape(-1, b), atol=2e-5)
    np.testing.assert_allclose(op @ rgb.reshape(-1, 3), result.transported_rgb.reshape(-1, 3), atol=2e-5)
    assert result.synthesized.shape == (h, w, b) and result.synthesized.dtype == np.float32
    grid = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), axis=-1)
    np.testing.assert_allclose(result.coords - result.displacement, grid, atol=1e-4)
    for row, col in [(0, 0), (5, 7), (h - 1, w - 1)]:
        rows, cols, weights = result.sources_of(row, col)
        dense = op[row * w + col].toarray().ravel()
        np.testing.assert_allclose(dense[rows * w + cols], weights, atol=1e-6)
        assert abs(weights.sum() - 1) < 1e-5 and np.all(np.diff(weights) <= 0)
    # interior displacement of the shift: content at u came from u − (2, −3)
    inner = result.displacement[6:-6, 6:-6]
    assert np.median(inner[..., 0]) == pytest.approx(-2, abs=0.1)
    assert np.median(inner[..., 1]) == pytest.approx(3, abs=0.1)
    d = result.diagnostics
    assert d["row_stochastic_error"] < 1e-5 and d["min_weight"] >= 0
    assert d["max_nnz_per_row"] == nnz.max() and d["kappa"] >= 1 - 1e-3
    assert 0 <= d["multi_region_fraction"] <= 1
    assert d["alignment_psnr_db"] > 30
    assert set(d["seconds"]) >= {"descriptors", "index", "retrieval", "refinement", "optimisation",
                                 "transfer", "operator", "diagnostics", "total"}
    json.dumps(d)  # the CLI prints it
    with pytest.raises(IndexError):
        result.sources_of(h, 0)


def test_identity_transfers_the_proxy_spectra(rng, device):
    cube = textured_cube(rng, 32, 32, 8)
    rgb = cube[..., [6, 3, 1]].copy()
    result = warp(Cube(cube, name="syn"), rgb, FAST, proxy_rgb=rgb, device=str(device))
    err = np.mean((result.synthesized[4:-4, 4:-4] - cube[4:-4, 4:-4]) ** 2)
    assert 10 * np.log10(1 / err) > 40
    assert result.diagnostics["kappa"] < 1.5
    assert result.as_cube().name == "warped" and result.as_cube().shape == cube.shape


def test_progress_reports_previews_and_cancels(rng):
    cube = textured_cube(rng, 16, 16, 4)
    rgb = cube[..., :3].copy()
    reports, previews = [], []
    progress = CallbackProgress(lambda d, t, m: reports.append((d, t, m)), lambda k, v: previews.append((k, v)))
    warp(cube, rgb, WarpConfig(iterations=12, preview_every=5), proxy_rgb=rgb, device="cpu", progress=progress)
    assert sum("warp iteration" in m for _, _, m in reports) == 12
    assert any("matching tile" in m for _, _, m in reports)
    assert [k for k, _ in previews] == ["warp_rgb", "warp_rgb"] and previews[0][1].shape == (16, 16, 3)
    assert reports[-1][0] == pytest.approx(1.0)

    def cancel_late(done, total, message):
        if "iteration 3/" in message:
            progress.token.cancel()

    progress = CallbackProgress(cancel_late)
    with pytest.raises(Cancelled):
        warp(cube, rgb, WarpConfig(iterations=50), proxy_rgb=rgb, device="cpu", progress=progress)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("case,match", [
    ("gray", "RGB image"), ("rgba", "RGB image"), ("uint8", "float RGB"), ("range", r"\[0, 1\]"),
    ("nan_guide", "NaN"), ("nan_proxy", "NaN"), ("const_guide", "constant"), ("const_proxy", "constant"),
    ("tiny", "at least 7×7"), ("bare", "proxy_rgb or its wavelengths"), ("rgb_shape", "proxy_rgb must have"),
    ("not_cube", r"\(H, W, B\)"),
])
def test_bad_inputs_raise_clear_errors(rng, case, match):
    cube = textured_cube(rng, 16, 16, 4)
    rgb = cube[..., :3].copy()
    kwargs = {"proxy_rgb": rgb}
    proxy, guide = cube, rgb.copy()
    if case == "gray":
        guide = rgb[..., 0]
    elif case == "rgba":
        guide = np.concatenate([rgb, np.ones_like(rgb[..., :1])], axis=2)
    elif case == "uint8":
        guide = (rgb * 255).astype(np.uint8)
    elif case == "range":
        guide = rgb * 255
    elif case == "nan_guide":
        guide[3, 3, 1] = np.nan
    elif case == "nan_proxy":
        proxy = cube.copy()
        proxy[2, 2, 2] = np.nan
    elif case == "const_guide":
        guide = np.full_like(rgb, 0.4)
    elif case == "const_proxy":
        kwargs["proxy_rgb"] = np.full_like(rgb, 0.4)
    elif case == "tiny":
        proxy, guide, kwargs["proxy_rgb"] = cube[:5, :6], rgb[:5, :6], rgb[:5, :6]
    elif case == "bare":
        kwargs = {}
    elif case == "rgb_shape":
        kwargs["proxy_rgb"] = rgb[:8]
    elif case == "not_cube":
        proxy = cube[..., 0]
    with pytest.raises(InputError, match=match):
        warp(proxy, guide, WarpConfig(iterations=2), device="cpu", **kwargs)


def test_guide_of_another_size_is_resized_or_refused(rng):
    cube = textured_cube(rng, 20, 24, 31)
    proxy = Cube(cube, wavelengths=np.arange(400, 701, 10.0), name="p")
    big = np.clip(np.kron(proxy.pseudo_rgb(), np.ones((2, 2, 1))), 0, 1)
    result = warp(proxy, big, WarpConfig(iterations=3), device="cpu")
    assert result.synthesized.shape == cube.shape
    assert any("resized" in note for note in result.diagnostics["notes"])
    with pytest.raises(InputError, match="resize"):
        warp(proxy, big, WarpConfig(iterations=3, resize_guide=False), device="cpu")
    # a bare array with wavelengths forms its own pseudo-RGB
    bare = warp(cube, proxy.pseudo_rgb().clip(0, 1), WarpConfig(iterations=3),
                wavelengths=np.arange(400, 701, 10.0), device="cpu")
    assert bare.like is None and bare.synthesized.shape == cube.shape


# --------------------------------------------------------------------------- settings
def test_config_validation_and_json(tmp_path):
    with pytest.raises(ConfigError, match="stencil"):
        WarpConfig(stencil=6)
    with pytest.raises(ConfigError, match="index"):
        WarpConfig(index="pq")
    with pytest.raises(ConfigError, match="candidates"):
        WarpConfig(seeds=2, radius=0, candidates=4)
    with pytest.raises(ConfigError, match="unknown warp setting"):
        WarpConfig.from_dict({"iterations": 3, "lamda": 1})
    path = tmp_path / "warp.json"
    path.write_text(json.dumps({"warp": {"iterations": 7, "index": "exact"}}))
    assert WarpConfig.from_json(path) == WarpConfig(iterations=7, index="exact")
    with pytest.raises(MissingFileError):
        WarpConfig.from_json(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="JSON"):
        WarpConfig.from_json(tmp_path / "bad.json")
    defaults = WarpConfig()
    assert (defaults.patch_size, defaults.gradient_weight, defaults.chroma_weight, defaults.seeds, defaults.radius,
            defaults.candidates, defaults.stencil, defaults.temperature, defaults.iterations,
            defaults.learning_rate) == (5, 0.5, 0.25, 16, 1, 16, 7, 1.0, 200, 0.05)


# --------------------------------------------------------------------------- command line
def test_cli_writes_cube_operator_and_diagnostics(rng, tmp_path, capsys):
    import scipy.sparse as sp

    from hiralign import io
    from hiralign.cli import main

    cube = Cube(textured_cube(rng, 20, 22, 31), wavelengths=np.arange(400, 701, 10.0), name="p")
    io.save(cube, tmp_path / "proxy.npz")
    io.save_rgb(np.roll(cube.pseudo_rgb(), 2, axis=1).clip(0, 1), tmp_path / "guide.png", bits=16)
    (tmp_path / "cfg.json").write_text(json.dumps({"iterations": 5, "index": "exact"}))
    code = main(["warp", "--proxy", str(tmp_path / "proxy.npz"), "--guide", str(tmp_path / "guide.png"),
                 "--out", str(tmp_path / "out.npz"), "--operator", str(tmp_path / "T.npz"),
                 "--rgb", str(tmp_path / "rt.png"), "--config", str(tmp_path / "cfg.json"), "--device", "cpu"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["diagnostics"]["row_stochastic_error"] < 1e-5
    assert report["diagnostics"]["index"] == "exact"
    out = io.load(tmp_path / "out.npz")
    assert out.shape == cube.shape
    np.testing.assert_allclose(out.wavelengths, cube.wavelengths)
    operator = sp.load_npz(tmp_path / "T.npz")
    assert operator.shape == (20 * 22, 20 * 22)
    np.testing.assert_allclose(operator @ cube.data.reshape(-1, 31), out.data.reshape(-1, 31), atol=1e-4)
    assert io.load_rgb(tmp_path / "rt.png").shape == (20, 22, 3)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_cli_errors_are_one_line(tmp_path, capsys, rng):
    from hiralign import io
    from hiralign.cli import main

    cube = Cube(textured_cube(rng, 12, 12, 31), wavelengths=np.arange(400, 701, 10.0), name="p")
    io.save(cube, tmp_path / "proxy.npz")
    args = ["warp", "--proxy", str(tmp_path / "proxy.npz"), "--out", str(tmp_path / "o.npz"), "--device", "cpu"]
    assert main(args + ["--guide", str(tmp_path / "missing.png")]) == 2
    assert "missing.png" in capsys.readouterr().err
    (tmp_path / "cfg.json").write_text(json.dumps({"iterationz": 5}))
    io.save_rgb(cube.pseudo_rgb().clip(0, 1), tmp_path / "g.png")
    assert main(args + ["--guide", str(tmp_path / "g.png"), "--config", str(tmp_path / "cfg.json")]) == 2
    err = capsys.readouterr().err
    assert "iterationz" in err and "Traceback" not in err
    assert main(args + ["--guide", str(tmp_path / "g.png"), "--iterations", "2",
                        "--operator", str(tmp_path / "T.txt")]) == 2
    assert ".npz" in capsys.readouterr().err
    assert not (tmp_path / "T.txt").exists()


@pytest.mark.parametrize("fused", [True, False])
def test_adam_matches_torch_optim(fused):
    from hiralign.warp.optimise import Adam

    gen = torch.Generator().manual_seed(4)
    ours = [torch.randn(3, 5, generator=gen), torch.randn(7, generator=gen)]
    theirs = [p.clone().requires_grad_() for p in ours]
    reference = torch.optim.Adam(theirs, lr=0.05)
    adam = Adam(ours, lr=0.05)
    adam.fused = adam.fused and fused
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=gen) for p in ours]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        adam.step()
        reference.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q.detach(), rtol=1e-5, atol=1e-6)
