"""The clean-prior and exact-transform generators (hiralign.generate.cleanprior / exact_views)."""
from __future__ import annotations

import numpy as np
import pytest

from hiralign.errors import ConfigError, InputError
from hiralign.generate import GENERATORS, get_generator
from hiralign.generate.cleanprior import CleanPriorConfig, clean_prior, guided_filter
from hiralign.generate.exact_views import (
    MAX_REDRAWS,
    ExactConfig,
    apply_operator,
    bilinear_operator,
    exact_views,
    source_positions,
)


def _params(**kw: object) -> dict:
    base = {"angle_deg": 0.0, "zoom": 1.0, "shift_px": [0.0, 0.0], "mirror": False, "elastic_px": 0.0,
            "_elastic": np.zeros((2, 4, 4))}
    return {**base, **kw}


def _operator(params: dict, h: int, w: int):
    return bilinear_operator(*source_positions(params, h, w), h, w)


def test_registered() -> None:
    assert {"cleanprior", "exact"} <= set(GENERATORS)
    assert get_generator("cleanprior", filter="guided").settings.filter == "guided"
    assert get_generator("exact", max_rotation_deg=30).settings.max_rotation_deg == 30


def test_identity_params_give_the_identity_operator(rng: np.random.Generator) -> None:
    op = _operator(_params(), 9, 12)
    np.testing.assert_array_equal(op.toarray(), np.eye(108, dtype=np.float32))


def test_quarter_turn_and_mirror_are_exact_permutations(rng: np.random.Generator) -> None:
    img = rng.random((11, 11, 5)).astype(np.float32)
    turned = apply_operator(_operator(_params(angle_deg=90.0), 11, 11), img)
    matches = [np.allclose(turned, np.rot90(img, k), atol=1e-5) for k in (1, 3)]
    assert any(matches)
    mirrored = apply_operator(_operator(_params(mirror=True), 11, 11), img)
    np.testing.assert_allclose(mirrored, img[:, ::-1], atol=1e-6)


def test_half_pixel_shift_is_the_two_tap_mean(rng: np.random.Generator) -> None:
    img = rng.random((6, 10, 2)).astype(np.float32)
    out = apply_operator(_operator(_params(shift_px=[0.5, 0.0]), 6, 10), img)
    np.testing.assert_allclose(out[:, :-1], 0.5 * (img[:, :-1] + img[:, 1:]), atol=1e-6)


def test_views_are_row_stochastic_convex_and_reproducible(rng: np.random.Generator) -> None:
    proxy = rng.random((24, 20, 6)).astype(np.float32)
    rgb = proxy[:, :, :3]
    views = exact_views(proxy, 3, seed=5, proxy_rgb=rgb)
    again = exact_views(proxy, 2, seed=5, proxy_rgb=rgb)
    for v, w in zip(views, again):
        np.testing.assert_array_equal(v.synthesized, w.synthesized)
    for v in views:
        op = v.operator
        assert op.shape == (480, 480)
        np.testing.assert_allclose(np.asarray(op.sum(axis=1)).ravel(), 1.0, atol=1e-5)
        assert op.data.min() >= 0 and np.diff(op.indptr).max() <= 4
        np.testing.assert_allclose(v.synthesized, (op @ proxy.reshape(-1, 6)).reshape(proxy.shape), atol=1e-5)
        np.testing.assert_allclose(v.guide_rgb, np.clip(apply_operator(op, rgb), 0, 1), atol=1e-6)
        assert v.synthesized.min() >= proxy.min() - 1e-6 and v.synthesized.max() <= proxy.max() + 1e-6
        assert 0.6 <= v.params["zoom"] <= 1.25 and v.diagnostics["kappa"] > 0
        assert v.diagnostics["row_stochastic_error"] < 1e-5
    assert not np.allclose(views[0].synthesized, views[1].synthesized)
    guides = get_generator("exact").generate(rgb, 3, seed=5)
    for g, v in zip(guides, views):
        np.testing.assert_allclose(g, v.guide_rgb, atol=1e-6)


def test_gates(rng: np.random.Generator) -> None:
    proxy = rng.random((16, 16, 3)).astype(np.float32)
    # magnifying by ≥ 1.2 reuses proxy pixels: κ > 1.05 always, so every redraw is used up
    (view,) = exact_views(proxy, 1, 0, ExactConfig(zoom_range=(1.2, 1.25), max_kappa=1.05))
    assert view.diagnostics["redraws"] == MAX_REDRAWS
    # a displacement gate that most draws pass stops at the first draw that does
    (view,) = exact_views(proxy, 1, 0, ExactConfig(min_displacement_px=1.0))
    assert view.diagnostics["mean_displacement_px"] >= 1.0


def test_exact_input_errors(rng: np.random.Generator) -> None:
    with pytest.raises(InputError, match="at least 8"):
        exact_views(np.zeros((4, 4, 3)), 1, 0)
    bad = np.zeros((10, 10, 3))
    bad[2, 2, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        exact_views(bad, 1, 0)
    with pytest.raises(InputError, match="differ in size"):
        exact_views(np.zeros((10, 10, 3)), 1, 0, proxy_rgb=np.zeros((12, 10, 3)))
    with pytest.raises(ConfigError, match="zoom_range"):
        ExactConfig(zoom_range=(1.2, 0.9))
    with pytest.raises(ConfigError, match="elastic_grid"):
        ExactConfig(elastic_grid=1)


def _noisy_steps(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    clean = np.zeros((48, 48, 3), np.float32)
    clean[:, 24:] = 0.7
    clean[12:36, 8:20] = 0.4
    return clean, np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize(("name", "strength"), [("tv", 0.1), ("bilateral", 0.1), ("guided", 0.01)])
def test_clean_prior_filters_remove_noise_and_keep_edges(rng: np.random.Generator, name: str,
                                                         strength: float) -> None:
    clean, noisy = _noisy_steps(rng)
    out = clean_prior(noisy, CleanPriorConfig(filter=name, strength=strength))
    assert out.shape == noisy.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert np.mean((out - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)
    # the step survives: the two sides stay apart by most of their contrast
    assert out[:, 30:].mean() - out[:, :6].mean() > 0.6


def test_guided_filter_limits(rng: np.random.Generator) -> None:
    img = rng.random((20, 20, 2))
    np.testing.assert_allclose(guided_filter(img, 2, 1e-9), img, atol=1e-4)  # ε → 0: keeps all detail
    from scipy.ndimage import uniform_filter

    flat = guided_filter(img, 2, 1e6)  # ε → ∞: the double box mean
    np.testing.assert_allclose(flat, uniform_filter(uniform_filter(img, (5, 5, 1), mode="reflect"), (5, 5, 1),
                                                    mode="reflect"), atol=1e-4)


def test_clean_prior_generator_draws_strengths_per_seed(rng: np.random.Generator) -> None:
    _, noisy = _noisy_steps(rng)
    gen = get_generator("cleanprior", spread=3.0)
    a = gen.generate(noisy, 3, seed=1)
    b = gen.generate(noisy, 2, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[2])
    same = get_generator("cleanprior", spread=1.0).generate(noisy, 2, seed=1)
    np.testing.assert_array_equal(same[0], same[1])
    with pytest.raises(ConfigError, match="unknown filter"):
        CleanPriorConfig(filter="median")
    with pytest.raises(ConfigError, match="spread"):
        CleanPriorConfig(spread=0.5)
