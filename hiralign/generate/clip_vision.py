"""The CLIP image side shared by the unCLIP generator and the CLIP finetune.

Both paths preprocess with the same torch code (resize the shorter side, centre crop,
normalise with the processor's mean/std), so the blur-robust encoder is trained on
exactly the inputs it will see, and blur can be applied to tensors on the GPU.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from hiralign.errors import ModelError

#: OpenAI CLIP normalisation, used when a processor does not say.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclasses.dataclass(frozen=True)
class ClipGeometry:
    """How a CLIP image processor prepares an image.

    Attributes:
        resize: target of the shorter side, pixels.
        crop: (height, width) of the centre crop, pixels.
        mean: per-channel mean subtracted after scaling to [0, 1].
        std: per-channel std divided by.
    """

    resize: int
    crop: tuple[int, int]
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    @classmethod
    def from_processor(cls, processor: Any, fallback_size: int = 224) -> ClipGeometry:
        """Read the geometry of a transformers ``CLIPImageProcessor`` (or use CLIP's defaults)."""
        size = _get(getattr(processor, "size", None), "shortest_edge") or _get(
            getattr(processor, "size", None), "height") or fallback_size
        crop = getattr(processor, "crop_size", None)
        crop_hw = (int(_get(crop, "height") or size), int(_get(crop, "width") or size))
        mean = tuple(getattr(processor, "image_mean", None) or CLIP_MEAN)
        std = tuple(getattr(processor, "image_std", None) or CLIP_STD)
        return cls(int(size), crop_hw, mean, std)  # type: ignore[arg-type]


def clip_pixels(images: torch.Tensor, geometry: ClipGeometry) -> torch.Tensor:  # noqa: F821
    """(N, 3, H, W) images in [0, 1] → (N, 3, crop_h, crop_w) normalised CLIP input."""
    return clip_normalize(clip_resize(images, geometry), geometry)


def clip_resize(images: torch.Tensor, geometry: ClipGeometry) -> torch.Tensor:  # noqa: F821
    """Resize the shorter side and centre-crop: (N, 3, H, W) → (N, 3, crop_h, crop_w) in [0, 1]."""
    import torch.nn.functional as F

    height, width = images.shape[-2:]
    scale = geometry.resize / min(height, width)
    size = (max(geometry.crop[0], round(height * scale)), max(geometry.crop[1], round(width * scale)))
    out = F.interpolate(images, size=size, mode="bicubic", antialias=scale < 1, align_corners=False)
    top, left = (size[0] - geometry.crop[0]) // 2, (size[1] - geometry.crop[1]) // 2
    return out[..., top:top + geometry.crop[0], left:left + geometry.crop[1]].clamp(0, 1)


def clip_normalize(pixels: torch.Tensor, geometry: ClipGeometry) -> torch.Tensor:  # noqa: F821
    """Subtract the processor's mean and divide by its std, per channel."""
    import torch

    mean = torch.tensor(geometry.mean, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(geometry.std, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    return (pixels - mean) / std


def gaussian_blur(images: torch.Tensor, sigmas: torch.Tensor | list[float]) -> torch.Tensor:  # noqa: F821
    """Blur each (3, H, W) image of an (N, 3, H, W) batch with its own Gaussian std (pixels).

    A std of 0 leaves the image unchanged. Borders are reflected.
    """
    import torch
    import torch.nn.functional as F

    sigmas = [float(s) for s in sigmas]
    out = []
    for image, sigma in zip(images, sigmas):
        if sigma <= 0:
            out.append(image)
            continue
        radius = max(1, min(int(math.ceil(3 * sigma)), min(image.shape[-2:]) - 1))
        x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
        kernel = torch.exp(-0.5 * (x / sigma) ** 2)
        kernel = kernel / kernel.sum()
        img = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
        img = F.conv2d(img, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        img = F.conv2d(img, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
        out.append(img[0])
    return torch.stack(out)


def load_vision_encoder(folder: str | os.PathLike, dtype: torch.dtype | None = None) -> Any:  # noqa: F821
    """Load a ``CLIPVisionModelWithProjection`` saved by ``hiralign clip-finetune``.

    Raises:
        ModelError: the folder is missing or does not hold such a model.
    """
    from transformers import CLIPVisionModelWithProjection

    path = Path(folder).expanduser()
    if not (path / "config.json").is_file():
        raise ModelError(f"CLIP vision encoder folder {path}: no config.json; expected the folder written by "
                         "`hiralign clip-finetune --out FOLDER` (config.json + model.safetensors) or a "
                         "pipeline's image_encoder/ folder")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelError(f"CLIP vision encoder folder {path}: no *.safetensors or *.bin weights")
    try:
        kwargs = {"dtype": dtype} if dtype is not None else {}
        return CLIPVisionModelWithProjection.from_pretrained(path, local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"CLIP vision encoder folder {path}: cannot load it ({exc})") from None


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)
