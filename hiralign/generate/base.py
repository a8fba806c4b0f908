"""Pieces every guide generator shares: input checks, per-variation seeds, progress.

A generator turns one proxy RGB r_i (H, W, 3) float32 in [0, 1] into M guide RGBs g_ij of
the same size and dtype (paper Sec. III-B 1). Variation j is drawn from its own seed,
derived from the caller's seed and j, so asking for more variations never changes the
earlier ones and any single guide can be regenerated alone.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

from hiralign.errors import ConfigError, InputError
from hiralign.progress import Progress, as_progress, preview_image


def check_rgb(rgb: Any, what: str = "input RGB") -> np.ndarray:
    """Validate a guide generator's input.

    Args:
        rgb: (H, W, 3) array-like of values in [0, 1].
        what: how to name the array in messages (a file name when known).

    Returns:
        (H, W, 3) C-contiguous float32 array, clipped to [0, 1].

    Raises:
        InputError: wrong shape, too small, or non-finite values.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"{what}: expected an RGB image of shape (H, W, 3), got shape {arr.shape}")
    if min(arr.shape[:2]) < 8:
        raise InputError(f"{what}: image of {arr.shape[0]}×{arr.shape[1]} pixels is too small "
                         "to generate guides from (at least 8×8)")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{what}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise InputError(f"{what}: {bad} NaN/Inf values; clean the image first")
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0))


def check_count(n: Any) -> int:
    """Validate the number of variations ``n`` (a positive integer)."""
    try:
        value = int(n)
    except (TypeError, ValueError):
        raise ConfigError(f"number of variations must be a positive integer, got {n!r}") from None
    if value != n or value < 1:
        raise ConfigError(f"number of variations must be a positive integer, got {n!r}")
    return value


def variation_seeds(seed: int, n: int) -> list[int]:
    """Independent 32-bit seeds for variations 0..n-1 of one input.

    Seed j depends only on (seed, j): generating 5 variations reproduces the 3 of an
    earlier run with the same seed.
    """
    return [int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, j]).generate_state(1)[0]) for j in range(n)]


def finish_variation(progress: Progress | None, guide: np.ndarray) -> np.ndarray:
    """Clip a finished guide to float32 [0, 1] and offer it as a live preview."""
    guide = np.ascontiguousarray(np.clip(guide, 0.0, 1.0), dtype=np.float32)
    as_progress(progress).preview("guide", preview_image(guide))
    return guide


def settings_dict(settings: Any) -> dict[str, Any]:
    """A frozen settings dataclass as a JSON-friendly dict (for generate.json)."""
    import dataclasses

    out: dict[str, Any] = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        out[field.name] = list(value) if isinstance(value, tuple) else value
    return out


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch and FAISS CPU threads, restoring them after; 0 = as is."""
    if n <= 0:
        yield
        return
    import faiss
    import torch

    old_torch, old_faiss = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old_torch)
        faiss.omp_set_num_threads(old_faiss)


def generate_independent(rgb: Any, n: Any, seed: int, progress: Progress | None,
                         draw: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> list[np.ndarray]:
    """The loop of generators whose variations are single independent random draws.

    Args:
        rgb: (H, W, 3) input, checked with :func:`check_rgb`.
        n: number of variations.
        seed: base seed; variation j draws from ``default_rng(variation_seeds(seed, n)[j])``.
        progress: one unit per variation; checked before each.
        draw: makes one (H, W, 3) guide from the image and a random generator.
    """
    rgb = check_rgb(rgb)
    n = check_count(n)
    progress = as_progress(progress)
    guides = []
    for j, vseed in enumerate(variation_seeds(seed, n)):
        progress.check()
        guides.append(finish_variation(progress, draw(rgb, np.random.default_rng(vseed))))
        progress.report(j + 1, n, f"guide {j + 1}/{n}")
    return guides
