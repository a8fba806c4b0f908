"""Stage 2a: target-aligned RGB guide generation (paper Sec. III-B 1, Eqs. 5–8).

From each proxy RGB r_i a generator draws M guide RGBs g_ij that keep the scene's
semantics but vary its appearance and fine geometry. All generators share one protocol::

    gen = get_generator("patchnn", noise_std=5.0)
    guides = gen.generate(rgb, n=3, seed=0, progress=None)   # list of (H, W, 3) float32

=========  ==========================================================================
name       what
=========  ==========================================================================
unclip     the paper's improved unCLIP (diffusers ``StableUnCLIPImg2ImgPipeline``);
           needs downloaded weights (see docs/generators.md)
patchnn    single-image patch nearest neighbours (GPNN); no weights, the default
           when no diffusion weights are present
classic    flips, rotations, small affine/elastic warps, colour jitter
shuffle    random tile shuffling (the paper's Eq. 54 counter-example)
cleanprior the proxy RGB through an edge-preserving filter (TV, bilateral, guided): the
           warp then acts as a guided non-local filter on the proxy's errors
exact      rotations, zooms, mirrors and elastic fields with T known exactly
           (``exact_views.exact_views`` returns T p directly; the warp is skipped)
=========  ==========================================================================
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hiralign.errors import ConfigError
from hiralign.progress import Progress

#: Generator names, in the order the CLI and GUI list them.
GENERATORS: tuple[str, ...] = ("patchnn", "classic", "shuffle", "unclip", "cleanprior", "exact")

#: name -> (module, generator class, config class), imported on first use.
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "patchnn": ("hiralign.generate.patchnn", "PatchNNGenerator", "PatchNNConfig"),
    "classic": ("hiralign.generate.classic", "ClassicGenerator", "ClassicConfig"),
    "shuffle": ("hiralign.generate.shuffle", "ShuffleGenerator", "ShuffleConfig"),
    "unclip": ("hiralign.generate.unclip", "UnCLIPGenerator", "UnCLIPConfig"),
    "cleanprior": ("hiralign.generate.cleanprior", "CleanPriorGenerator", "CleanPriorConfig"),
    "exact": ("hiralign.generate.exact_views", "ExactGenerator", "ExactConfig"),
}


@runtime_checkable
class Generator(Protocol):
    """What every guide generator offers.

    Attributes:
        name: its name in :data:`GENERATORS`.
        settings: its frozen settings dataclass.
    """

    name: str
    settings: Any

    def generate(self, rgb: np.ndarray, n: int, seed: int, progress: Progress | None = None) -> list[np.ndarray]:
        """Draw ``n`` guides from one (H, W, 3) float32 [0, 1] image.

        Variation j depends only on (rgb, seed, j, settings). Reports progress per
        variation and per scale or denoising step, offers each finished guide as
        ``progress.preview("guide", rgb)`` and stops at ``progress.check()``.

        Returns:
            ``n`` arrays (H, W, 3) float32 in [0, 1], the input's size.
        """


def settings_class(name: str) -> type:
    """The config dataclass of generator ``name`` (e.g. :class:`~hiralign.generate.patchnn.PatchNNConfig`)."""
    module, _, settings = _lookup(name)
    return getattr(importlib.import_module(module), settings)


def get_generator(name: str, **settings: Any) -> Generator:
    """Build generator ``name`` with the given settings (others keep their defaults).

    Raises:
        ConfigError: unknown generator or setting, or a setting out of range.
    """
    module_name, cls_name, settings_name = _lookup(name)
    module = importlib.import_module(module_name)
    settings_cls = getattr(module, settings_name)
    known = {f.name for f in dataclasses.fields(settings_cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"generator {name!r} has no setting {', '.join(map(repr, unknown))}; "
                          f"its settings are: {', '.join(sorted(known))}")
    return getattr(module, cls_name)(settings_cls(**settings))


def check_available(name: str, config: Any) -> None:
    """Check, without loading anything heavy, that generator ``name`` can run with ``config``.

    Only unCLIP needs files beyond this package: its diffusion weights (and the optional
    blur-robust CLIP encoder folder) must be present locally.

    Raises:
        ConfigError: unknown generator.
        ModelError: weights that are missing or incomplete, naming the folder.
    """
    _lookup(name)
    if str(name).strip().lower() == "unclip":
        from pathlib import Path

        from hiralign.errors import ModelError
        from hiralign.generate.unclip_weights import resolve_model

        resolve_model(getattr(config, "model", None), getattr(config, "local_files_only", True))
        encoder = getattr(config, "clip_encoder", None)
        if encoder and not Path(encoder).expanduser().is_dir():
            raise ModelError(f"CLIP encoder folder {encoder} does not exist (from `hiralign clip-finetune`)")


def default_generator_name(model: str | None = None) -> str:
    """``"unclip"`` when unCLIP weights are found locally (``model`` or the default), else ``"patchnn"``."""
    from hiralign.generate.unclip_weights import weights_available

    return "unclip" if weights_available(model) else "patchnn"


def _lookup(name: str) -> tuple[str, str, str]:
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise ConfigError(f"unknown generator {name!r}; choose one of: {', '.join(GENERATORS)}")
    return _REGISTRY[key]


__all__ = ["GENERATORS", "Generator", "check_available", "default_generator_name", "get_generator", "settings_class"]
