"""The one training loop, shared by source pretraining and aligned finetuning (Eqs. 27–30).

Every step draws clean patches from a :class:`~hiralign.patches.PatchSampler`, applies a
random flip/rotation, degrades them with :func:`hiralign.degrade.degrade` using a fresh
draw (the degradation is re-drawn every time a patch is sampled), and takes one Adam step
on the L1 loss between the restorer's output and the clean patch; the learning rate
follows a cosine decay over a fixed step budget.

The loop reports progress and the running loss, stops cleanly when the progress says
cancel (after saving its state), and resumes bit-for-bit from that state: model,
optimiser, scheduler, both random generators, the step count and the history are saved
atomically every ``state_every`` steps, on cancel and at the end.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hiralign.errors import ConfigError, InputError
from hiralign.patches import PatchSampler, augment
from hiralign.progress import Cancelled, Progress, as_progress

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from hiralign.cube import Cube
    from hiralign.noise import NoiseModel

log = logging.getLogger(__name__)

#: Layout version of the saved training state.
STATE_VERSION = 1
LOSSES = ("l1", "l2")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (all of them are recorded with the result).

    Attributes:
        task: degradation task (:data:`hiralign.degrade.TASKS`).
        steps: fixed step budget.
        batch_size: patches per step.
        patch_size: side of the clean (high-resolution) patches, pixels.
        lr: initial Adam learning rate.
        lr_min: learning rate reached at the last step (cosine decay).
        weight_decay: Adam L2 weight decay.
        loss: ``"l1"`` (the restoration community's default for HSI) or ``"l2"``.
        grad_clip: maximum gradient norm (0 = no clipping).
        augment: random flips and 90° rotations.
        seed: seeds the patch sampling and the degradations.
        log_every: steps between loss previews.
        state_every: steps between saved training states (0 = only on cancel and at the end).
        validate_every: steps between validation PSNRs (0 = only at the end).
        noise: ``sensor`` task only: the targets' :class:`~hiralign.noise.NoiseModel` **on
            the scale the network sees** (e.g. ``model.on_scale(1 / s, "normalised")`` for
            cubes normalised by s), or its dict; None draws random sensor parameters
            (source pretraining). Recorded in ``to_dict`` as JSON.
    """

    task: str
    steps: int = 1000
    batch_size: int = 16
    patch_size: int = 64
    lr: float = 1e-3
    lr_min: float = 1e-5
    weight_decay: float = 0.0
    loss: str = "l1"
    grad_clip: float = 1.0
    augment: bool = True
    seed: int = 0
    log_every: int = 10
    state_every: int = 100
    validate_every: int = 0
    noise: NoiseModel | None = None

    def __post_init__(self) -> None:
        from hiralign.degrade import as_noise_model, check_task, scale_factor

        check_task(self.task)
        if self.noise is not None and self.task != "sensor":
            raise ConfigError(f"a noise model is only used by the sensor task, not by {self.task}")
        object.__setattr__(self, "noise", as_noise_model(self.noise))  # a dict from JSON becomes a model
        if self.steps < 0 or self.batch_size < 1 or self.patch_size < 4:
            raise ConfigError(f"need steps ≥ 0, batch size ≥ 1 and patch size ≥ 4 "
                              f"(got {self.steps}, {self.batch_size}, {self.patch_size})")
        if self.patch_size % scale_factor(self.task):
            raise ConfigError(f"patch size {self.patch_size} must be a multiple of {scale_factor(self.task)} "
                              f"for task {self.task}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose {' or '.join(LOSSES)}")
        if not (self.lr > 0 and 0 <= self.lr_min <= self.lr):
            raise ConfigError(f"need lr > 0 and 0 ≤ lr_min ≤ lr (got {self.lr}, {self.lr_min})")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["noise"] = self.noise.to_dict() if self.noise is not None else None
        return d


@dataclasses.dataclass(frozen=True)
class ValidationSet:
    """Fixed (degraded, clean) pairs scored by PSNR during training.

    Attributes:
        degraded: (N, B, h, w) observations (``h = H / scale``).
        clean: (N, B, H, W) references.
    """

    degraded: torch.Tensor
    clean: torch.Tensor


@dataclasses.dataclass
class TrainResult:
    """What a training run did.

    Attributes:
        steps: steps completed in total (including those before a resume).
        losses: loss of every step, in order.
        validation: (step, mean PSNR dB) pairs.
        wall_s: seconds spent training, summed over resumed sessions.
        seconds_per_step: mean wall time of a step in this session.
        resumed_from: step the run resumed from (0 when it started fresh).
    """

    steps: int
    losses: list[float]
    validation: list[tuple[int, float]]
    wall_s: float
    seconds_per_step: float
    resumed_from: int = 0

    @property
    def final_loss(self) -> float:
        """Mean loss of the last 5 % of the steps (NaN without steps)."""
        tail = self.losses[-max(1, len(self.losses) // 20):]
        return sum(tail) / len(tail) if tail else math.nan

    @property
    def final_psnr(self) -> float | None:
        return self.validation[-1][1] if self.validation else None

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "final_loss": self.final_loss, "final_val_psnr": self.final_psnr,
                "validation": [list(v) for v in self.validation], "wall_s": round(self.wall_s, 2),
                "seconds_per_step": round(self.seconds_per_step, 4), "resumed_from": self.resumed_from}


def make_validation_set(cubes: Sequence[Cube], task: str, seed: int = 0, size: int = 128,
                        noise: NoiseModel | dict | None = None) -> ValidationSet:
    """Centre crops (side ``size``, or less for small cubes) degraded once with ``seed``.

    ``noise`` is the ``sensor`` task's model on the scale of the cubes' data (as in
    :attr:`TrainConfig.noise`).
    """
    import torch

    from hiralign.degrade import degrade, scale_factor

    if not cubes:
        raise InputError("the validation set is empty")
    scale = scale_factor(task)
    side = min(size, *(min(c.height, c.width) for c in cubes))
    side -= side % scale
    clean = torch.stack([_centre_crop(c.to_torch(), side) for c in cubes])
    return ValidationSet(degraded=degrade(clean, task, seed, noise=noise), clean=clean)


def validate(model: nn.Module, validation: ValidationSet, device: torch.device) -> float:
    """Mean PSNR (dB) of ``model`` on the validation pairs, one image at a time."""
    import torch

    from hiralign.metrics import psnr

    was_training = model.training
    model.eval()
    scores = []
    with torch.no_grad():
        for degraded, clean in zip(validation.degraded, validation.clean):
            out = model(degraded.unsqueeze(0).to(device))
            scores.append(float(psnr(out.cpu(), clean.unsqueeze(0))[0]))
    model.train(was_training)
    return sum(scores) / len(scores)


def train(
    model: nn.Module,
    sampler: PatchSampler,
    config: TrainConfig,
    progress: Progress | None = None,
    *,
    validation: ValidationSet | None = None,
    state_path: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
) -> TrainResult:
    """Train ``model`` in place for ``config.steps`` steps.

    Args:
        model: the restorer, (N, B, h, w) → (N, B, h·s, w·s); moved to ``device``.
        sampler: source of clean patches.
        config: the run's settings.
        progress: receives ``report`` per step, ``preview("loss", {...})`` every
            ``log_every`` steps and ``preview("validation", {...})``; its ``check`` cancels.
        validation: optional fixed pairs scored every ``validate_every`` steps and at the end.
        state_path: file for the resumable training state (None: no state is saved).
        resume: continue from ``state_path`` when it exists (its settings must match).
        device: "auto", "cpu", "cuda" or a torch device.

    Returns:
        The run's :class:`TrainResult`; the model is left in eval mode on ``device``.

    Raises:
        Cancelled: cancelled through ``progress``; the state (if any) is saved first.
        ConfigError: patches larger than the data, or a saved state from other settings.
    """
    import torch

    from hiralign.degrade import degrade
    from hiralign.device import configure_torch, resolve_device

    configure_torch()
    progress = as_progress(progress)
    device = device if isinstance(device, torch.device) else resolve_device(device)
    if config.patch_size > sampler.min_side:
        raise ConfigError(f"patch size {config.patch_size} is larger than the smallest training cube "
                          f"({sampler.min_side} pixels); use a smaller --patch-size")
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.steps),
                                                           eta_min=config.lr_min)
    patch_gen = torch.Generator("cpu").manual_seed(config.seed)
    degrade_gen = torch.Generator("cpu").manual_seed(config.seed + 1)
    run = _RunState(losses=[], validation=[], wall_s=0.0, step=0)
    state_file = Path(state_path) if state_path is not None else None
    if resume and state_file is not None and state_file.is_file():
        run = _load_state(state_file, config, model, optimizer, scheduler, patch_gen, degrade_gen)
        log.info("resuming training at step %d of %d from %s", run.step, config.steps, state_file)
    start_step = run.step

    def save() -> None:
        if state_file is not None:
            _save_state(state_file, config, run, model, optimizer, scheduler, patch_gen, degrade_gen)

    loss_fn = torch.nn.functional.l1_loss if config.loss == "l1" else torch.nn.functional.mse_loss
    session_began = session_start = time.perf_counter()
    running = run.losses[-1] if run.losses else None
    try:
        while run.step < config.steps:
            progress.check()
            clean = sampler.sample(config.batch_size, config.patch_size, patch_gen)
            if config.augment:
                clean = augment(clean, patch_gen)
            clean = clean.to(device, non_blocking=True)
            with torch.no_grad():
                degraded = degrade(clean, config.task, degrade_gen, noise=config.noise)
            loss = loss_fn(model(degraded), clean)
            if not torch.isfinite(loss):
                raise ConfigError(f"the training loss became {float(loss)} at step {run.step + 1}; "
                                  "lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            run.step += 1
            value = float(loss.detach())
            run.losses.append(value)
            running = value if running is None else 0.95 * running + 0.05 * value
            progress.report(run.step, config.steps, f"step {run.step}/{config.steps} loss {running:.4f}")
            if run.step % max(1, config.log_every) == 0 or run.step == config.steps:
                progress.preview("loss", {"step": run.step, "loss": running,
                                          "lr": scheduler.get_last_lr()[0]})
            if validation is not None and config.validate_every and run.step % config.validate_every == 0 \
                    and run.step < config.steps:
                _record_validation(run, model, validation, device, progress)
            if config.state_every and run.step % config.state_every == 0 and run.step < config.steps:
                run.wall_s += _lap(session_start)
                session_start = time.perf_counter()
                save()
        if validation is not None and (not run.validation or run.validation[-1][0] != run.step):
            _record_validation(run, model, validation, device, progress)
    except (Cancelled, KeyboardInterrupt):
        run.wall_s += _lap(session_start)
        save()
        model.eval()
        raise
    run.wall_s += _lap(session_start)
    save()
    model.eval()
    session_s = _lap(session_began)
    done = run.step - start_step
    return TrainResult(steps=run.step, losses=list(run.losses), validation=list(run.validation),
                       wall_s=run.wall_s, seconds_per_step=session_s / done if done else 0.0,
                       resumed_from=start_step)


@dataclasses.dataclass
class _RunState:
    losses: list[float]
    validation: list[tuple[int, float]]
    wall_s: float
    step: int


def _record_validation(run: _RunState, model: nn.Module, validation: ValidationSet,
                       device: torch.device, progress: Progress) -> None:
    score = validate(model, validation, device)
    run.validation.append((run.step, score))
    log.info("step %d: validation PSNR %.2f dB", run.step, score)
    progress.preview("validation", {"step": run.step, "psnr": score})


def _lap(start: float) -> float:
    return time.perf_counter() - start


def _centre_crop(tensor: torch.Tensor, side: int) -> torch.Tensor:
    top = (tensor.shape[-2] - side) // 2
    left = (tensor.shape[-1] - side) // 2
    return tensor[..., top:top + side, left:left + side]


#: Settings that may change between a cancelled run and its resumption.
_RESUMABLE_CHANGES = ("log_every", "state_every", "validate_every")


def _save_state(path: Path, config: TrainConfig, run: _RunState, model, optimizer, scheduler,
                patch_gen, degrade_gen) -> None:
    import torch

    from hiralign.atomic import atomic_path

    state = {"version": STATE_VERSION, "config": config.to_dict(), "step": run.step, "losses": run.losses,
             "validation": run.validation, "wall_s": run.wall_s, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "patch_rng": patch_gen.get_state(), "degrade_rng": degrade_gen.get_state()}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        # through a file object torch chains the OSError of a short write (ENOSPC, EFBIG);
        # given a path it reports only RuntimeError("unexpected pos …") and the reason is lost
        torch.save(state, handle)


def _load_state(path: Path, config: TrainConfig, model, optimizer, scheduler, patch_gen, degrade_gen) -> _RunState:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file raises many kinds of errors
        raise ConfigError(f"cannot read the training state {path}: {type(exc).__name__}: {exc}; "
                          "delete it to start over") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ConfigError(f"{path} is not a training state of this hiralign version; delete it to start over")
    saved = state["config"]
    differs = [k for k, v in config.to_dict().items() if k not in _RESUMABLE_CHANGES and saved.get(k) != v]
    if differs:
        detail = ", ".join(f"{k}: {saved.get(k)!r} → {getattr(config, k)!r}" for k in differs)
        raise ConfigError(f"cannot resume from {path}: settings changed ({detail}); "
                          "use the original settings or start over without resuming")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ConfigError(f"the training state {path} does not fit this model: {str(exc).splitlines()[0]}") from None
    scheduler.load_state_dict(state["scheduler"])
    patch_gen.set_state(state["patch_rng"])
    degrade_gen.set_state(state["degrade_rng"])
    return _RunState(losses=[float(v) for v in state["losses"]],
                     validation=[(int(s), float(p)) for s, p in state["validation"]],
                     wall_s=float(state["wall_s"]), step=int(state["step"]))
