"""Source replay: patches of the source model's own synthetic source set mixed into finetuning.

Finetuning on two or three target scenes teaches the network their spectra as well as their
degradation; on captures it has not seen it then regresses towards the training scenes'
spectra (measured on KAIST ``complex``: adapted on scenes 01–02, scene 03 fell from 26.61 to
23.66 dB with per-band biases up to +0.08). Drawing a share of every batch from the source
set the model was pretrained on — rebuilt from the checkpoint's provenance, no file needed —
keeps the spectral variety of pretraining in the finetune (rehearsal, the classic remedy for
forgetting). See :attr:`hiralign.finetune.FinetuneConfig.source_replay` for the measured
trade-off.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any, Mapping, Sequence

import numpy as np

from hiralign.cube import Cube

log = logging.getLogger(__name__)

#: At most this many source cubes are rebuilt (24 cubes of 128² took 11.6 s here, 2 threads).
MAX_REPLAY_CUBES = 24
#: Target bands may lie this far (nm) outside the source grid before replay is refused.
EDGE_TOLERANCE_NM = 10.0


@dataclasses.dataclass(frozen=True)
class ReplaySet:
    """The replay cubes of one finetune, or why there are none.

    Attributes:
        cubes: (H, W, B) source cubes on the training cubes' bands; empty when unavailable.
        note: what was built ("24 source cubes, 31 bands index-wise") or why nothing was.
    """

    cubes: tuple[Cube, ...]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"cubes": len(self.cubes), "note": self.note}


def source_set_config(provenance: Mapping[str, Any]) -> dict[str, Any] | None:
    """The :class:`hiralign.source.SourceConfig` fields a checkpoint was pretrained with.

    Follows ``source_provenance`` through adapted and finetuned checkpoints down to the
    pretrained one; None when no link records a synthetic source set.
    """
    seen = 0
    while isinstance(provenance, Mapping) and seen < 16:
        source = provenance.get("source")
        if isinstance(source, Mapping) and isinstance(source.get("config"), Mapping):
            return dict(source["config"])
        provenance = provenance.get("source_provenance")
        seen += 1
    return None


def replay_cubes(provenance: Mapping[str, Any], like: Sequence[Cube]) -> ReplaySet:
    """Rebuild the source set of ``provenance`` on the bands of the training cubes ``like``.

    Same band count as the source grid: used band by band, as the model's own bands (the
    way :func:`hiralign.bands.match_bands` feeds such targets). Otherwise each source cube
    (the fine 380–780 nm grid for band-agnostic models) is linearly resampled onto the
    training cubes' wavelengths; refused when those reach more than
    :data:`EDGE_TOLERANCE_NM` beyond the source grid (no spectra to replay there).

    Args:
        provenance: the source checkpoint's provenance (or an adapted one's).
        like: the proxies the finetune trains on; their band count and wavelengths.

    Returns:
        The :class:`ReplaySet`; its ``cubes`` are empty (with the reason in ``note``) when
        the source set is unknown or does not cover the bands.
    """
    from hiralign.errors import HiralignError
    from hiralign.source import SourceConfig

    fields = source_set_config(provenance)
    if fields is None:
        return ReplaySet((), "the source model's provenance records no synthetic source set")
    known = {f.name for f in dataclasses.fields(SourceConfig)}
    try:
        config = SourceConfig(**{k: v for k, v in fields.items() if k in known})
    except (TypeError, HiralignError) as exc:
        return ReplaySet((), f"the recorded source set settings are unusable ({exc})")
    config = dataclasses.replace(config, n=min(config.n, MAX_REPLAY_CUBES))
    grid = config.wavelengths
    bands = like[0].n_bands
    if bands == len(grid):
        wavelengths, note = None, f"{config.n} source cubes, {bands} bands band by band"
    else:
        wavelengths = like[0].wavelengths_or_default()
        low, high = float(np.min(wavelengths)), float(np.max(wavelengths))
        if low < grid[0] - EDGE_TOLERANCE_NM or high > grid[-1] + EDGE_TOLERANCE_NM:
            return ReplaySet((), f"the training cubes' bands ({low:.0f}–{high:.0f} nm) reach beyond the source "
                                 f"set's {grid[0]:.0f}–{grid[-1]:.0f} nm")
        note = f"{config.n} source cubes resampled from {len(grid)} to {bands} bands ({low:.0f}–{high:.0f} nm)"
    try:
        cubes = _rebuilt(config, None if wavelengths is None else tuple(float(w) for w in wavelengths))
    except HiralignError as exc:
        return ReplaySet((), f"the source set could not be rebuilt ({exc})")
    log.info("source replay: %s", note)
    return ReplaySet(cubes, note)


def replay_for(weight: float, provenance: Mapping[str, Any], like: Sequence[Cube]) -> ReplaySet:
    """What a finetune at replay ``weight`` draws: nothing at 0, else :func:`replay_cubes`,
    with a warning when no source set can be replayed (the finetune then goes on without)."""
    if weight <= 0 or not like:
        return ReplaySet((), "off (source_replay 0)")
    replay = replay_cubes(provenance, like)
    if not replay.cubes:
        log.warning("finetuning without source replay: %s", replay.note)
    return replay


@functools.lru_cache(maxsize=1)  # one set kept: a GUI re-run or a test suite rebuilds it once
def _rebuilt(config: Any, wavelengths: tuple[float, ...] | None) -> tuple[Cube, ...]:
    from hiralign.bands import resample_bands
    from hiralign.source import make_source_cubes

    cubes = make_source_cubes(config)
    if wavelengths is not None:
        cubes = [resample_bands(c, np.asarray(wavelengths)) for c in cubes]
    return tuple(cubes)
