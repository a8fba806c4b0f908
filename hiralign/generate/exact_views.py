"""``exact``: geometric views whose transfer operator T is known, not estimated.

A rotation at any angle, a zoom in [0.6, 1.25], a shift, an optional mirror and a smooth
elastic field define, for every output pixel u, a source position s(u) in the proxy. T is
then the bilinear-interpolation operator itself: row u holds the 4 bilinear weights of the
proxy pixels around s(u) (reflected at the borders), so it is exactly row-stochastic and
every synthesized spectrum ỹ(u) = Σ_v T_uv p(v) is a convex combination of ≤ 4 neighbouring
proxy spectra (paper Sec. III-B: the same convex-transfer property as the warp, without
its matching errors). The guide RGB is T r: guide and synthesized cube are aligned by
construction, so **the warp stage is skipped for these views** (:func:`exact_views`
returns the synthesized cube and T directly). Unlike the crops, flips and quarter turns of
finetuning, these views bring arbitrary orientations and scales and locally varying
geometry.

Cost: building T and applying it to a 256²×31 proxy takes milliseconds; κ (the overlap
constant λ_max(TᵀT) of Supp. S2) by power iteration a little more.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from hiralign.errors import ConfigError, InputError
from hiralign.generate.base import check_count, check_rgb, finish_variation, variation_seeds
from hiralign.progress import Progress, as_progress

#: Redraws of one view allowed by the κ gate before keeping the best draw.
MAX_REDRAWS = 8


@dataclasses.dataclass(frozen=True)
class ExactConfig:
    """Settings of exact-transform views.

    Attributes:
        max_rotation_deg: rotation drawn uniformly in [−max, max] degrees (180: any angle).
        zoom_range: (min, max) zoom; > 1 magnifies. Drawn log-uniformly.
        max_shift: largest shift, as a fraction of the image size.
        mirror: mirror left-right with probability 1/2.
        elastic_px: std of the elastic displacement at its control points, pixels (0: none).
        elastic_grid: control points per side of the elastic field (its smoothness).
        max_kappa: gate: redraw a view whose κ = λ_max(TᵀT) exceeds this (0: no gate).
            κ > 1 means proxy pixels (and their errors) are reused by many output pixels.
        min_displacement_px: gate: redraw a near-duplicate view whose mean displacement is
            below this many pixels (0: no gate).
    """

    max_rotation_deg: float = 180.0
    zoom_range: tuple[float, float] = (0.6, 1.25)
    max_shift: float = 0.1
    mirror: bool = True
    elastic_px: float = 2.0
    elastic_grid: int = 4
    max_kappa: float = 0.0
    min_displacement_px: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.zoom_range)
        if not 0 < lo <= hi:
            raise ConfigError(f"exact: zoom_range must be 0 < min ≤ max, got {self.zoom_range}")
        object.__setattr__(self, "zoom_range", (lo, hi))
        for name in ("max_rotation_deg", "max_shift", "elastic_px", "max_kappa", "min_displacement_px"):
            if getattr(self, name) < 0:
                raise ConfigError(f"exact: {name} must be ≥ 0, got {getattr(self, name)}")
        if self.elastic_grid < 2:
            raise ConfigError(f"exact: elastic_grid must be ≥ 2, got {self.elastic_grid}")


@dataclasses.dataclass(frozen=True, eq=False)
class ExactView:
    """One exact view ỹ = T p.

    Attributes:
        guide_rgb: (H, W, 3) float32 T r, the view's RGB.
        synthesized: (H, W, B) float32 T p.
        operator: scipy.sparse CSR (H·W, H·W) float32 T; rows are view pixels, columns proxy
            pixels, both flattened row-major.
        params: the drawn angle (degrees), zoom, shift (pixels, x/y), mirror, elastic std.
        diagnostics: κ, mean displacement (pixels), row-stochastic error, redraws.
    """

    guide_rgb: np.ndarray
    synthesized: np.ndarray
    operator: Any
    params: dict
    diagnostics: dict


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """Mirror integer coordinates into [0, size) without repeating the edge sample."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    folded = np.mod(index, period)
    return np.where(folded >= size, period - folded, folded)


def draw_params(rng: np.random.Generator, height: int, width: int, s: ExactConfig) -> dict:
    """Random view parameters (JSON-friendly) for an H × W image."""
    lo, hi = s.zoom_range
    params = {
        "angle_deg": float(rng.uniform(-s.max_rotation_deg, s.max_rotation_deg)),
        "zoom": float(math.exp(rng.uniform(math.log(lo), math.log(hi)))),
        "shift_px": [float(v) for v in rng.uniform(-s.max_shift, s.max_shift, size=2) * (width, height)],
        "mirror": bool(s.mirror and rng.random() < 0.5),
        "elastic_px": float(s.elastic_px),
    }
    # the field's control values are drawn even when unused, so toggling it never changes the rest
    params["_elastic"] = rng.normal(0.0, 1.0, size=(2, s.elastic_grid, s.elastic_grid))
    return params


def source_positions(params: dict, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float64 proxy row and column s(u) read by each output pixel u."""
    ys, xs = np.meshgrid(np.arange(height) - (height - 1) / 2, np.arange(width) - (width - 1) / 2, indexing="ij")
    if params["mirror"]:
        xs = -xs
    angle = math.radians(params["angle_deg"])
    cos, sin = math.cos(angle) / params["zoom"], math.sin(angle) / params["zoom"]
    src_x = cos * xs - sin * ys + (width - 1) / 2 + params["shift_px"][0]
    src_y = sin * xs + cos * ys + (height - 1) / 2 + params["shift_px"][1]
    if params["elastic_px"] > 0:
        import torch
        import torch.nn.functional as F

        coarse = torch.from_numpy(params["_elastic"] * params["elastic_px"])[None]
        field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)[0].numpy()
        src_x = src_x + field[0]
        src_y = src_y + field[1]
    return src_y, src_x


def bilinear_operator(src_y: np.ndarray, src_x: np.ndarray, height: int, width: int):
    """The (H·W, H·W) CSR float32 matrix of bilinear sampling at (src_y, src_x), reflected borders.

    Row u holds the 4 weights of the proxy pixels around (src_y[u], src_x[u]); duplicates
    (folded taps) are summed, so every row sums to 1.
    """
    import scipy.sparse as sp

    y0, x0 = np.floor(src_y), np.floor(src_x)
    fy, fx = (src_y - y0).ravel(), (src_x - x0).ravel()
    y0, x0 = y0.astype(np.int64).ravel(), x0.astype(np.int64).ravel()
    n = height * width
    cols = np.stack([_reflect(y0 + dy, height) * width + _reflect(x0 + dx, width)
                     for dy in (0, 1) for dx in (0, 1)], axis=1)
    vals = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=1)
    operator = sp.csr_matrix((vals.ravel().astype(np.float32), (np.repeat(np.arange(n), 4), cols.ravel())),
                             shape=(n, n))
    operator.sum_duplicates()
    operator.eliminate_zeros()
    return operator


def apply_operator(operator: Any, image: np.ndarray) -> np.ndarray:
    """T applied to an (H, W, C) image: (H, W, C) float32."""
    height, width, channels = image.shape
    flat = np.ascontiguousarray(image.reshape(height * width, channels), dtype=np.float32)
    return np.asarray(operator @ flat, dtype=np.float32).reshape(height, width, channels)


def _one_view(proxy: np.ndarray, rgb: np.ndarray, rng: np.random.Generator, s: ExactConfig) -> ExactView:
    from hiralign.warp.diagnostics import overlap_constant, row_stochastic_error

    height, width = proxy.shape[:2]
    best: tuple[float, Any, dict, dict] | None = None
    for attempt in range(MAX_REDRAWS + 1):
        params = draw_params(rng, height, width, s)
        src_y, src_x = source_positions(params, height, width)
        operator = bilinear_operator(src_y, src_x, height, width)
        grid_y, grid_x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        displacement = float(np.mean(np.hypot(src_y - grid_y, src_x - grid_x)))
        kappa = overlap_constant(operator, 50, 1e-3)[0] if s.max_kappa > 0 else float("nan")
        diag = {"kappa": kappa, "mean_displacement_px": displacement, "redraws": attempt}
        # gate score: how far the draw exceeds the limits (0: passes)
        excess = max(0.0, kappa - s.max_kappa) if s.max_kappa > 0 else 0.0
        excess += max(0.0, s.min_displacement_px - displacement)
        if best is None or excess < best[0]:
            best = (excess, operator, params, diag)
        if excess == 0.0:
            break
    assert best is not None
    _, operator, params, diag = best
    if s.max_kappa <= 0:
        diag["kappa"] = overlap_constant(operator, 50, 1e-3)[0]
    diag["row_stochastic_error"] = row_stochastic_error(operator)
    params = {k: v for k, v in params.items() if not k.startswith("_")}
    return ExactView(guide_rgb=np.clip(apply_operator(operator, rgb), 0, 1),
                     synthesized=apply_operator(operator, proxy), operator=operator, params=params, diagnostics=diag)


def exact_views(proxy: np.ndarray, n: int, seed: int, settings: ExactConfig = ExactConfig(), *,
                proxy_rgb: np.ndarray | None = None, progress: Progress | None = None) -> list[ExactView]:
    """``n`` exact views of one proxy: guide RGB, synthesized cube and T, no warp needed.

    Args:
        proxy: (H, W, B) proxy HSI p (float).
        n: number of views.
        seed: base seed; view j depends only on (seed, j, H, W, settings), exactly as
            :class:`ExactGenerator` draws its guides, so guides and cubes can be made apart.
        settings: the view ranges and gates.
        proxy_rgb: (H, W, 3) r in [0, 1] (default: an all-zero RGB, the guide is then unused).
        progress: one unit per view; cancellable.

    Returns:
        ``n`` :class:`ExactView`.

    Raises:
        InputError: proxy not (H, W, B), too small, or non-finite; RGB of another size.
    """
    p = np.asarray(proxy)
    if p.ndim != 3 or min(p.shape[:2]) < 8:
        raise InputError(f"exact views need an (H, W, B) proxy of at least 8×8 pixels, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise InputError("exact views: the proxy has NaN/Inf values; zero them first")
    rgb = np.zeros(p.shape[:2] + (3,), np.float32) if proxy_rgb is None else check_rgb(proxy_rgb, "proxy RGB")
    if rgb.shape[:2] != p.shape[:2]:
        raise InputError(f"exact views: proxy RGB {rgb.shape[:2]} and proxy {p.shape[:2]} differ in size")
    n = check_count(n)
    progress = as_progress(progress)
    views = []
    for j, vseed in enumerate(variation_seeds(seed, n)):
        progress.check()
        views.append(_one_view(p, rgb, np.random.default_rng(vseed), settings))
        progress.report(j + 1, n, f"exact view {j + 1}/{n}")
    return views


class ExactGenerator:
    """The guides of :func:`exact_views` (T r) through the generator protocol.

    Through the ordinary generate → warp path the warp re-estimates T from these guides;
    the exact path calls :func:`exact_views` with the same seed and skips the warp.
    """

    name = "exact"

    def __init__(self, settings: ExactConfig | None = None, **overrides: object) -> None:
        base = settings or ExactConfig()
        self.settings = dataclasses.replace(base, **overrides) if overrides else base

    def generate(self, rgb: np.ndarray, n: int, seed: int, progress: Progress | None = None) -> list[np.ndarray]:
        """``n`` exact-view guides of ``rgb`` ((H, W, 3) float32 in [0, 1])."""
        rgb = check_rgb(rgb)
        views = exact_views(rgb, n, seed, self.settings, proxy_rgb=rgb, progress=progress)
        return [finish_variation(progress, v.guide_rgb) for v in views]


