"""Settings of the warp-based spectral transfer (paper Sec. III-B 2, defaults Sec. IV-D)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from hiralign.errors import ConfigError, MissingFileError

#: Index kinds accepted by :attr:`WarpConfig.index`.
INDEX_KINDS: tuple[str, ...] = ("exact", "ivf", "hnsw")

#: Boundary rules π (Eq. 17) accepted by :attr:`WarpConfig.boundary`.
BOUNDARIES: tuple[str, ...] = ("clamp", "reflect")


@dataclasses.dataclass(frozen=True)
class WarpConfig:
    """Every setting of :func:`hiralign.warp.warp`; the defaults are the paper's.

    Descriptors (Eq. 9):
        patch_size: s_m, side of the descriptor patch (odd).
        gradient_weight: λ_g, weight of the gradient channels.
        chroma_weight: λ_c, weight of the chromaticity channels.
        chroma_eps: ε of χ(I) = I / (ΣI + ε).
    Retrieval (Eq. 10) and refinement (Eqs. 11–13):
        seeds: K_s, nearest proxy descriptors retrieved per guide pixel.
        radius: ρ, Chebyshev radius of the seed expansion.
        candidates: K, candidates kept per guide pixel.
        index: FAISS index kind, "exact" (flat), "ivf" (IVFFlat) or "hnsw".
        ivf_nlist: IVF cells; 0 means ≈ 4·√N rounded to a power of two.
        ivf_nprobe: IVF cells visited per query.
        ivf_train_per_list: training points per IVF cell (k-means on a subsample).
        hnsw_m, hnsw_ef_search: HNSW graph degree and search breadth.
        retrieval_dims: 0 keeps the full descriptor for FAISS; n > 0 projects proxy and
            guide descriptors onto the proxy's first n principal axes before retrieval
            (refinement always scores full descriptors with Eq. 12).
        tile_pixels: guide pixels per tile in descriptor, retrieval and refinement work.
    Optimisation (Eqs. 14–21):
        stencil: s, side of the local interpolation stencil (odd).
        temperature: τ of the aggregation softmax.
        boundary: π, "clamp" (replicate) or "reflect".
        iterations, learning_rate: Adam steps and step size.
        w_l1, w_patch, w_mi, w_ssim, w_grad, w_smooth, w_dist: λ_1, λ_p, λ_mi, λ_ssim,
            λ_∇, λ_s, λ_d of Eq. 20 (the paper prints none; see docs/warp.md).
        loss_patch: patch side of L_patch.
        mi_bins: histogram bins of the differentiable mutual information.
        ssim_window: side of the uniform SSIM window (scikit-image's default, 7).
        init_distance_scale: aggregation logits start at −scale·d̂ (0: all equal).
        init_kernel_peak: the centre interpolation logit starts at this value, the
            others at 0 (0: a flat kernel).
        preview_every: iterations between ``progress.preview("warp_rgb", …)`` calls.
    Diagnostics:
        kappa_iterations, kappa_tol: power iteration for κ = λ_max(TᵀT).
        region_weight: candidates whose aggregation weight is at least this count as
            sources when deciding if a pixel draws from more than one proxy region.
        region_distance: sources farther apart than this (pixels, Chebyshev) are in
            different regions (0 means the stencil size s).
        seed: seed of the IVF training subsample and the PCA sample.
    Inputs:
        resize_guide: a guide whose size differs from the proxy's is resized to it
            (bilinear, anti-aliased; logged and noted in the diagnostics); False refuses it.
    """

    patch_size: int = 5
    gradient_weight: float = 0.5
    chroma_weight: float = 0.25
    chroma_eps: float = 1e-6
    seeds: int = 16
    radius: int = 1
    candidates: int = 16
    index: str = "ivf"
    ivf_nlist: int = 0
    ivf_nprobe: int = 8
    ivf_train_per_list: int = 16
    hnsw_m: int = 32
    hnsw_ef_search: int = 64
    retrieval_dims: int = 64
    tile_pixels: int = 16384
    stencil: int = 7
    temperature: float = 1.0
    boundary: str = "clamp"
    iterations: int = 200
    learning_rate: float = 0.05
    w_l1: float = 1.0
    w_patch: float = 0.5
    w_mi: float = 0.01
    w_ssim: float = 1.0
    w_grad: float = 0.5
    w_smooth: float = 0.05
    w_dist: float = 0.005
    loss_patch: int = 5
    mi_bins: int = 32
    ssim_window: int = 7
    init_distance_scale: float = 1.0
    init_kernel_peak: float = 6.0
    preview_every: int = 20
    kappa_iterations: int = 100
    kappa_tol: float = 1e-3
    region_weight: float = 0.1
    region_distance: int = 0
    seed: int = 0
    resize_guide: bool = True

    def __post_init__(self) -> None:
        for name in ("patch_size", "stencil", "loss_patch", "ssim_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1 or value % 2 == 0:
                raise ConfigError(f"warp setting {name} must be a positive odd integer, not {value!r}")
        positive_ints = ("seeds", "candidates", "tile_pixels", "ivf_nprobe", "ivf_train_per_list",
                         "hnsw_m", "hnsw_ef_search", "mi_bins", "preview_every", "kappa_iterations")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"warp setting {name} must be a positive integer, not {value!r}")
        for name in ("radius", "iterations", "ivf_nlist", "retrieval_dims", "region_distance", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"warp setting {name} must be a non-negative integer, not {value!r}")
        nonnegative = ("gradient_weight", "chroma_weight", "w_l1", "w_patch", "w_mi", "w_ssim",
                       "w_grad", "w_smooth", "w_dist", "init_distance_scale", "init_kernel_peak",
                       "region_weight")
        for name in nonnegative:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(f"warp setting {name} must be a number ≥ 0, not {value!r}")
        for name in ("chroma_eps", "temperature", "learning_rate", "kappa_tol"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"warp setting {name} must be a number > 0, not {value!r}")
        if not isinstance(self.resize_guide, bool):
            raise ConfigError(f"warp setting resize_guide must be true or false, not {self.resize_guide!r}")
        if self.index not in INDEX_KINDS:
            raise ConfigError(f"warp setting index must be one of {', '.join(INDEX_KINDS)}, not {self.index!r}")
        if self.boundary not in BOUNDARIES:
            raise ConfigError(f"warp setting boundary must be one of {', '.join(BOUNDARIES)}, "
                              f"not {self.boundary!r}")
        # A seed in an image corner keeps only (ρ+1)² in-image neighbours.
        if self.candidates > self.seeds * (self.radius + 1) ** 2:
            raise ConfigError(f"warp setting candidates={self.candidates} exceeds seeds·(radius+1)² = "
                              f"{self.seeds * (self.radius + 1) ** 2}, the smallest expanded pool")

    @property
    def descriptor_dim(self) -> int:
        """D_ψ: s_m² patch positions × 12 channels (RGB, chroma, y/x gradients of RGB)."""
        return self.patch_size ** 2 * 12

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "warp config") -> WarpConfig:
        """Build from a mapping, refusing unknown keys (names the offending key)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown warp setting(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        try:
            return cls(**dict(values))
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> WarpConfig:
        """Read settings from a JSON object file (missing keys keep their defaults)."""
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"warp config file {path} does not exist")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable JSON file ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a JSON object of warp settings")
        if isinstance(values.get("warp"), dict):  # accept a run config with a "warp" section
            values = values["warp"]
        return cls.from_dict(values, source=str(path))
