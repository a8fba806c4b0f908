"""The GUI's stage jobs: thin adapters from the session's snapshot to :mod:`hiralign.stages`.

Each ``run_*`` function runs inside a job's worker (see :mod:`app.jobs`). It first runs
:func:`hiralign.stages.preflight` on the chain it starts (a whole *Run all* is checked by
its first job) and claims the session's run folder, so nothing is written before every
problem has been reported; then it calls the same per-item stage functions as
``hiralign adapt`` and hands each finished item to ``progress.partial(kind, value)`` so the
views fill in while the stage runs. Nothing here knows about Qt or threads.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hiralign import stages
from hiralign.config import AdaptConfig
from hiralign.cube import Cube
from hiralign.progress import Progress, SubProgress
from hiralign.runfolder import RunFolder

#: The window's stage buttons in order (Evaluate = restore with the adapted model + score).
STAGES = ("proxy", "generate", "warp", "finetune", "evaluate")


@dataclasses.dataclass(frozen=True)
class StageRun:
    """What one stage job needs, snapshot on the GUI thread.

    Attributes:
        config: the run's settings (the pipeline panel's :class:`AdaptConfig`).
        run: the session's run folder (claimed by the job, after its preflight).
        record: the folder's ``config.json`` record.
        chain: the stages this job checks before it starts (its own, or all of *Run all*).
        names: run-folder names of all targets (:func:`hiralign.runfolder.safe_names`).
        targets: the degraded cubes, same order (their bands are preflighted).
        sources: the targets' files (or names), recorded in the adapted checkpoint.
    """

    config: AdaptConfig
    run: RunFolder
    record: dict[str, Any]
    chain: tuple[str, ...]
    names: tuple[str, ...]
    targets: tuple[Cube, ...]
    sources: tuple[str, ...]

    def begin(self, model_folder: Path | None = None) -> stages.RunScale:
        """Preflight the chain, claim the run folder (the first writes come after), and return the
        run's intensity scale and noise model (from all targets, as ``hiralign adapt`` decides them;
        stored in the folder by the first stage, read back by the later ones)."""
        stages.preflight(self.config, self.targets, self.chain, model_folder=model_folder, bands_of=self.names)
        self.run.claim(self.record)
        return stages.run_scale(self.run, self.config, self.targets)

    @property
    def device(self) -> Any:
        from hiralign.device import resolve_device

        return resolve_device(self.config.device)


def shipped_model(task: str, targets: Sequence[Cube] = ()) -> Path | None:
    """The shipped source model folder for ``task`` and ``targets``, or None when this build has none.

    The same choice as ``hiralign adapt`` without ``--model``
    (:func:`hiralign.config.default_model_folder`: the band-agnostic model for sensor runs
    and for targets off the 31-band model's bands).
    """
    from hiralign.config import default_model_folder
    from hiralign.errors import ModelError

    try:
        return default_model_folder(task, targets)
    except ModelError:
        return None


def _span(progress: Progress, k: int, n: int, prefix: str) -> SubProgress:
    return SubProgress(progress, k / max(n, 1), (k + 1) / max(n, 1), prefix)


# --------------------------------------------------------------------------- stage 1
def run_proxy(job: StageRun, items: Sequence[tuple[int, int]], progress: Progress) -> int:
    """p_i = Φ_src(x_i) for every (uid, target index), on the model's bands (Eq. 3).

    Streams ``partial("proxy", (uid, proxy, proxy_rgb, intensity scale))``; returns the number
    done. The proxies are on the network's normalised scale (target / s), as in ``hiralign
    adapt``; the scale comes along so the window can show them on the target's.
    """
    scale = job.begin()
    device = job.device
    model, ckpt = stages.load_source(job.config, device, job.targets)
    for k, (uid, i) in enumerate(items):
        progress.check()
        proxy, rgb = stages.proxy_item(job.run, job.names[i], job.targets[i], model, ckpt, tiles=job.config.tiles,
                                       device=device, progress=_span(progress, k, len(items), f"{job.names[i]}: "),
                                       scale=scale, source=job.config.proxy_for(ckpt.scale),
                                       consistent=job.config.consistency)
        progress.partial("proxy", (uid, proxy, rgb, scale.intensity))
    return len(items)


# --------------------------------------------------------------------------- stage 2a
def run_generate(job: StageRun, items: Sequence[tuple[int, int, np.ndarray]], progress: Progress) -> int:
    """M guide RGBs g_ij per (uid, target index, stored proxy RGB) (Sec. III-B 1).

    Target i is seeded with seed + 7919·i, as in ``hiralign adapt``. Streams
    ``partial("guides", (uid, guides))``.
    """
    job.begin()
    generator = stages.make_generator(job.config, job.config.device)
    for k, (uid, i, rgb) in enumerate(items):
        progress.check()
        guides = stages.guides_item(job.run, job.names[i], i, rgb, generator, job.config,
                                    _span(progress, k, len(items), "guides: "))
        progress.partial("guides", (uid, guides))
    return len(items)


# --------------------------------------------------------------------------- stage 2b
def run_warp(job: StageRun, items: Sequence[tuple[int, int, Cube, np.ndarray, list[np.ndarray]]],
             progress: Progress) -> int:
    """ỹ_ij = T_ij p_i for every guide of every (uid, index, proxy, proxy RGB, guides) (Eqs. 9–26).

    Streams ``partial("warps", (uid, results))``. The results keep everything but the
    sparse operator T (Eq. 25), 2–3× the size of the weights, candidates and kernel it is
    built from, which the views do not need; its diagnostics are computed before.
    """
    job.begin()
    device = job.device
    total = sum(len(guides) for *_, guides in items)
    done = 0
    for uid, i, proxy, rgb, guides in items:
        name = job.names[i]
        warps = []
        for j, guide in enumerate(guides):
            progress.check()
            result = stages.warp_item(job.run, name, j, proxy, rgb, guide, job.config, device=device,
                                      progress=_span(progress, done, total, f"{name} guide {j + 1}: "))
            warps.append(dataclasses.replace(result, operator=None))
            done += 1
        progress.partial("warps", (uid, warps))
    stages.merge_warp_diagnostics(job.run, job.names, job.config.guides)
    return done


# --------------------------------------------------------------------------- stage 3
def run_finetune(job: StageRun, proxies: Sequence[Cube], synthesized: Sequence[Cube],
                 progress: Progress) -> dict[str, Any]:
    """Finetune the source model on the aligned pairs (Eqs. 27–30) into ``RUN/checkpoint``.

    The pairs follow the config's finetuning mode (never re-decided here).

    Returns:
        ``{"checkpoint": folder, "losses": [(step, loss), ...], "seconds": wall time}``.
    """
    scale = job.begin()
    device = job.device
    model, ckpt = stages.load_source(job.config, device, job.targets)
    start = time.perf_counter()
    provenance = stages.adapted_provenance(job.config, job.sources, job.targets, scale.noise, ckpt.scale)
    result = stages.finetune_bundle(model, ckpt, job.config, proxies, synthesized, run=job.run, provenance=provenance,
                                    device=device, progress=progress, resume=False, noise=scale.train_noise)
    return {"checkpoint": job.run.checkpoint, "losses": [(i + 1, float(v)) for i, v in enumerate(result.losses)],
            "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------- evaluation
def run_evaluate(job: StageRun, adapted: Path,
                 items: Sequence[tuple[int, int, Cube | None, Cube | None, Path | None]],
                 progress: Progress) -> dict[str, Any] | None:
    """Restore every (uid, index, clean, proxy, clean file) with the adapted model and score both models.

    The source model's restoration of x_i *is* the proxy p_i; it is recomputed only for
    targets without one. Streams ``partial("evaluation", (uid, restored, metrics))`` and
    ``partial("quality", (uid, report))`` (the no-reference quality report), and writes
    ``report.json`` as ``hiralign adapt`` does (its metrics when every target has a clean
    reference).

    Returns:
        The report's metrics, or None without clean references.
    """
    from hiralign import __version__
    from hiralign.evaluate import metrics_report
    from hiralign.models.checkpoint import load_checkpoint

    scale = job.begin(model_folder=adapted)
    device = job.device
    model, ckpt = load_checkpoint(adapted, device)
    source = None
    rows: dict[str, list[Any]] = {"source": [], "adapted": []}
    quality: dict[str, Any] = {}
    for k, (uid, i, clean, proxy, clean_path) in enumerate(items):
        progress.check()
        name = job.names[i]
        restored = stages.restore_item(job.run, name, job.targets[i], model, ckpt, tiles=job.config.tiles,
                                       device=device, progress=_span(progress, k, len(items), f"{name}: "),
                                       scale=scale, fuse=job.config.proxy_fusion(ckpt.scale),
                                       transforms=job.config.restore_transforms,
                                       consistent=job.config.consistency)
        metrics = None
        if clean is not None:
            if proxy is None:
                source = source or stages.load_source(job.config, device, job.targets)
                proxy = stages.restore_target(source[0], source[1], stages.normalised(job.targets[i], scale),
                                              tiles=job.config.tiles, device=device, name=name)
            scores = stages.score_item(name, clean, proxy, restored, job.config.task, maps=True,
                                       where=clean_path or f"{name}'s clean reference", scale=scale)
            for label, score in scores.items():
                rows[label].append(score)
            metrics = {label: score.as_dict() for label, score in scores.items()}
        progress.partial("evaluation", (uid, restored, metrics))
        quality[name] = stages.quality_item(job.targets[i], restored, job.config, ckpt.scale)
        progress.partial("quality", (uid, quality[name]))
    report: dict[str, Any] = {"hiralign_version": __version__, "device": str(device), "processes": 1,
                              **scale.to_report(), "quality": quality}
    metrics = metrics_report(rows) if rows["adapted"] and len(rows["adapted"]) == len(items) else None
    if metrics is not None:
        metrics["peak"] = stages.score_peak(scale)
        report["metrics"] = metrics
    stages.write_report(job.run, report)
    return metrics


# --------------------------------------------------------------------------- warm-up
def warm_up(progress: Progress) -> None:
    """Run every stage's machinery once on a tiny input.

    The first use of torch (its import, the optimiser machinery), FAISS and SciPy's
    sparse code imports modules and initialises extensions while holding the GIL, for
    hundreds of milliseconds (measured: 370 ms in a first warp, under 40 ms in the next).
    Run as the first job after start-up, this pays that once while the user looks at the
    data, instead of freezing the GUI when a stage starts. Failures are ignored here: a
    stage that cannot run reports its own error when the user starts it.
    """
    import torch

    from hiralign.device import configure_torch
    from hiralign.evaluate import score_cube
    from hiralign.generate import get_generator
    from hiralign.proxy import restore_cube
    from hiralign.quality import quality_report
    from hiralign.warp import WarpConfig, warp

    configure_torch()
    rng = np.random.default_rng(0)
    tiny = Cube(rng.random((16, 16, 8), dtype=np.float32), wavelengths=np.linspace(450, 680, 8), name="warm-up")
    layer = torch.nn.Conv2d(8, 8, 3, padding=1)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    layer(tiny.to_torch()[None]).abs().mean().backward()
    optimizer.step()
    progress.report(1, 4, "warming up: torch")
    score_cube(restore_cube(layer, tiny), tiny, maps=True)
    # Evaluate's no-reference report: its first call imports scipy.ndimage and friends (103 ms
    # of held GIL, measured), the largest stall left in a Run all before this line.
    quality_report(tiny, tiny.with_data(tiny.data * 0.5), tile=8, overlap=2)
    progress.report(2, 4, "warming up: metrics")
    rgb = stages.proxy_rgb(tiny)
    warp(tiny, rgb[::-1].copy(), WarpConfig(iterations=2), proxy_rgb=rgb, device="cpu")
    progress.report(3, 4, "warming up: warp")
    progress.check()
    try:
        get_generator("patchnn").generate(rgb, 1, 0)
    except Exception:  # noqa: BLE001 - only warming up; the stage reports real errors
        pass
    try:  # the classical proxy (auto's subspace denoiser): its first call imports scikit-image (104 ms held)
        from hiralign.classical import subspace_denoise

        subspace_denoise(tiny)
    except Exception:  # noqa: BLE001 - only warming up
        pass
    progress.report(4, 4, "ready")
