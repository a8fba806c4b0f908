"""The application's state: the target set and every layer computed for each target.

A :class:`Target` holds the degraded cube (the user's file), its clean reference when
known, and the pipeline's results: proxy HSI (stage 1), guide RGBs (stage 2a), warp
results and synthesized HSIs (stage 2b), the cube restored by the adapted model and its
metrics (evaluation). Results replace a layer only when complete, and a new upstream
result clears what was derived from the old one, so a cancelled stage always leaves a
consistent set. The adapted checkpoint and the training history belong to the session.

All coordinates the views exchange are in a target's *reference frame*: the largest
(H, W) among its layers (for super-resolution the degraded cube is smaller and is
sampled at ``row * h // H``).
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from hiralign.cube import Cube

#: Display order and names of the per-target layers.
LAYER_ORDER = ("degraded", "proxy", "synth", "restored", "clean")

_UIDS = itertools.count(1)


@dataclasses.dataclass
class Target:
    """One target observation and everything derived from it.

    Attributes:
        degraded: the loaded (H, W, B) cube x_i.
        path: the file it came from (None for generated data).
        clean: the clean reference, when known (demo, or attached by the user).
        clean_path: the file the clean reference came from (for exported run configs).
        proxy: p_i = Φ_src(x_i), on the model's bands (what finetuning trains on).
        proxy_rgb: r_i = Γ(p_i) as the run folder stores it (16-bit), what Generate and
            Warp read.
        guides: generated guide RGBs g_ij, (H, W, 3) float32 in [0, 1].
        warps: warp results for each guide (same order), with ``synthesized``,
            ``transported_rgb``, ``coords``/``displacement`` (H, W, 2), ``diagnostics``.
        restored: the degraded cube restored by the adapted model.
        metrics: evaluation results (see :mod:`app.stages`).
        intensity: the run's intensity scale s (:class:`hiralign.intensity.IntensityScale`):
            the proxy and synthesized cubes are on the network's scale x / s, and are shown
            multiplied back by s so that every layer is on the target's scale.
        quality: the restoration's no-reference quality report
            (:func:`hiralign.quality.quality_report`: noise before/after, method noise,
            spectral drift, seams), as ``report.json`` records it.
        analysis: what the window learnt about the cube when it was loaded
            (:class:`app.analysis.TargetAnalysis`: notes on how the selected model will
            treat it, the blind noise analysis), or None until that job finished.
        uid: a stable identity; background results name their target by it, so a target
            removed while a stage runs simply drops its late results.
    """

    degraded: Cube
    path: Path | None = None
    clean: Cube | None = None
    clean_path: Path | None = None
    proxy: Cube | None = None
    proxy_rgb: np.ndarray | None = None
    guides: list[np.ndarray] = dataclasses.field(default_factory=list)
    warps: list[Any] = dataclasses.field(default_factory=list)
    restored: Cube | None = None
    metrics: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    intensity: Any = None
    analysis: Any = None
    uid: int = dataclasses.field(default_factory=lambda: next(_UIDS))
    _shown: dict[int, Cube] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.degraded.name

    @property
    def wavelengths(self) -> np.ndarray:
        return self.degraded.wavelengths_or_default()

    @property
    def synth(self) -> list[Cube]:
        """The synthesized HSIs ỹ_ij = T_ij p_i, one per warped guide (on the proxy's bands)."""
        if self.proxy is None:
            return []
        return [self.proxy.with_data(w.synthesized, name=f"{self.name} synth {j + 1}")
                for j, w in enumerate(self.warps)]

    def shown(self, cube: Cube) -> Cube:
        """``cube`` on this target's bands and scale, for display: a proxy or synthesized cube of a
        model with another band set is resampled onto the target's wavelengths, and one on the
        network's normalised scale is multiplied back by the run's intensity scale (cached)."""
        scaled = self.intensity is not None and not self.intensity.is_identity
        if cube.n_bands == self.degraded.n_bands and not scaled:
            return cube
        key = id(cube.data)  # the session replaces arrays, never edits them; setters clear the cache
        if key not in self._shown:
            from hiralign.bands import resample_bands
            from hiralign.intensity import denormalise

            out = cube if cube.n_bands == self.degraded.n_bands else resample_bands(cube, self.wavelengths)
            self._shown[key] = denormalise(out, self.intensity) if scaled else out
        return self._shown[key]

    def layers(self) -> list[tuple[str, Cube]]:
        """(label, cube) of every available layer, in display order, all on the target's bands."""
        out: list[tuple[str, Cube]] = [("degraded", self.degraded)]
        if self.proxy is not None:
            out.append(("proxy", self.shown(self.proxy)))
        out.extend((f"synth {j + 1}", self.shown(cube)) for j, cube in enumerate(self.synth))
        if self.restored is not None:
            out.append(("restored", self.restored))
        if self.clean is not None:
            out.append(("clean", self.clean))
        return out

    def layer(self, label: str) -> Cube | None:
        return dict(self.layers()).get(label)

    def reference_shape(self) -> tuple[int, int]:
        """(H, W) of the reference frame: the largest layer."""
        shapes = [c.shape[:2] for _, c in self.layers()]
        return max(shapes, key=lambda s: s[0] * s[1])

    def to_layer_pixel(self, cube: Cube, row: int, col: int) -> tuple[int, int]:
        """Map a reference-frame pixel into ``cube``'s own pixel grid."""
        ref_h, ref_w = self.reference_shape()
        return (min(row * cube.height // ref_h, cube.height - 1),
                min(col * cube.width // ref_w, cube.width - 1))

    def synth_pixel_from(self, j: int, row: int, col: int) -> tuple[int, int]:
        """The pixel of synthesized HSI ``j`` whose spectrum T_ij takes from proxy (row, col).

        T maps guide pixel u to the expected proxy coordinate c(u) (Eq. 18); the guide
        pixel whose c(u) lies nearest (row, col) is the one "T maps there".
        """
        coords = np.asarray(self.warps[j].coords, dtype=np.float32)
        dist = (coords[..., 0] - row) ** 2 + (coords[..., 1] - col) ** 2
        flat = int(np.argmin(dist))
        return divmod(flat, coords.shape[1])

    def spectra_at(self, row: int, col: int) -> list[tuple[str, np.ndarray, tuple[int, int]]]:
        """(label, spectrum (B,), pixel used) of every layer at reference pixel (row, col)."""
        out = []
        synth_index = 0
        for label, cube in self.layers():
            if label.startswith("synth"):
                r, c = self.synth_pixel_from(synth_index, row, col)
                synth_index += 1
            else:
                r, c = self.to_layer_pixel(cube, row, col)
            out.append((label, cube.data[r, c].copy(), (r, c)))
        return out


class Session(QObject):
    """The target set plus session-wide results, with change signals for the views.

    Signals:
        targets_changed: targets were added or removed.
        target_updated(int): a layer of target ``i`` changed.
        current_changed(int): the selected target changed (-1: none).
        training_updated: the loss history or adapted checkpoint changed.
    """

    targets_changed = Signal()
    target_updated = Signal(int)
    current_changed = Signal(int)
    training_updated = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[Target] = []
        self.current = -1
        self.task = "gaussian"
        #: Folder of the adapted checkpoint bundle written by the last finetune.
        self.adapted_checkpoint: Path | None = None
        #: Finetune loss history: list of (step, loss).
        self.loss_history: list[tuple[int, float]] = []

    # -- target set --------------------------------------------------------------------
    def add_target(self, cube: Cube, path: str | Path | None = None, clean: Cube | None = None,
                   clean_path: str | Path | None = None) -> int:
        self.targets.append(Target(degraded=cube, path=Path(path) if path else None, clean=clean,
                                   clean_path=Path(clean_path) if clean_path else None))
        self.targets_changed.emit()
        self.set_current(len(self.targets) - 1)
        return len(self.targets) - 1

    def remove_target(self, index: int) -> None:
        del self.targets[index]
        self.targets_changed.emit()
        self.set_current(min(self.current, len(self.targets) - 1))

    def clear(self) -> None:
        self.targets.clear()
        self.adapted_checkpoint = None
        self.loss_history = []
        self.targets_changed.emit()
        self.training_updated.emit()
        self.set_current(-1)

    def set_current(self, index: int) -> None:
        index = index if 0 <= index < len(self.targets) else (-1 if not self.targets else 0)
        if index != self.current:
            self.current = index
        self.current_changed.emit(self.current)

    def index_of(self, uid: int) -> int | None:
        """Index of the target with ``uid``, or None when it was removed."""
        return next((i for i, t in enumerate(self.targets) if t.uid == uid), None)

    @property
    def current_target(self) -> Target | None:
        return self.targets[self.current] if 0 <= self.current < len(self.targets) else None

    # -- layers: each setter invalidates what derived from the old value ----------------
    def set_clean(self, index: int, clean: Cube | None, path: str | Path | None = None) -> None:
        self.targets[index].clean = clean
        self.targets[index].clean_path = Path(path) if clean is not None and path else None
        self.targets[index].metrics = None
        self.target_updated.emit(index)

    def set_proxy(self, index: int, proxy: Cube, rgb: np.ndarray | None = None, intensity: Any = None) -> None:
        """A new proxy (and the RGB the run folder stores for it; Γ(proxy) when None), on the
        network's scale x / s for the run's intensity scale ``intensity`` (None: s = 1)."""
        target = self.targets[index]
        target.proxy, target.intensity = proxy, intensity
        target.proxy_rgb = rgb if rgb is not None else np.clip(proxy.pseudo_rgb(), 0, 1).astype(np.float32)
        target.guides, target.warps = [], []
        target.restored, target.metrics, target.quality = None, None, None
        target._shown.clear()
        self.target_updated.emit(index)

    def set_guides(self, index: int, guides: list[np.ndarray]) -> None:
        target = self.targets[index]
        target.guides = [np.asarray(g, dtype=np.float32) for g in guides]
        target.warps = []
        self.target_updated.emit(index)

    def set_warps(self, index: int, warps: list[Any]) -> None:
        self.targets[index].warps = list(warps)
        self.targets[index]._shown.clear()
        self.target_updated.emit(index)

    def set_evaluation(self, index: int, restored: Cube, metrics: dict[str, Any] | None) -> None:
        target = self.targets[index]
        target.restored, target.metrics, target.quality = restored, metrics, None
        self.target_updated.emit(index)

    def set_quality(self, index: int, report: dict[str, Any] | None) -> None:
        """The no-reference quality report of target ``index``'s restoration (after its evaluation)."""
        self.targets[index].quality = report
        self.target_updated.emit(index)

    def set_analysis(self, index: int, analysis: Any) -> None:
        """The load-time analysis of target ``index`` (:class:`app.analysis.TargetAnalysis`)."""
        self.targets[index].analysis = analysis
        self.target_updated.emit(index)

    def set_training(self, checkpoint: Path | None, loss_history: list[tuple[int, float]]) -> None:
        self.adapted_checkpoint = checkpoint
        self.loss_history = list(loss_history)
        for i, target in enumerate(self.targets):  # restorations of an older model are stale
            if target.restored is not None:
                target.restored, target.metrics, target.quality = None, None, None
                self.target_updated.emit(i)
        self.training_updated.emit()

    # -- queries -----------------------------------------------------------------------
    def has_clean_references(self) -> bool:
        return any(t.clean is not None for t in self.targets)
