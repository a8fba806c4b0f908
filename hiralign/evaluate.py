"""Evaluation: degrade clean cubes reproducibly, restore with each model, score.

Every clean cube is degraded with the same seed, exactly as ``hiralign degrade IN OUT
--seed S`` does for one file, so a cube observed through the CLI and one degraded here are
identical. Metrics follow PROTOCOL.md and are computed on the final restorer's output.
"""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from hiralign.cube import Cube
from hiralign.progress import Progress, SubProgress, as_progress
from hiralign.proxy import TileConfig, restore_cube

if TYPE_CHECKING:
    import torch


@dataclasses.dataclass(frozen=True)
class ImageScore:
    """Metrics of one restored image against its clean reference (PROTOCOL.md).

    Attributes:
        image: the image's name.
        psnr: mean of the per-band PSNRs, dB (peak 1).
        ssim: mean of the per-band SSIMs.
        sam: mean spectral angle, degrees.
        psnr_per_band: (B,) PSNR of each band in dB, when asked for (``maps=True``).
        sam_map: (H, W) spectral angle of each pixel in degrees, when asked for.
    """

    image: str
    psnr: float
    ssim: float
    sam: float
    psnr_per_band: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    sam_map: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """The scalar metrics as a JSON-able dict (what reports record)."""
        return {"image": self.image, "psnr": self.psnr, "ssim": self.ssim, "sam": self.sam}

    def as_dict(self) -> dict[str, Any]:
        """Scalars plus, when computed, the per-band PSNR and the SAM map (what the GUI shows)."""
        out = self.summary()
        if self.psnr_per_band is not None:
            out["psnr_per_band"] = self.psnr_per_band
        if self.sam_map is not None:
            out["sam_map"] = self.sam_map
        return out


@dataclasses.dataclass(frozen=True)
class ModelScores:
    """All images of one model, with means and wall time."""

    label: str
    images: tuple[ImageScore, ...]
    seconds: float

    @property
    def mean(self) -> dict[str, float]:
        return {k: float(np.mean([getattr(s, k) for s in self.images])) for k in ("psnr", "ssim", "sam")}

    def as_dict(self) -> dict:
        return {"label": self.label, "mean": self.mean, "seconds": self.seconds,
                "images": [s.summary() for s in self.images]}


def score_cube(restored: Cube, clean: Cube, *, maps: bool = False) -> ImageScore:
    """PSNR / SSIM / SAM of one restored cube against its clean reference: the one scorer.

    The CLI's reports, ``hiralign evaluate`` and the GUI's Evaluate stage all score here.

    Args:
        restored: (H, W, B) estimate.
        clean: (H, W, B) reference; its name names the score.
        maps: also keep the (B,) per-band PSNR and the (H, W) SAM map in degrees.
    """
    from hiralign.metrics import all_metrics, psnr_per_band, sam_map

    est, ref = restored.to_torch()[None], clean.to_torch()[None]
    values = all_metrics(est, ref)
    extra: dict[str, Any] = {}
    if maps:
        extra = {"psnr_per_band": np.asarray(psnr_per_band(est, ref)).reshape(-1).astype(np.float32),
                 "sam_map": np.asarray(sam_map(est, ref)).reshape(restored.shape[:2]).astype(np.float32)}
    return ImageScore(image=clean.name, psnr=float(values["psnr"]), ssim=float(values["ssim"]),
                      sam=float(values["sam"]), **extra)


#: What a run's metric rows score. The key ``source`` is kept for readers of older reports, but
#: since the classical proxies (session 4) it is the stage-1 proxies, not always the source model.
ROW_MEANINGS: dict[str, str] = {
    "source": "the proxies (stage 1, made as the report's proxy_source says)",
    "adapted": "restored/ (the run's restoration, as hiralign restore makes it for new captures)",
}


def metrics_report(rows: dict[str, list[ImageScore]]) -> dict[str, Any]:
    """The report of scored images: per image, means per label, and the gain adapted − source.

    Args:
        rows: label ("source", "adapted") -> one score per image, same order.

    Returns:
        ``per_image`` and ``mean`` per label, ``gain`` (adapted − source) and ``rows``: what
        each known label scores (:data:`ROW_MEANINGS`).
    """
    means = {label: {k: float(np.mean([getattr(s, k) for s in scores])) for k in ("psnr", "ssim", "sam")}
             for label, scores in rows.items()}
    report: dict[str, Any] = {"per_image": {label: [s.summary() for s in scores] for label, scores in rows.items()},
                              "mean": means,
                              "rows": {label: ROW_MEANINGS[label] for label in rows if label in ROW_MEANINGS}}
    if "source" in means and "adapted" in means:
        report["gain"] = {k: means["adapted"][k] - means["source"][k] for k in ("psnr", "ssim", "sam")}
    return report


def observe(clean: Sequence[Cube], task: str, seed: int, noise: Any = None) -> list[Cube]:
    """The degraded observations of ``clean`` (each with ``seed``, as the CLI does).

    ``noise``: ``sensor`` only, the :class:`~hiralign.noise.NoiseModel` to draw from (any scale).
    """
    from hiralign.degrade import degrade_cube

    return [degrade_cube(c, task, seed, noise=noise) for c in clean]


def evaluate_models(
    clean: Sequence[Cube],
    task: str,
    models: Sequence[tuple[str, torch.nn.Module | Callable[[Cube, Progress], Cube], int]],
    *,
    seed: int = 0,
    observed: Sequence[Cube] | None = None,
    tiles: TileConfig = TileConfig(),
    device: torch.device | str | None = None,
    progress: Progress | None = None,
) -> list[ModelScores]:
    """Score each ``(label, model, scale)`` on the degraded ``clean`` cubes.

    Args:
        clean: clean reference cubes (H, W, B).
        task: degradation name (hiralign.degrade.TASKS).
        models: (label, restorer, spatial scale) triples; a restorer is a network (tiled
            inference in one pass) or a function ``(observed, progress) → restored``
            (e.g. a checkpoint's recipe, :func:`hiralign.restoration.restore_capture`).
        seed: degradation seed used for every image.
        observed: precomputed observations (default: :func:`observe`).
        tiles: tiled inference settings.
        device: where models run.
        progress: one report per restored image; cancellable.

    Returns:
        One :class:`ModelScores` per model, in order.
    """
    import torch

    progress = as_progress(progress)
    observed = list(observed) if observed is not None else observe(clean, task, seed)
    results = []
    total = max(1, len(models) * len(clean))
    for m, (label, model, scale) in enumerate(models):
        start = time.perf_counter()
        scores = []
        for i, (obs, ref) in enumerate(zip(observed, clean)):
            step = m * len(clean) + i
            sub = SubProgress(progress, step / total, (step + 1) / total, f"{label} {ref.name}: ")
            if isinstance(model, torch.nn.Module):
                restored = restore_cube(model, obs, scale=scale, tiles=tiles, device=device, progress=sub)
            else:
                restored = model(obs, sub)
            scores.append(score_cube(restored, ref))
        results.append(ModelScores(label, tuple(scores), time.perf_counter() - start))
    return results


def format_table(results: Sequence[ModelScores]) -> str:
    """A markdown table: one row per model and image, then the means."""
    lines = ["| model | image | PSNR (dB) | SSIM | SAM (°) |", "|---|---|---|---|---|"]
    for res in results:
        for s in res.images:
            lines.append(f"| {res.label} | {s.image} | {s.psnr:.2f} | {s.ssim:.4f} | {s.sam:.2f} |")
        mean = res.mean
        lines.append(f"| **{res.label}** | **mean** | **{mean['psnr']:.2f}** | **{mean['ssim']:.4f}** "
                     f"| **{mean['sam']:.2f}** |")
    return "\n".join(lines)
