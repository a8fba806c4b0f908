"""Data consistency for noise-free observation tasks (``sr4``, ``bandmiss``, ``inpaint``; beyond the paper).

An ``sr4`` observation is exactly y = A x: each band bicubic-shrunk ×1/4, A x = R x Cᵀ, with
no noise (:func:`hiralign.degrade.downsampling_matrices`). A restoration x̂ that A does not
map back to y is wrong in at least the part A sees; the cube nearest to x̂ that A maps
exactly to y is the orthogonal projection

    x̂ + A⁺ (y − A x̂),   A⁺ = Aᵀ (A Aᵀ)⁻¹ = R⁺ ⊗ C⁺,

iterative back-projection (Irani & Peleg, 1991) solved in one exact step. The true scene lies
in that affine set, so the projection is never farther from it than x̂ (in the L2 norm), and
it changes nothing A cannot see. Measured (docs/benchmarks.md, "Session 11"): the shipped
``sr4`` model's 8-view proxies KAIST 43.53 → 44.55 dB, CAVE 32.03 → 32.15 dB; the adapted
restoration 44.45 → 45.08 and 32.36 → 32.47 dB; 0.03 s per 256²×31 cube. It holds only where the
observation really is that degradation of the scene (a simulated ``sr4`` target); a noisy
capture gets its noise back as grain on the 4-pixel grid (5.5 % RMS on a real IMEC capture), and
:attr:`hiralign.config.AdaptConfig.consistency` turns it off.

``bandmiss`` and ``inpaint`` observe part of the scene exactly and zero the rest (whole bands,
single values). Their projection keeps what was observed: every band of ``bandmiss`` that is
not all zero, every non-zero value of ``inpaint``, taken from the observation; the restoration
fills only the rest. A scene value that happens to be 0 is read as missing and left to the
restoration, so the set projected onto still holds the scene. Unlike ``sr4`` this does not
survive resampling the bands (a resampled zero band is no longer zero): it is applied only
against an observation on the restoration's own bands (:func:`survives_band_resampling`).
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from hiralign.errors import InputError

if TYPE_CHECKING:
    from hiralign.cube import Cube


#: tasks whose observation keeps part of the scene exactly and zeroes the rest
MASKING_TASKS: tuple[str, ...] = ("bandmiss", "inpaint")


def applies(task: str) -> bool:
    """Whether ``task``'s observation is noise-free, so outputs can be projected onto it
    (``sr4``, ``bandmiss``, ``inpaint``)."""
    from hiralign.degrade import downsampling_matrices

    return task in MASKING_TASKS or downsampling_matrices(task, 4, 4) is not None


def survives_band_resampling(task: str) -> bool:
    """Whether a projection made on resampled bands still holds: True for ``sr4`` (spatial and
    spectral interpolation commute), False for the masking tasks (which values are observed
    is lost when bands are interpolated)."""
    return task not in MASKING_TASKS


def observed_mask(observed: np.ndarray, task: str) -> np.ndarray:
    """Which values of an (H, W, B) ``bandmiss`` / ``inpaint`` observation were observed.

    Returns:
        bool array broadcastable to ``observed``: (1, 1, B) per band for ``bandmiss`` (a band
        is missing when all of it is zero), (H, W, B) per value for ``inpaint``.
    """
    if task == "bandmiss":
        return np.any(observed != 0, axis=(0, 1), keepdims=True)
    return observed != 0


@functools.lru_cache(maxsize=8)  # a 4096-pixel axis holds 32 MB: a few image sizes per session
def _inverse(task: str, length: int) -> np.ndarray:
    """(length, length/4) right pseudo-inverse Mᵀ(MMᵀ)⁻¹ of ``task``'s down-sampling along one axis."""
    from hiralign.degrade import downsampling_matrices

    matrix = downsampling_matrices(task, length, length)[0]
    # full row rank: every low-resolution pixel has taps of its own
    return np.linalg.solve(matrix @ matrix.T, matrix).T


def _separable(data: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """rows · band · colsᵀ for every band of an (H, W, B) array, as float32 (h, w, B): the
    degradation's own separable operator (:func:`hiralign.imresize.apply_separable`)."""
    import torch

    from hiralign.imresize import apply_separable

    bands_first = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).permute(2, 0, 1)
    return apply_separable(bands_first, rows, cols).permute(1, 2, 0).numpy()


def project_onto_observation(restored: np.ndarray, observed: np.ndarray, task: str) -> np.ndarray:
    """The cube nearest to ``restored`` that ``task``'s degradation maps exactly to ``observed``.

    Args:
        restored: (H, W, B) restoration (any scale: the projection is linear).
        observed: (H/4, W/4, B) ``sr4`` observation, or (H, W, B) ``bandmiss`` / ``inpaint``
            observation, on the same bands and scale.
        task: the degradation task; any task without a noise-free observation (:func:`applies`)
            returns ``restored`` unchanged.

    Returns:
        (H, W, B) float32 array (``restored`` itself where the task has nothing to project).

    Raises:
        InputError: the shapes do not fit the task's down-sampling.
    """
    from hiralign.degrade import downsampling_matrices

    if task in MASKING_TASKS:
        return _keep_observed(restored, observed, task)
    matrices = downsampling_matrices(task, restored.shape[0], restored.shape[1])
    if matrices is None:
        return restored
    rows, cols = matrices
    expected = (rows.shape[0], cols.shape[0], restored.shape[2])
    if observed.shape != expected:
        raise InputError(f"the {task} observation is {observed.shape[0]}×{observed.shape[1]}×{observed.shape[2]}, "
                         f"but the {restored.shape[0]}×{restored.shape[1]}×{restored.shape[2]} restoration "
                         f"down-samples to {expected[0]}×{expected[1]}×{expected[2]}")
    data = np.asarray(restored, dtype=np.float32)
    residual = np.asarray(observed, dtype=np.float32) - _separable(data, rows, cols)
    return data + _separable(residual, _inverse(task, restored.shape[0]), _inverse(task, restored.shape[1]))


def _keep_observed(restored: np.ndarray, observed: np.ndarray, task: str) -> np.ndarray:
    """The masking tasks' projection: the observed values replace the restoration's."""
    if observed.shape != restored.shape:
        raise InputError(f"the {task} observation is {'×'.join(map(str, observed.shape))}, but the restoration is "
                         f"{'×'.join(map(str, restored.shape))}: {task} keeps the size and the bands")
    observed = np.asarray(observed, dtype=np.float32)
    return np.where(observed_mask(observed, task), observed, np.asarray(restored, dtype=np.float32))


def consistent_cube(restored: Cube, observed: Cube, task: str, *, resampled: bool = False) -> Cube:
    """:func:`project_onto_observation` of two cubes; ``restored`` itself where nothing is projected.

    Args:
        resampled: ``observed`` is the capture resampled onto other bands (a fixed-band model's
            grid): the masking tasks then have nothing exact to keep and ``restored`` is returned.
    """
    if resampled and not survives_band_resampling(task):
        return restored
    data = project_onto_observation(restored.data, observed.data, task)
    return restored if data is restored.data else restored.with_data(data)
