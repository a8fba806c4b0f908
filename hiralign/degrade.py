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

``sensor`` (beyond the paper; PROTOCOL.md) re-creates a real sensor's own noise: per band
var = a_b·μ + b_b with (a_b, b_b) from a :class:`~hiralign.noise.NoiseModel` estimated on
the captures (``hiralign noise``) and converted to the scale of the data degraded; without
a model (source pretraining) the parameters are drawn per image from
:data:`SENSOR_GAIN_RANGE` and :data:`SENSOR_READ_SIGMA_RANGE`.
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
from hiralign.noise import NoiseModel

if TYPE_CHECKING:  # torch is imported inside the functions so `hiralign --help` stays fast
    import torch

    from hiralign.cube import Cube

    Seed = Union[int, "torch.Generator"]  # noqa: UP007 - a runtime alias

#: Task names, in the order the paper's tables list them.
TASKS: tuple[str, ...] = ("gaussian", "complex", "sr4", "deblur", "bandmiss", "inpaint")
#: Tasks beyond the paper (real captures).
SENSOR_TASKS: tuple[str, ...] = ("sensor",)
#: Every task :func:`degrade` accepts.
ALL_TASKS: tuple[str, ...] = TASKS + SENSOR_TASKS

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
#: ``sensor`` without a noise model (source pretraining), on data normalised to a robust peak
#: near 1: the Poisson gain a is drawn per image log-uniformly from this range. It covers the
#: IMEC captures normalised by their 99.9th percentile (a ≈ 0.05–0.27 counts over ~200 counts:
#: 2.5e-4–1.4e-3) and their 4× noisier/darker variants (up to ~6e-3), with margin both ways.
SENSOR_GAIN_RANGE: tuple[float, float] = (1e-4, 3e-2)
#: ... and the read-noise σ = sqrt(b), log-uniformly per image: from below the IMEC captures'
#: ~1–4 counts over ~200 (0.005–0.02) up to the ``gaussian`` task's 70/255.
SENSOR_READ_SIGMA_RANGE: tuple[float, float] = (2e-3, 70 / 255)
#: Per band, a and sqrt(b) are the image's values times a factor log-uniform in [1/x, x]
#: (real sensors' bands differ: the IMEC captures' σ_b spans 3–5 counts).
SENSOR_BAND_SPREAD: float = 1.5


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
    "sensor": Degradation(
        "sensor", "Sensor noise (Poisson–Gaussian)",
        "The sensor's own noise: per band variance a_b·μ + b_b (μ the clean value), with (a_b, b_b) "
        "estimated from the captures by `hiralign noise` on the data's own scale and stored with the "
        "run; without an estimate (source pretraining) a ~ logU(1e-4, 3e-2) and √b ~ logU(0.002, "
        "70/255) per image on data with a peak near 1, times logU(1/1.5, 1.5) per band."),
}


def check_task(task: str) -> str:
    """Return ``task`` if it is known, else raise :class:`ConfigError` listing the tasks."""
    if task not in DEGRADATIONS:
        raise ConfigError(f"unknown degradation task {task!r}: choose one of {', '.join(ALL_TASKS)}")
    return task


def scale_factor(task: str) -> int:
    """Spatial down-scaling of ``task``'s observation (4 for ``sr4``, 1 otherwise)."""
    return DEGRADATIONS[check_task(task)].scale


# ------------------------------------------------------------------------ public entry
def degrade(x: torch.Tensor, task: str, seed: Seed, noise: NoiseModel | dict | None = None) -> torch.Tensor:
    """Apply D_task to clean cubes.

    Args:
        x: (N, B, H, W) or (B, H, W) floating-point tensor, values nominally in [0, 1], on
            any device.
        task: one of :data:`ALL_TASKS`.
        seed: an int, or a ``torch.Generator`` (which advances; pass one to get fresh
            degradations every training step).
        noise: ``sensor`` only: the B-band noise model **on the scale of x** (convert with
            :meth:`~hiralign.noise.NoiseModel.on_scale`), or its ``to_dict``; None draws
            random parameters (source pretraining).

    Returns:
        A new tensor of ``x``'s dtype, device and rank: same shape, except ``sr4`` which
        returns the (…, H/4, W/4) low-resolution cube.

    Raises:
        ConfigError: unknown task, unusable seed, or a noise model given to another task.
        InputError: wrong rank, non-float dtype, or a size the task cannot handle
            (``sr4`` needs H and W divisible by 4; ``deblur`` needs H, W ≥ 8), or a noise
            model with another band count.
    """
    import torch

    check_task(task)
    if noise is not None and task != "sensor":
        raise ConfigError(f"a noise model is only used by the sensor task, not by {task}")
    if not isinstance(x, torch.Tensor):
        raise InputError(f"degrade expects a torch tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        raise InputError(f"degrade expects a (N, B, H, W) or (B, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(f"degrade expects a floating-point tensor, got {x.dtype}")
    single = x.ndim == 3
    batch = x.unsqueeze(0) if single else x
    if task == "sensor":
        out = _sensor(batch, seed, as_noise_model(noise))
    else:
        out = _OPERATORS[task](batch, seed)
    return out.squeeze(0) if single else out


def as_noise_model(noise: NoiseModel | dict | None) -> NoiseModel | None:
    """``noise`` as a :class:`~hiralign.noise.NoiseModel` (from its dict form), or None."""
    if noise is None or isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, dict):
        return NoiseModel.from_dict(noise)
    raise ConfigError(f"a sensor noise model must be a NoiseModel or its dict, not {type(noise).__name__}")


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


def degrade_cube(cube: Cube, task: str, seed: Seed, *, device: str | torch.device = "cpu",
                 noise: NoiseModel | dict | None = None) -> Cube:
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
        noise: ``sensor`` only: a noise model on any scale (e.g. counts from ``hiralign
            noise``); it is converted to the loaded cube's scale through its ``scale``.

    Returns:
        The observed cube (low resolution for ``sr4``), named ``<name>_<task>``.
    """
    check_task(task)
    cropped = crop_to_scale(cube, task)
    if cropped is not cube:
        warnings.warn(f"{cube.name}: {cube.height}×{cube.width} is not a multiple of {scale_factor(task)}; "
                      f"cropped to {cropped.height}×{cropped.width} (bottom/right) before {task}; crop "
                      "the reference the same way", stacklevel=2)
    model = as_noise_model(noise)
    loaded = model.on_scale(1.0, "loaded") if model is not None else None
    observed = degrade(cropped.to_torch(device), task, seed, noise=loaded)
    result = cube.from_torch(observed, like=cropped, name=f"{cube.name}_{task}")
    result.metadata["degradation"] = {
        "task": task,
        "seed": seed if isinstance(seed, int) else "generator",
        "cropped_to": [cropped.height, cropped.width] if cropped is not cube else None,
    }
    if model is not None:
        result.metadata["degradation"]["noise"] = model.to_dict()
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


def _sensor(x: torch.Tensor, seed: Seed, noise: NoiseModel | None) -> torch.Tensor:
    """Per band var = a_b·max(μ, 0) + b_b, as heteroscedastic Gaussian noise.

    The Gaussian form has exactly the model's variance; it differs from a true Poisson draw
    only by the skew 1/sqrt(μ/a), below 0.1 at the IMEC captures' mean levels, and costs a
    13th of ``torch.poisson`` (6 vs 80 ms for a 16×16×64×64 batch on one CPU thread).
    """
    import torch

    n, bands = x.shape[:2]
    gens = image_generators(seed, n, x.device)
    if noise is not None:
        if noise.n_bands != bands:
            raise InputError(f"the sensor noise model has {noise.n_bands} bands but the data has {bands}")
        a = torch.tensor(noise.a, device=x.device, dtype=x.dtype).view(1, bands, 1, 1)
        b = torch.tensor(noise.b, device=x.device, dtype=x.dtype).view(1, bands, 1, 1)
    else:
        a, b = torch.empty((n, bands, 1, 1), device=x.device, dtype=x.dtype), torch.empty_like(x[:, :, :1, :1])
    out = torch.empty_like(x)
    for i, gen in enumerate(gens):
        if noise is None:
            a[i], b[i] = _random_sensor(gen, bands, x)
        out[i].normal_(generator=gen)
    return out.mul_((a * x.clamp(min=0) + b).sqrt_()).add_(x)


def _random_sensor(gen: torch.Generator, bands: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's (B, 1, 1) gain a and read variance b, log-uniform (source pretraining)."""
    log_u = _uniform(gen, (2,), 0.0, 1.0, like=like)
    a0 = _log_uniform(log_u[0], SENSOR_GAIN_RANGE)
    s0 = _log_uniform(log_u[1], SENSOR_READ_SIGMA_RANGE)
    spread = math.log(SENSOR_BAND_SPREAD)
    fa, fs = (_uniform(gen, (2, bands, 1, 1), -spread, spread, like=like)).exp()
    return a0 * fa, (s0 * fs) ** 2


def _log_uniform(u: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    low, high = math.log(bounds[0]), math.log(bounds[1])
    return (low + (high - low) * u).exp()


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


def downsampling_matrices(task: str, height: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The separable matrices of a noise-free linear down-sampling task, None for any other.

    ``sr4``'s observation of an (H, W) band x is exactly R x Cᵀ (what :func:`_sr4` computes);
    :mod:`hiralign.consistency` projects restorations onto the cubes it maps to the observation.

    Returns:
        (R (H/4, H), C (W/4, W)) float64 for ``sr4``; None for tasks with noise or no down-sampling.
    """
    if check_task(task) != "sr4":
        return None
    return imresize.imresize_matrix(height, 1 / SR_FACTOR), imresize.imresize_matrix(width, 1 / SR_FACTOR)


_OPERATORS = {
    "gaussian": _gaussian,
    "complex": _complex,
    "sr4": _sr4,
    "deblur": _deblur,
    "bandmiss": _bandmiss,
    "inpaint": _inpaint,
}
