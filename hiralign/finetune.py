"""Stage 3 (paper Sec. III-C, Eqs. 27–30): aligned supervised finetuning.

Proxies p_i and synthesized cubes ỹ_ij become training targets; the training loop
re-degrades every sampled patch with the task's D_task, so the restorer sees aligned pairs
(D_task(p_i), p_i) and (D_task(ỹ_ij), ỹ_ij). Patches come from the synthesized group with
probability r/(r+1) and from the proxies with 1/(r+1) (the ratio r of Table VII), or from
one group alone for the Table VI ablations.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.patches import CubeSampler, PatchSampler, WeightedCubeSampler
from hiralign.progress import Progress
from hiralign.train import TrainConfig, TrainResult, ValidationSet, train

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from hiralign.noise import NoiseModel

#: The replay weight of ``source_replay=None`` where it applies (classical proxies).
AUTO_REPLAY = 0.33
#: Which training pairs finetuning uses (Table VI rows).
MODES = ("hiralign", "proxy-only", "generated-only")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Settings of aligned finetuning.

    Attributes:
        steps: finetuning step budget (equal for every compared row of a benchmark).
        ratio: r, synthesized:proxy sampling ratio (paper default 3, Table VII; 0 = proxies only).
        mode: training pairs: hiralign (proxies + synthesized), proxy-only or generated-only
            (the Table VI ablations).
        batch_size: patches per step.
        patch_size: clean patch side in pixels.
        lr: initial Adam learning rate (lower than pretraining: the model is adapted, not relearned).
        lr_min: final learning rate of the cosine decay.
        seed: patch sampling and degradation seed.
        source_replay: weight of patches from the source model's own synthetic source set
            (:mod:`hiralign.replay`) against the target pairs' 1 (0.33: a quarter of every
            batch); 0: target pairs only (the paper). None (auto, the default): ``hiralign
            adapt`` replays at 0.33 when its proxies are a classical denoiser's (the network
            then restores new captures, not the targets) and not at all with model proxies
            (sr4: the network is the targets' restoration); a bare :func:`finetune` does not
            replay. Measured in docs/benchmarks.md, "Session 6: source replay".
    """

    steps: int = 400
    ratio: float = 3.0
    mode: str = "hiralign"
    batch_size: int = 16
    patch_size: int = 64
    lr: float = 2e-4
    lr_min: float = 1e-6
    seed: int = 0
    source_replay: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown finetuning mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.ratio < 0:
            raise ConfigError(f"the synthesized:proxy ratio must be ≥ 0 (got {self.ratio})")
        if self.source_replay is not None and (not isinstance(self.source_replay, (int, float))
                                               or not 0 <= float(self.source_replay) <= 100):
            raise ConfigError(f"source_replay must be a weight in [0, 100] or None (got {self.source_replay!r})")

    @property
    def pairs(self) -> str:
        """Which training pairs this finetune really uses: the one place the mode is decided.

        ``"hiralign"`` with ratio 0 samples no synthesized patch, so it is ``"proxy-only"``
        (and needs no guides); otherwise the mode as set.
        """
        if self.mode == "hiralign" and self.ratio == 0:
            return "proxy-only"
        return self.mode

    def train_config(self, task: str, noise: NoiseModel | None = None) -> TrainConfig:
        """The training-loop settings this finetune runs with.

        Args:
            task: the degradation task replayed on every patch.
            noise: ``sensor`` only: the targets' noise model on the scale of the training
                cubes (the network's, :func:`hiralign.intensity.noise_on_network_scale`).
        """
        return TrainConfig(task=task, steps=self.steps, batch_size=self.batch_size,
                           patch_size=self.patch_size, lr=self.lr, lr_min=self.lr_min, seed=self.seed,
                           state_every=max(50, self.steps // 4), noise=noise)


def aligned_sampler(proxies: Sequence[Cube], synthesized: Sequence[Cube], config: FinetuneConfig,
                    replay: Sequence[Cube] = ()) -> PatchSampler:
    """The patch sampler of Eq. 29: synthesized and proxy cubes mixed at ratio r.

    With ``replay`` cubes and ``config.source_replay`` > 0, those aligned pairs get weight 1
    and the replayed source cubes ``source_replay``.

    Raises:
        InputError: the mode needs a group that is empty.
    """
    target = _target_sampler(proxies, synthesized, config)
    if replay and (config.source_replay or 0) > 0:
        return WeightedCubeSampler([(target, 1.0), (CubeSampler(list(replay), name="source cubes"),
                                                    float(config.source_replay))])
    return target


def _target_sampler(proxies: Sequence[Cube], synthesized: Sequence[Cube], config: FinetuneConfig) -> PatchSampler:
    if config.pairs == "proxy-only":
        return CubeSampler(list(proxies), name="proxies")
    if config.pairs == "generated-only":
        return CubeSampler(list(synthesized), name="synthesized cubes")
    if not synthesized:
        raise InputError("HIR-ALIGN finetuning needs synthesized cubes; run the warp stage first "
                         "or choose mode proxy-only")
    return WeightedCubeSampler([(CubeSampler(list(synthesized), name="synthesized cubes"), config.ratio),
                                (CubeSampler(list(proxies), name="proxies"), 1.0)])


def finetune(
    model: nn.Module,
    task: str,
    proxies: Sequence[Cube],
    synthesized: Sequence[Cube],
    config: FinetuneConfig = FinetuneConfig(),
    *,
    validation: ValidationSet | None = None,
    state_path: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
    noise: NoiseModel | None = None,
    replay: Sequence[Cube] = (),
) -> TrainResult:
    """Finetune ``model`` in place on aligned pairs built from proxies and synthesized cubes.

    Args:
        model: the source restorer (N, B, h, w) → (N, B, h·s, w·s).
        task: degradation task replayed on every patch.
        proxies: proxy cubes p_i (H, W, B) from stage 1.
        synthesized: synthesized cubes ỹ_ij (H, W, B) from stage 2.
        config: finetuning settings.
        validation: optional fixed pairs scored at the end (e.g. clean targets when known).
        state_path: resumable training-state file.
        resume: continue from ``state_path``.
        device: where to train.
        progress: per-step progress with the running loss; cancellable.
        noise: ``sensor`` only: the noise model D_task draws from, on the scale of the
            proxies and synthesized cubes (the network's normalised scale).
        replay: source cubes on the proxies' bands (:func:`hiralign.replay.replay_cubes`),
            drawn with weight ``config.source_replay``; none: target pairs only.

    Returns:
        The training loop's :class:`~hiralign.train.TrainResult`.
    """
    sampler = aligned_sampler(proxies, synthesized, config, replay)
    patch = min(config.patch_size, sampler.min_side)
    from hiralign.degrade import scale_factor

    patch -= patch % scale_factor(task)
    if patch != config.patch_size:
        config = dataclasses.replace(config, patch_size=patch)
    return train(model, sampler, config.train_config(task, noise), progress, validation=validation,
                 state_path=state_path, resume=resume, device=device)
