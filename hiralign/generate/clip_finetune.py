"""Blur-robust CLIP vision encoder for the improved unCLIP (paper Eq. 7).

The encoder E is trained so that a blurred image embeds like its clean counterpart:
    L_clip = ‖E(I_blur) − E(I_clean)‖²   (mean over embedding dimensions here).
The clean target comes from a frozen copy of the original encoder: the unCLIP UNet was
trained on that encoder's embedding space, and a target produced by the trained encoder
itself would let both sides drift together (a constant embedding has zero loss). Blur
levels are drawn per image, uniformly in ``blur_sigma`` (pixels at the CLIP input
resolution, e.g. 224²), with ``clean_fraction`` of the images left sharp so that clean
proxies keep their embeddings. The paper trains on COCO 2017; any folder of clean
images works.

This is a different objective from the restoration training loop of
:mod:`hiralign.train` (embeddings, a teacher, no degradation of cubes), hence its own
short loop. The result is saved in the ``from_pretrained`` layout (config.json,
model.safetensors, preprocessor_config.json) plus ``hiralign_clip_finetune.json`` with
the settings and the losses, atomically.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hiralign.errors import ConfigError, InputError, MissingFileError, ModelError
from hiralign.generate.base import check_rgb, cpu_threads
from hiralign.progress import Progress, as_progress

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclasses.dataclass(frozen=True)
class ClipFinetuneConfig:
    """Settings of the CLIP vision encoder finetune.

    Attributes:
        steps: optimiser steps.
        batch_size: images per step.
        lr: AdamW learning rate (1e-5 suits full-size CLIP; tiny test models need more).
        weight_decay: AdamW weight decay.
        blur_sigma: (min, max) Gaussian blur std, pixels at the CLIP input resolution.
        clean_fraction: fraction of training images left unblurred.
        crop_scale: random square crops cover this (min, max) fraction of the shorter side.
        eval_images: images in the fixed evaluation batch (loss before/after).
        seed: seeds crops, blur levels and the order of images.
        threads: torch CPU threads (0 = keep the process setting).
        device: "auto", "cpu" or "cuda[:N]".
    """

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-5
    weight_decay: float = 0.01
    blur_sigma: tuple[float, float] = (0.5, 5.0)
    clean_fraction: float = 0.2
    crop_scale: tuple[float, float] = (0.6, 1.0)
    eval_images: int = 32
    seed: int = 0
    threads: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.eval_images < 1:
            raise ConfigError("clip-finetune: steps, batch_size and eval_images must be ≥ 1")
        if self.lr <= 0:
            raise ConfigError(f"clip-finetune: lr must be > 0, got {self.lr}")
        lo, hi = self.blur_sigma
        if not 0 <= lo <= hi or hi <= 0:
            raise ConfigError(f"clip-finetune: blur_sigma must be (min, max) with 0 ≤ min ≤ max, max > 0; "
                              f"got {self.blur_sigma}")
        if not 0 <= self.clean_fraction < 1:
            raise ConfigError(f"clip-finetune: clean_fraction must lie in [0, 1), got {self.clean_fraction}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"clip-finetune: crop_scale must satisfy 0 < min ≤ max ≤ 1, got {self.crop_scale}")


@dataclasses.dataclass
class ClipFinetuneResult:
    """What a finetune did.

    Attributes:
        folder: where the encoder was saved (None when not saved).
        loss_before: Eq. 7 loss on the fixed evaluation batch with the original encoder.
        loss_after: the same after training.
        history: (step, training loss) every few steps.
        seconds: wall time of the training.
    """

    folder: Path | None
    loss_before: float
    loss_after: float
    history: list[tuple[int, float]]
    seconds: float


def finetune_clip_encoder(
    images: str | os.PathLike | Sequence[np.ndarray],
    out: str | os.PathLike | None,
    *,
    model: str | os.PathLike | None = None,
    encoder: str | os.PathLike | None = None,
    settings: ClipFinetuneConfig | None = None,
    progress: Progress | None = None,
) -> ClipFinetuneResult:
    """Train a blur-robust copy of a CLIP vision encoder and save it to ``out``.

    Args:
        images: a folder of clean images (PNG/JPEG/TIFF, searched recursively) or a
            sequence of (H, W, 3) float arrays in [0, 1].
        out: output folder (written atomically); None trains without saving.
        model: unCLIP pipeline folder or hub id whose ``image_encoder`` to start from
            (default: the paper's checkpoint, from the local cache only).
        encoder: a ``CLIPVisionModelWithProjection`` folder to start from instead.
        settings: training settings.
        progress: one unit per step; ``check()`` cancels without writing anything.

    Returns:
        Losses before/after on a fixed evaluation batch, and the history.

    Raises:
        MissingFileError / InputError: no usable images. ModelError: no encoder weights.
    """
    import torch

    from hiralign.device import configure_torch, resolve_device
    from hiralign.generate.clip_vision import ClipGeometry

    s = settings or ClipFinetuneConfig()
    progress = as_progress(progress)
    configure_torch()
    device = resolve_device(s.device)
    source = _ImageSource(images)
    student, processor = _load_base(model, encoder)
    geometry = ClipGeometry.from_processor(processor, student.config.image_size)
    with cpu_threads(s.threads if device.type == "cpu" else 0):
        student = student.to(device=device, dtype=torch.float32)
        teacher = copy.deepcopy(student).eval().requires_grad_(False)
        rng = np.random.default_rng(s.seed)
        eval_batch = _make_batch(source, min(s.eval_images, max(len(source), 1)), rng, s, geometry, device,
                                 sequential=True)
        loss_before = _eval_loss(student, teacher, eval_batch)
        optimizer = torch.optim.AdamW(student.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        history: list[tuple[int, float]] = []
        start = time.perf_counter()
        student.train()
        for step in range(1, s.steps + 1):
            progress.check()
            blurred, clean = _make_batch(source, s.batch_size, rng, s, geometry, device)
            with torch.no_grad():
                target = teacher(clean).image_embeds
            loss = torch.nn.functional.mse_loss(student(blurred).image_embeds, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if step == 1 or step % max(1, s.steps // 50) == 0 or step == s.steps:
                history.append((step, value))
                progress.preview("clip_loss", {"step": step, "loss": value})
            progress.report(step, s.steps, f"step {step}/{s.steps}: loss {value:.4g}")
        student.eval()
        loss_after = _eval_loss(student, teacher, eval_batch)
        seconds = time.perf_counter() - start
    log.info("clip-finetune: evaluation loss %.4g → %.4g in %.0f s", loss_before, loss_after, seconds)
    result = ClipFinetuneResult(None, loss_before, loss_after, history, seconds)
    if out is not None:
        result.folder = _save(student, processor, Path(out), s, result, model, encoder, len(source))
    return result


class _ImageSource:
    """Clean training images from arrays, or from files loaded on demand (COCO is large)."""

    def __init__(self, images: str | os.PathLike | Sequence[np.ndarray]) -> None:
        self.arrays: list[np.ndarray] | None = None
        self.paths: list[Path] = []
        if isinstance(images, (str, os.PathLike)):
            folder = Path(images).expanduser()
            if not folder.is_dir():
                raise MissingFileError(f"clip-finetune: image folder {folder} does not exist")
            self.paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not self.paths:
                raise InputError(f"clip-finetune: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        else:
            self.arrays = [check_rgb(a, f"training image {i}") for i, a in enumerate(images)]
            if not self.arrays:
                raise InputError("clip-finetune: no training images given")

    def __len__(self) -> int:
        return len(self.arrays) if self.arrays is not None else len(self.paths)

    def get(self, index: int) -> np.ndarray:
        if self.arrays is not None:
            return self.arrays[index]
        from hiralign.io import load_rgb

        return check_rgb(load_rgb(self.paths[index]), str(self.paths[index]))


def _make_batch(source: _ImageSource, size: int, rng: np.random.Generator, s: ClipFinetuneConfig,
                geometry: Any, device: Any, sequential: bool = False) -> tuple[Any, Any]:
    """(blurred, clean) normalised CLIP inputs, (size, 3, h, w) each."""
    import torch

    from hiralign.generate.clip_vision import clip_normalize, clip_resize, gaussian_blur

    indices = np.arange(size) % len(source) if sequential else rng.integers(len(source), size=size)
    crops = []
    for i in indices:
        img = source.get(int(i))
        side = max(8, int(min(img.shape[:2]) * rng.uniform(*s.crop_scale)))
        top = int(rng.integers(img.shape[0] - side + 1))
        left = int(rng.integers(img.shape[1] - side + 1))
        crop = torch.from_numpy(np.ascontiguousarray(img[top:top + side, left:left + side])).permute(2, 0, 1)
        crops.append(clip_resize(crop[None].to(device), geometry)[0])
    clean = torch.stack(crops)
    sigmas = rng.uniform(*s.blur_sigma, size=size)
    sigmas[rng.random(size) < s.clean_fraction] = 0.0
    blurred = gaussian_blur(clean, sigmas)
    return clip_normalize(blurred, geometry), clip_normalize(clean, geometry)


def _eval_loss(student: Any, teacher: Any, batch: tuple[Any, Any]) -> float:
    import torch

    blurred, clean = batch
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(student(blurred).image_embeds, teacher(clean).image_embeds))


def _load_base(model: str | os.PathLike | None, encoder: str | os.PathLike | None) -> tuple[Any, Any]:
    """(CLIPVisionModelWithProjection, CLIPImageProcessor or None) to start from."""
    from hiralign.generate.clip_vision import load_vision_encoder

    if encoder is not None:
        folder = Path(encoder).expanduser()
        return load_vision_encoder(folder), _load_processor(folder)
    from hiralign.generate.unclip_weights import resolve_model

    pipeline = resolve_model(model, local_files_only=True)
    folder = Path(pipeline)
    return load_vision_encoder(folder / "image_encoder"), _load_processor(folder / "feature_extractor")


def _load_processor(folder: Path) -> Any:
    if not (folder / "preprocessor_config.json").is_file():
        return None
    from transformers import CLIPImageProcessor

    try:
        return CLIPImageProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: unreadable image processor ({exc})") from None


def _save(student: Any, processor: Any, out: Path, s: ClipFinetuneConfig, result: ClipFinetuneResult,
          model: Any, encoder: Any, n_images: int) -> Path:
    from hiralign.atomic import atomic_dir, write_json
    from hiralign.generate.base import settings_dict

    with atomic_dir(out) as tmp:
        student.save_pretrained(tmp, safe_serialization=True)
        if processor is not None:
            processor.save_pretrained(tmp)
        write_json(tmp / "hiralign_clip_finetune.json", {
            "objective": "Eq. 7: MSE(E(blur(x)), E_frozen(x)) on image_embeds",
            "base_model": str(model) if encoder is None else None,
            "base_encoder": str(encoder) if encoder is not None else None,
            "images": n_images, "settings": settings_dict(s),
            "loss_before": result.loss_before, "loss_after": result.loss_after,
            "history": result.history, "seconds": result.seconds,
        })
    return out
