"""The task operators D_task of PROTOCOL.md: the one degradation implementation.

Evaluation (degrading clean target cubes into observations) and aligned finetuning
(replaying the degradation on proxies and synthesized cubes every step) both call
:func:`degrade`, so the restorer is trained on exactly the corruption it is tested on.

Every operator is a pure function of a (N, B, H, W) or (B, H, W) float tensor and a seed;
it runs on the tensor's device, fully vectorised over images and bands (only the random
draws are made image by image, so that they do not depend on the batch).

Randomness: image ``i`` of a batch draws all its random numbers, in a fixed order, from
its own generator, whose seed is the ``i``-th number drawn from the generator of ``seed``.
Hence image 0 degraded alone and image 0 of any batch get the same degradation, and a
fixed seed gives the same result on a given device. CPU and CUDA generators differ, so
observations are only reproducible across machines on the same device type; the CLI and
:func:`degrade_cube` therefore default to the CPU.

Values are **not** clipped to [0, 1]: the community's simulations (e.g. QRNN3D, SERT,
MP-HSIR) leave Gaussian noise and stripes unclipped, and clipping would bias the noise
of dark bands. Bicubic resampling may overshoot slightly, as MATLAB's ``imresize`` does.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import TYPE_CHECKING, Union

import numpy as np

from hiralign import imresize
from hiralign.errors import ConfigError, InputError
from hiralign.imresize import apply_separable, resize_bicubic

if TYPE_CHECKING:  # torch is imported inside the functions so `hiralign --help` stays fast
    import torch

    from hiralign.cube import Cube

    Seed = Union[int, "torch.Generator"]  # noqa: UP007 - a runtime alias

#: Task names, in the order the paper's tables list them.
TASKS: tuple[str, ...] = ("gaussian", "complex", "sr4", "deblur", "bandmiss", "inpaint")

#: Per-band noise standard deviation range of ``gaussian`` (and ``complex``), on [0, 1] data.
NOISE_SIGMA_RANGE: tuple[float, float] = (10 / 255, 70 / 255)
#: Fraction of the columns of a band hit by stripes (``complex``), drawn per band.
STRIPE_COLUMN_FRACTION: tuple[float, float] = (0.05, 0.15)
#: Each striped column is offset by U(-STRIPE_OFFSET, STRIPE_OFFSET).
STRIPE_OFFSET: float = 0.25
#: Fraction of the columns of a band set to 0 (``complex`` deadlines), drawn per band.
DEADLINE_COLUMN_FRACTION: tuple[float, float] = (0.05, 0.15)
#: Salt-and-pepper amounts of ``complex``; one is drawn per band (half salt, half pepper).
IMPULSE_AMOUNTS: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7)
#: Down-sampling factor of ``sr4``.
SR_FACTOR: int = 4
#: ``deblur`` kernel size and σ (OpenCV's default σ for that size: 0.3·((k−1)/2 − 1) + 0.8 = 2.6).
BLUR_KERNEL_SIZE: int = 15
BLUR_SIGMA: float = 0.3 * ((BLUR_KERNEL_SIZE - 1) / 2 - 1) + 0.8
#: Fraction of the bands ``bandmiss`` sets to 0 (rounded to a whole number of bands).
BANDMISS_FRACTION: float = 0.3
#: Probability that ``inpaint`` sets a voxel to 0.
INPAINT_FRACTION: float = 0.9


@dataclasses.dataclass(frozen=True)
class Degradation:
    """What a task does, for the GUI and the docs.

    Attributes:
        name: the task name used everywhere (CLI ``--task``, configs, model folders).
        title: a short human title.
        description: one or two sentences with the parameters.
        scale: spatial down-scaling of the observation (4 for ``sr4``, else 1).
        random: whether the result depends on the seed.
    """

    name: str
    title: str
    description: str
    scale: int = 1
    random: bool = True


DEGRADATIONS: dict[str, Degradation] = {
    "gaussian": Degradation(
        "gaussian", "Non-i.i.d. Gaussian noise",
        "Zero-mean Gaussian noise with a standard deviation drawn per band from U(10, 70)/255."),
    "complex": Degradation(
        "complex", "Complex (mixture) noise",
        "Non-i.i.d. Gaussian noise on all bands, then on three disjoint random thirds of the "
        "bands: stripes (5–15 % of the columns offset by U(−0.25, 0.25)), deadlines (5–15 % of "
        "the columns set to 0) and salt-and-pepper impulse noise (amount 0.1, 0.3, 0.5 or 0.7)."),
    "sr4": Degradation(
        "sr4", "×4 super-resolution",
        "Bicubic ×4 down-sampling with anti-aliasing, as MATLAB imresize(x, 1/4); the observation "
        "is the low-resolution cube.", scale=SR_FACTOR, random=False),
    "deblur": Degradation(
        "deblur", "Deblurring",
        f"Gaussian blur of every band with a {BLUR_KERNEL_SIZE}×{BLUR_KERNEL_SIZE} kernel, "
        f"σ = {BLUR_SIGMA:.1f} px, mirrored borders.", random=False),
    "bandmiss": Degradation(
        "bandmiss", "Band completion",
        "30 % of the bands (chosen at random per image) set to 0."),
    "inpaint": Degradation(
        "inpaint", "Inpainting",
        "Each voxel is set to 0 with probability 0.9."),
}


def check_task(task: str) -> str:
    """Return ``task`` if it is known, else raise :class:`ConfigError` listing the tasks."""
    if task not in DEGRADATIONS:
        raise ConfigError(f"unknown degradation task {task!r}: choose one of {', '.join(TASKS)}")
    return task


def scale_factor(task: str) -> int:
    """Spatial down-scaling of ``task``'s observation (4 for ``sr4``, 1 otherwise)."""
    return DEGRADATIONS[check_task(task)].scale


# ------------------------------------------------------------------------ public entry
def degrade(x: torch.Tensor, task: str, seed: Seed) -> torch.Tensor:
    """Apply D_task to clean cubes.

    Args:
        x: (N, B, H, W) or (B, H, W) floating-point tensor, values nominally in [0, 1], on
            any device.
        task: one of :data:`TASKS`.
        seed: an int, or a ``torch.Generator`` (which advances; pass one to get fresh
            degradations every training step).

    Returns:
        A new tensor of ``x``'s dtype, device and rank: same shape, except ``sr4`` which
        returns the (…, H/4, W/4) low-resolution cube.

    Raises:
        ConfigError: unknown task or unusable seed.
        InputError: wrong rank, non-float dtype, or a size the task cannot handle
            (``sr4`` needs H and W divisible by 4; ``deblur`` needs H, W ≥ 8).
    """
    import torch

    check_task(task)
    if not isinstance(x, torch.Tensor):
        raise InputError(f"degrade expects a torch tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        raise InputError(f"degrade expects a (N, B, H, W) or (B, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(f"degrade expects a floating-point tensor, got {x.dtype}")
    single = x.ndim == 3
    batch = x.unsqueeze(0) if single else x
    out = _OPERATORS[task](batch, seed)
    return out.squeeze(0) if single else out


def crop_to_scale(cube: Cube, task: str) -> Cube:
    """Crop ``cube`` at its bottom/right to a multiple of ``scale_factor(task)`` (no-op if it is).

    Use it on the clean reference when the observation came from :func:`degrade_cube`,
    which crops the same way.
    """
    s = scale_factor(task)
    h, w = (cube.height // s) * s, (cube.width // s) * s
    if (h, w) == (cube.height, cube.width):
        return cube
    if h == 0 or w == 0:
        raise InputError(f"{cube.name}: a {cube.height}×{cube.width} image is too small for {task} "
                         f"(needs at least {s}×{s} pixels)")
    return cube.crop(0, 0, h, w)


def degrade_cube(cube: Cube, task: str, seed: Seed, *, device: str | torch.device = "cpu") -> Cube:
    """Degrade a :class:`~hiralign.cube.Cube` (what ``hiralign degrade`` does).

    For ``sr4``, an image whose height or width is not a multiple of 4 is first cropped
    at its bottom/right edge to one, with a warning (crop the reference the same way with
    :func:`crop_to_scale`). Wavelengths and band metadata are kept; ``metadata
    ["degradation"]`` records the task and seed.

    Args:
        cube: the clean cube.
        task: one of :data:`TASKS`.
        seed: int or ``torch.Generator``.
        device: where to compute; the default CPU makes observations identical on every
            machine (CPU and CUDA random generators differ).

    Returns:
        The observed cube (low resolution for ``sr4``), named ``<name>_<task>``.
    """
    check_task(task)
    cropped = crop_to_scale(cube, task)
    if cropped is not cube:
        warnings.warn(f"{cube.name}: {cube.height}×{cube.width} is not a multiple of {scale_factor(task)}; "
                      f"cropped to {cropped.height}×{cropped.width} (bottom/right) before {task}; crop "
                      "the reference the same way", stacklevel=2)
    observed = degrade(cropped.to_torch(device), task, seed)
    result = cube.from_torch(observed, like=cropped, name=f"{cube.name}_{task}")
    result.metadata["degradation"] = {
        "task": task,
        "seed": seed if isinstance(seed, int) else "generator",
        "cropped_to": [cropped.height, cropped.width] if cropped is not cube else None,
    }
    return result


# --------------------------------------------------------------------------- randomness
def image_generators(seed: Seed, n: int, device: torch.device) -> list[torch.Generator]:
    """One generator on ``device`` per image, seeded from ``seed`` in image order.

    The ``i``-th generator depends only on ``seed`` and ``i``, never on ``n``.
    """
    import torch

    if isinstance(seed, torch.Generator):
        base = seed
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        base = torch.Generator("cpu").manual_seed(int(seed))
    else:
        raise ConfigError(f"a degradation seed must be an int or a torch.Generator, not {type(seed).__name__}")
    # One draw per image so that image i's seed never depends on how many follow it.
    seeds = [int(torch.randint(0, 2**62, (1,), generator=base, device=base.device)) for _ in range(n)]
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]


def _uniform(gen: torch.Generator, shape: tuple[int, ...], low: float, high: float,
             like: torch.Tensor) -> torch.Tensor:
    import torch

    u = torch.rand(shape, generator=gen, device=like.device, dtype=like.dtype)
    return low + (high - low) * u


def _column_counts(width: int, fractions: tuple[float, float]) -> tuple[int, int]:
    """Inclusive range of column counts for a fraction range of ``width`` (at least 1)."""
    low = max(1, math.ceil(fractions[0] * width))
    return low, max(low, math.floor(fractions[1] * width))


def _random_columns(gen: torch.Generator, bands: int, width: int, fractions: tuple[float, float],
                    device: torch.device) -> torch.Tensor:
    """(bands, width) bool: per band, a uniformly random set of 5–15 % (say) of the columns."""
    import torch

    low, high = _column_counts(width, fractions)
    counts = torch.randint(low, high + 1, (bands, 1), generator=gen, device=device)
    ranks = torch.rand((bands, width), generator=gen, device=device).argsort(dim=1).argsort(dim=1)
    return ranks < counts


# ----------------------------------------------------------------------------- noises
def _fill_gaussian(gen: torch.Generator, noise: torch.Tensor) -> None:
    """Fill one image's (B, H, W) buffer with σ_b · n, σ_b ~ U(10, 70)/255, n ~ N(0, 1)."""
    sigma = _uniform(gen, (noise.shape[0], 1, 1), *NOISE_SIGMA_RANGE, like=noise)
    noise.normal_(generator=gen).mul_(sigma)


def _gaussian(x: torch.Tensor, seed: Seed) -> torch.Tensor:
    import torch

    # Random numbers are written in place into one batch buffer: no per-image tensors to stack.
    noise = torch.empty_like(x)
    for gen, buf in zip(image_generators(seed, x.shape[0], x.device), noise):
        _fill_gaussian(gen, buf)
    return noise.add_(x)


def _complex(x: torch.Tensor, seed: Seed) -> torch.Tensor:
    import torch

    n, bands, height, width = x.shape
    third = bands // 3
    amounts_table = torch.tensor(IMPULSE_AMOUNTS, device=x.device, dtype=x.dtype)
    noise, uniforms = torch.empty_like(x), torch.empty_like(x)
    offsets = torch.zeros((n, bands, width), device=x.device, dtype=x.dtype)
    deadlines = torch.zeros((n, bands, width), device=x.device, dtype=torch.bool)
    amounts = torch.zeros((n, bands), device=x.device, dtype=x.dtype)
    for i, gen in enumerate(image_generators(seed, n, x.device)):
        _fill_gaussian(gen, noise[i])
        order = torch.randperm(bands, generator=gen, device=x.device)
        stripe_bands, deadline_bands, impulse_bands = (order[k * third:(k + 1) * third] for k in range(3))
        # Stripes: per band a random 5–15 % of the columns, each with its own offset.
        stripe_cols = _random_columns(gen, third, width, STRIPE_COLUMN_FRACTION, x.device)
        stripe_val = _uniform(gen, (third, width), -STRIPE_OFFSET, STRIPE_OFFSET, like=x) * stripe_cols
        offsets[i, stripe_bands] = stripe_val
        deadlines[i, deadline_bands] = _random_columns(gen, third, width, DEADLINE_COLUMN_FRACTION, x.device)
        picks = torch.randint(0, len(IMPULSE_AMOUNTS), (third,), generator=gen, device=x.device)
        amounts[i, impulse_bands] = amounts_table[picks]
        # One uniform per voxel decides both "hit" (u < amount) and salt vs pepper (u < amount/2).
        uniforms[i].uniform_(generator=gen)
    out = noise.add_(x).add_(offsets[:, :, None, :])
    out.masked_fill_(deadlines[:, :, None, :], 0.0)
    amount = amounts[:, :, None, None]
    out.masked_fill_(uniforms < amount, 0.0)
    return out.masked_fill_(uniforms < amount / 2, 1.0)


def _bandmiss(x: torch.Tensor, seed: Seed) -> torch.Tensor:
    import torch

    n, bands = x.shape[:2]
    missing = int(round(BANDMISS_FRACTION * bands))
    gens = image_generators(seed, n, x.device)
    ranks = torch.stack([torch.randperm(bands, generator=g, device=x.device) for g in gens])
    return x.masked_fill((ranks < missing)[:, :, None, None], 0.0)


def _inpaint(x: torch.Tensor, seed: Seed) -> torch.Tensor:
    import torch

    u = torch.empty_like(x)
    for gen, buf in zip(image_generators(seed, x.shape[0], x.device), u):
        buf.uniform_(generator=gen)
    return x.masked_fill(u < INPAINT_FRACTION, 0.0)


# ------------------------------------------------------------------------- blur and SR
def gaussian_kernel_1d(size: int = BLUR_KERNEL_SIZE, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The ``deblur`` task's (size,) separable Gaussian factor (see :mod:`hiralign.imresize`)."""
    return imresize.gaussian_kernel_1d(size, sigma)


def blur_matrix(length: int, size: int = BLUR_KERNEL_SIZE, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The ``deblur`` task's (length, length) blur matrix (see :mod:`hiralign.imresize`)."""
    return imresize.blur_matrix(length, size, sigma)


def _deblur(x: torch.Tensor, seed: Seed) -> torch.Tensor:  # noqa: ARG001 - deterministic task
    height, width = x.shape[-2:]
    radius = BLUR_KERNEL_SIZE // 2
    if min(height, width) <= radius:
        raise InputError(f"deblur needs images of at least {radius + 1}×{radius + 1} pixels, "
                         f"got {height}×{width}")
    return apply_separable(x, blur_matrix(height), blur_matrix(width))


def _sr4(x: torch.Tensor, seed: Seed) -> torch.Tensor:  # noqa: ARG001 - deterministic task
    height, width = x.shape[-2:]
    if height % SR_FACTOR or width % SR_FACTOR:
        raise InputError(f"sr4 needs a height and width divisible by {SR_FACTOR}, got {height}×{width}; "
                         "crop the cube first (degrade_cube and the CLI do)")
    return resize_bicubic(x, 1 / SR_FACTOR)


_OPERATORS = {
    "gaussian": _gaussian,
    "complex": _complex,
    "sr4": _sr4,
    "deblur": _deblur,
    "bandmiss": _bandmiss,
    "inpaint": _inpaint,
}
