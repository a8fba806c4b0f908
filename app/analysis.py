"""Per-target analyses the window runs in the background when a cube is loaded (no Qt here).

- :func:`model_notes`: what a run with the selected source model will do to the cube
  (bands fed index by index, resampled or taken as they are; intensity normalisation),
  from :func:`hiralign.quality.input_notes` with the model's own checkpoint config.
- :func:`target_analysis`: those notes plus the blind noise analysis of the cube
  (:func:`hiralign.noise.analyse`: σ per band and the Poisson–Gaussian fit a·μ + b), the
  same estimate a ``sensor`` run makes.

Both run inside a job's worker (:mod:`app.jobs`); a 256×512×16 capture takes well under a
second, but that is still far too long for the GUI thread.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hiralign.cube import Cube
from hiralign.errors import HiralignError


@dataclasses.dataclass(frozen=True)
class TargetAnalysis:
    """What the window learns about one loaded cube.

    Attributes:
        notes: sentences on how the run will treat the cube (empty: nothing unexpected).
        noise: the :class:`hiralign.noise.NoiseAnalysis`, or None when it failed.
        noise_error: why the noise analysis failed ("" when it did not).
        model: the folder the notes were made for (None: no model selected).
        task: the task the notes were made for.
    """

    notes: tuple[str, ...] = ()
    noise: Any = None
    noise_error: str = ""
    model: str | None = None
    task: str = ""


def model_notes(cube: Cube, task: str, model_folder: str | Path | None) -> list[str]:
    """:func:`hiralign.quality.input_notes` for the checkpoint in ``model_folder``.

    The model's band set comes from its ``config.json``; whether it is band-agnostic from
    its class (built without weights, as the stages decide it). A folder that cannot be
    read yields one note saying so instead of raising: the run's own check reports it in full.
    """
    from hiralign.quality import input_notes

    if model_folder is None:
        return []
    try:
        from hiralign.models.build import build_from_config, is_band_agnostic
        from hiralign.models.checkpoint import read_config

        ckpt = read_config(model_folder)
        agnostic = is_band_agnostic(build_from_config(ckpt, Path(model_folder)))
    except HiralignError as exc:
        return [f"{cube.name}: the source model cannot be read ({exc})"]
    return input_notes(cube, task, bands=ckpt.bands, wavelengths=ckpt.wavelengths, band_agnostic=agnostic,
                       model=Path(model_folder).name)


def target_analysis(cube: Cube, task: str, model_folder: str | Path | None, noise: bool = True) -> TargetAnalysis:
    """The model notes and (with ``noise``) the blind noise analysis of ``cube``."""
    from hiralign.noise import analyse

    result, error = None, ""
    if noise:
        try:
            result = analyse(cube)
        except HiralignError as exc:  # e.g. a cube smaller than 2×2 or with NaN: say why, plot nothing
            error = str(exc)
    return TargetAnalysis(notes=tuple(model_notes(cube, task, model_folder)), noise=result, noise_error=error,
                          model=None if model_folder is None else str(model_folder), task=task)


def availability() -> dict[str, Any]:
    """What this machine can run: ``{"cuda", "bm4d", "bm3d": bool, "generators": {name: why not ("" when it can)}}``.

    Checked once in the background after start-up (importing torch takes seconds), so the
    pipeline panel can grey out a generator without weights and a CUDA device without a GPU
    instead of offering them as if they worked.
    """
    import torch

    from hiralign.classical import bm3d_available
    from hiralign.ensemble import bm4d_available
    from hiralign.generate import GENERATORS, check_available, settings_class

    generators: dict[str, str] = {}
    for name in GENERATORS:
        try:
            check_available(name, settings_class(name)())
            generators[name] = ""
        except HiralignError as exc:
            generators[name] = str(exc)
    return {"cuda": bool(torch.cuda.is_available()), "bm4d": bm4d_available(), "bm3d": bm3d_available(),
            "generators": generators}
