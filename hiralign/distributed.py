"""``hiralign adapt`` over several processes, GPUs or machines, with torch.distributed.

The launcher is an existing one — ``torchrun`` or Hugging Face ``accelerate launch`` (which
runs torchrun underneath for ``--multi_gpu``)::

    torchrun --nproc_per_node 4 -m hiralign adapt --target scenes/*.mat --task gaussian --out RUN
    accelerate launch --multi_gpu --num_processes 4 -m hiralign adapt --target … --out RUN

Both start one process per GPU (or per CPU slot) and describe it in the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
:func:`process_group` reads that description, joins the process group (NCCL on CUDA,
gloo on CPU), pins the process to ``cuda:LOCAL_RANK`` and returns the
:class:`Workers` the pipeline shards its per-image stages with. Aligned
finetuning wraps the restorer in :class:`~torch.nn.parallel.DistributedDataParallel`
(:func:`data_parallel`): every process samples its own patches (seed + rank), gradients are
averaged, only rank 0 writes the checkpoint, and each rank keeps its own resumable
training state (:func:`rank_state_path`, :func:`agree_on_resume`).

The launcher command line of a run (``launch.sh``) is written by :mod:`hiralign.launch`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from hiralign.errors import ConfigError

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

log = logging.getLogger(__name__)

#: How long a process waits at a barrier for the others. Per-image stages are sharded
#: round-robin, so a rank can wait a whole image (a large warp) for a slower one.
DEFAULT_TIMEOUT = datetime.timedelta(hours=6)
#: Environment variable overriding :data:`DEFAULT_TIMEOUT`, in minutes.
TIMEOUT_ENV = "HIRALIGN_DIST_TIMEOUT_MIN"


@dataclasses.dataclass(frozen=True)
class Workers:
    """This process's place among the processes sharing a run (1 of 1 when alone).

    Attributes:
        rank: index of this process.
        size: number of processes.
        barrier: waits until every process reached it.
        device: the device this process must compute on (``cuda:LOCAL_RANK`` in a
            multi-GPU job, see :func:`process_group`); None follows the config.
    """

    rank: int = 0
    size: int = 1
    barrier: Callable[[], None] = lambda: None
    device: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[Any]) -> list[Any]:
        """Round-robin share of ``items`` handled by this process (each item exactly once)."""
        return list(items[self.rank::self.size])

    def todo(self, stage: str, items: Sequence[Any], done: Callable[[Any], bool]) -> list[Any]:
        """This process's share of ``items`` that are not ``done`` yet.

        Sharding comes first: every rank shares the same full list, so a fast rank's fresh
        outputs cannot shift a slower rank's share (each item is handled exactly once).
        """
        mine = [item for item in self.share(items) if not done(item)]
        if self.size > 1:
            log.info("%s: rank %d of %d handles %s", stage, self.rank, self.size,
                     ", ".join(_item_label(item) for item in mine) or "nothing")
        return mine


def _item_label(item: Any) -> str:
    # (index, name) of per-target stages, (name, guide) of the warp stage
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str):
        return item[1]
    if isinstance(item, tuple) and len(item) == 2:
        return f"{item[0]}_g{item[1]}"
    return str(item)


@dataclasses.dataclass(frozen=True)
class LaunchEnvironment:
    """What the launcher told this process about its place in the job.

    Attributes:
        rank: global index of this process, 0 … world_size − 1.
        world_size: number of processes in the job (all machines).
        local_rank: index of this process on its machine (selects its GPU).
    """

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LaunchEnvironment | None:
        """The environment torchrun/accelerate set, or None when not launched by one.

        Raises:
            ConfigError: the variables are present but inconsistent.
        """
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" not in env or "RANK" not in env:
            return None
        try:
            world = int(env["WORLD_SIZE"])
            rank = int(env["RANK"])
            local = int(env.get("LOCAL_RANK", rank))
        except ValueError:
            raise ConfigError(f"distributed launch variables are not integers: RANK={env.get('RANK')!r}, "
                              f"WORLD_SIZE={env.get('WORLD_SIZE')!r}, LOCAL_RANK={env.get('LOCAL_RANK')!r}") from None
        if world < 1 or not 0 <= rank < world or local < 0:
            raise ConfigError(f"inconsistent distributed launch: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
        return cls(rank=rank, world_size=world, local_rank=local)


def process_device(requested: str, local_rank: int) -> torch.device:
    """The device of one process: ``cuda:LOCAL_RANK`` when CUDA is asked for or auto-chosen.

    A user-given ``cuda:N`` is respected (one process per machine on a chosen GPU).
    """
    import torch

    from hiralign.device import resolve_device

    device = resolve_device(requested)
    if device.type != "cuda" or (str(requested).startswith("cuda:")):
        return device
    if local_rank >= torch.cuda.device_count():
        raise ConfigError(f"process with LOCAL_RANK {local_rank} has no GPU of its own "
                          f"({torch.cuda.device_count()} visible); start at most that many processes per machine")
    return torch.device("cuda", local_rank)


def _timeout() -> datetime.timedelta:
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        return datetime.timedelta(minutes=float(text))
    except ValueError:
        raise ConfigError(f"{TIMEOUT_ENV}={text!r} is not a number of minutes") from None


@contextlib.contextmanager
def process_group(device: str = "auto", environ: Mapping[str, str] | None = None) -> Iterator[Workers]:
    """Join the job this process was launched into; yield its :class:`Workers`.

    Outside a launcher (or with one process) this yields the single-process
    ``Workers()`` and touches nothing. Inside, it initialises torch.distributed from the
    launcher's ``env://`` variables — NCCL when this process computes on CUDA, gloo on the
    CPU — prefixes log lines with the rank, and tears the group down on exit.

    Args:
        device: the run's device setting ("auto", "cpu", "cuda", "cuda:N").
        environ: the environment to read (default ``os.environ``).
    """
    launch = LaunchEnvironment.from_env(environ)
    if launch is None or launch.world_size == 1:
        yield Workers()
        return
    import torch
    import torch.distributed as dist

    torch_device = process_device(device, launch.local_rank)
    backend = "nccl" if torch_device.type == "cuda" else "gloo"
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)  # "cuda" (e.g. a generator's auto device) now means this GPU
    already = dist.is_initialized()
    if not already:
        dist.init_process_group(backend=backend, init_method="env://", rank=launch.rank,
                                world_size=launch.world_size, timeout=_timeout(),
                                **({"device_id": torch_device} if backend == "nccl" else {}))
    _prefix_logs(launch)
    log.info("process %d of %d (local %d) on %s, backend %s", launch.rank, launch.world_size,
             launch.local_rank, torch_device, dist.get_backend())

    def barrier() -> None:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch_device.index])
        else:
            dist.barrier()

    try:
        yield Workers(rank=launch.rank, size=launch.world_size, barrier=barrier, device=str(torch_device))
    finally:
        if not already and dist.is_initialized():
            dist.destroy_process_group()


def _prefix_logs(launch: LaunchEnvironment) -> None:
    tag = f"[rank {launch.rank}/{launch.world_size}] "
    for handler in logging.getLogger().handlers:
        fmt = handler.formatter._fmt if handler.formatter is not None else "%(levelname)s: %(message)s"
        if not fmt.startswith("[rank "):
            handler.setFormatter(logging.Formatter(tag + fmt))


# ------------------------------------------------------------------ finetuning
def data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``model`` (already on ``device``) for data-parallel training across the group.

    Construction broadcasts rank 0's weights; every backward pass averages the gradients,
    so all ranks take identical optimiser steps on different patches. The wrapped module
    shares its parameters with ``model``: save ``model`` (not the wrapper) afterwards.
    """
    from torch.nn.parallel import DistributedDataParallel

    model.to(device)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def rank_state_path(state_path: str | Path, rank: int) -> Path:
    """This rank's training-state file beside the single-process one.

    ``RUN/finetune_state.pt`` becomes ``RUN/finetune_state.rank1.pt``: each rank resumes
    its own patch and degradation random streams.
    """
    path = Path(state_path)
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def saved_step(state_path: str | Path) -> int | None:
    """The step a saved training state reached, or None when there is none (or it is unreadable)."""
    import torch

    path = Path(state_path)
    if not path.is_file():
        return None
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except Exception:  # noqa: BLE001 - the training loop reports a damaged file itself
        return None


def agree_on_resume(state_path: Path, workers: Workers) -> int | None:
    """Make every rank resume from the same step, or all start over.

    Ranks save their states at the same steps, but a cancellation or crash can leave them a
    step apart; resumed from different steps, one rank would finish early and the others
    would wait for it forever. When the saved steps differ, every rank deletes its state.

    Returns:
        The common step resumed from, or None when training starts over.
    """
    import torch.distributed as dist

    mine = saved_step(state_path)
    steps: list[int | None] = [None] * workers.size
    dist.all_gather_object(steps, mine)
    if len(set(steps)) == 1:
        return mine
    log.warning("the ranks' saved training states are at different steps %s; finetuning starts over", steps)
    state_path.unlink(missing_ok=True)
    workers.barrier()
    return None
