"""What each pipeline button does: plain functions of plain data that call the core.

Each ``run_*`` function runs inside a job's worker (see :mod:`app.jobs`): it receives
cubes and arrays, loads any model itself, calls the core stage function with a
:class:`~hiralign.progress.Progress`, streams every finished item as a ``"result-…"``
preview ``(uid, payload)`` so the views fill in while the stage runs, and returns the
complete list. Nothing here knows about Qt or threads.

A stage whose core function is missing from this build is reported by
:func:`unavailable_stages`; its button is then disabled (never faked).
"""
from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import ModelError
from hiralign.progress import Progress, SubProgress

STAGES = ("proxy", "generate", "warp", "finetune", "evaluate")

#: Core entry points each stage needs: "module:attribute".
_REQUIREMENTS = {
    "proxy": ("hiralign.proxy:restore_cube", "hiralign.models.checkpoint:load_checkpoint"),
    "generate": ("hiralign.generate:get_generator",),
    "warp": ("hiralign.warp:warp",),
    "finetune": ("hiralign.finetune:finetune", "hiralign.models.checkpoint:load_checkpoint"),
    "evaluate": ("hiralign.proxy:restore_cube", "hiralign.metrics:psnr_per_band", "hiralign.metrics:sam_map"),
}

#: Shipped source models: ``resources/models/<task>/`` beside the ``app`` package.
MODELS_DIR = Path(__file__).resolve().parents[1] / "resources" / "models"


def unavailable_stages() -> dict[str, str]:
    """Stage name → why it cannot run in this build (absent when it can)."""
    missing: dict[str, str] = {}
    for stage, needs in _REQUIREMENTS.items():
        for need in needs:
            module_name, attribute = need.split(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                missing[stage] = f"The {stage} stage is not available in this build ({module_name} is missing)."
                break
            if not hasattr(module, attribute):
                missing[stage] = f"The {stage} stage is not available in this build ({need} is missing)."
                break
    return missing


def warm_up(progress: Progress) -> None:
    """Run every available stage once on a tiny input.

    The first use of torch (its import, the optimiser machinery), FAISS and SciPy's
    sparse code imports modules and initialises extensions while holding the GIL, for
    hundreds of milliseconds (measured: 370 ms in a first warp, under 40 ms in the next).
    Run as the first job after start-up, this pays that once while the user looks at the
    data, instead of freezing the GUI when a stage starts. Failures are ignored here: a
    stage that cannot run reports its own error when the user starts it.
    """
    import torch

    from hiralign.device import configure_torch

    configure_torch()
    rng = np.random.default_rng(0)
    tiny = Cube(rng.random((16, 16, 8), dtype=np.float32), wavelengths=np.linspace(450, 680, 8), name="warm-up")
    missing = unavailable_stages()
    layer = torch.nn.Conv2d(8, 8, 3, padding=1)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    layer(tiny.to_torch()[None]).abs().mean().backward()
    optimizer.step()
    progress.report(1, 4, "warming up: torch")
    if "evaluate" not in missing:
        from hiralign.proxy import restore_cube

        cube_metrics(restore_cube(layer, tiny), tiny)
    progress.report(2, 4, "warming up: metrics")
    if "warp" not in missing:
        from hiralign.warp import WarpConfig, warp

        warp(tiny, proxy_rgb(tiny)[::-1].copy(), WarpConfig(iterations=2), proxy_rgb=proxy_rgb(tiny), device="cpu")
    progress.report(3, 4, "warming up: warp")
    progress.check()
    if "generate" not in missing:
        from hiralign.generate import get_generator

        try:
            get_generator("patchnn").generate(proxy_rgb(tiny), 1, 0)
        except Exception:  # noqa: BLE001 - only warming up; the stage reports real errors
            pass
    progress.report(4, 4, "ready")


def shipped_model(task: str) -> Path | None:
    """The shipped source model folder for ``task``, or None when this build has none."""
    folder = MODELS_DIR / task
    return folder if (folder / "config.json").is_file() else None


def proxy_rgb(proxy: Cube) -> np.ndarray:
    """r_i = Γ(p_i) clipped to [0, 1]: what the generator and the warp see (Eq. 4)."""
    return np.clip(proxy.pseudo_rgb(), 0.0, 1.0).astype(np.float32)


def _load_model(folder: Path, bands: int, device: str):
    from hiralign.models.checkpoint import load_checkpoint

    model, config = load_checkpoint(folder, device=_torch_device(device))
    if config.bands != bands:
        raise ModelError(f"the model in {folder} restores {config.bands}-band cubes but the targets have "
                         f"{bands} bands")
    return model, config


def _torch_device(device: str):
    from hiralign.device import resolve_device

    return resolve_device(device)


def _span(progress: Progress, k: int, n: int, prefix: str) -> SubProgress:
    return SubProgress(progress, k / max(n, 1), (k + 1) / max(n, 1), prefix)


# --------------------------------------------------------------------------- stage 1
def run_proxy(model_dir: Path, items: Sequence[tuple[int, Cube]], device: str,
              progress: Progress) -> list[tuple[int, Cube]]:
    """p_i = Φ_src(x_i) for every (uid, degraded cube) (paper Eq. 3)."""
    from hiralign.proxy import restore_cube

    model, config = _load_model(model_dir, items[0][1].n_bands, device)
    results = []
    for k, (uid, cube) in enumerate(items):
        progress.check()
        proxy = restore_cube(model, cube, scale=config.scale, device=_torch_device(device),
                             progress=_span(progress, k, len(items), f"{cube.name}: "), name=cube.name)
        progress.preview("proxy", proxy_rgb(proxy))
        progress.preview("result-proxy", (uid, proxy))
        results.append((uid, proxy))
    return results


# --------------------------------------------------------------------------- stage 2a
def run_generate(generator: str, settings: dict[str, Any], items: Sequence[tuple[int, np.ndarray]],
                 per_proxy: int, seed: int, progress: Progress) -> list[tuple[int, list[np.ndarray]]]:
    """M guide RGBs g_ij per proxy RGB r_i (Sec. III-B 1)."""
    from hiralign.generate import get_generator

    gen = get_generator(generator, **settings)
    results = []
    for k, (uid, rgb) in enumerate(items):
        progress.check()
        guides = gen.generate(rgb, per_proxy, seed + k, progress=_span(progress, k, len(items), "guides: "))
        guides = [np.asarray(g, dtype=np.float32) for g in guides]
        progress.preview("result-guides", (uid, guides))
        results.append((uid, guides))
    return results


# --------------------------------------------------------------------------- stage 2b
def run_warp(config: Any, items: Sequence[tuple[int, Cube, list[np.ndarray]]], device: str,
             progress: Progress) -> list[tuple[int, list[Any]]]:
    """ỹ_ij = T_ij p_i for every guide of every proxy (Eqs. 9–26).

    The results keep everything but the sparse operator itself (see below); its
    diagnostics (κ, non-zeros per row, row-stochastic error) are computed before.
    """
    from hiralign.warp import warp

    total = sum(len(guides) for _, _, guides in items)
    done = 0
    results = []
    for uid, proxy, guides in items:
        warps = []
        for j, guide in enumerate(guides):
            progress.check()
            result = warp(proxy, guide, config, proxy_rgb=proxy_rgb(proxy), device=device,
                          progress=_span(progress, done, total, f"{proxy.name} guide {j + 1}: "))
            # The session keeps what the views show. T (Eq. 25) is 2–3× the size of the weights,
            # candidates and kernel it is built from (hiralign.warp.transfer.build_operator).
            warps.append(dataclasses.replace(result, operator=None))
            done += 1
        progress.preview("result-warps", (uid, warps))
        results.append((uid, warps))
    return results


# --------------------------------------------------------------------------- stage 3
@dataclasses.dataclass(frozen=True)
class FinetuneRequest:
    """Everything the Finetune stage needs (plain data, built on the GUI thread).

    Attributes:
        ratio: r, synthesized:proxy sampling ratio (paper default 3:1).
        provenance: facts recorded in the checkpoint bundle (generator, settings...).
    """

    source_model: Path
    task: str
    proxies: tuple[Cube, ...]
    synthesized: tuple[Cube, ...]
    steps: int
    ratio: float
    out_dir: Path
    device: str
    seed: int = 0
    provenance: tuple[tuple[str, Any], ...] = ()


def run_finetune(request: FinetuneRequest, progress: Progress) -> dict[str, Any]:
    """Finetune the source model on the aligned pairs (Eqs. 27–30); write the adapted bundle.

    Uses proxies + synthesized HSIs when there are synthesized ones, else proxies alone.

    Returns:
        ``{"checkpoint": folder, "losses": [(step, loss), ...], "seconds": wall time}``.
    """
    from hiralign.finetune import FinetuneConfig, finetune
    from hiralign.models.checkpoint import save_checkpoint

    model, config = _load_model(request.source_model, request.proxies[0].n_bands, request.device)
    if config.task != request.task:
        raise ModelError(f"the source model in {request.source_model} restores {config.task!r}, "
                         f"not {request.task!r}")
    mode = "hiralign" if request.synthesized else "proxy-only"
    settings = FinetuneConfig(steps=request.steps, ratio=request.ratio, mode=mode, seed=request.seed)
    start = time.perf_counter()
    result = finetune(model, request.task, list(request.proxies), list(request.synthesized), settings,
                      device=_torch_device(request.device), progress=progress)
    progress.check()
    provenance = {"stage": "hiralign finetune (desktop application)", "source_model": str(request.source_model),
                  "task": request.task, "mode": mode, "finetune": dataclasses.asdict(settings),
                  "proxies": [c.name for c in request.proxies], "synthesized": len(request.synthesized),
                  "result": result.to_dict(), **dict(request.provenance)}
    folder = save_checkpoint(model, request.out_dir, config, provenance)
    return {"checkpoint": folder, "losses": [(i + 1, float(v)) for i, v in enumerate(result.losses)],
            "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------- evaluation
def cube_metrics(estimate: Cube, clean: Cube) -> dict[str, Any]:
    """PSNR (dB), SSIM, SAM (°), per-band PSNR (B,) and the SAM map (H, W) in degrees."""
    from hiralign.metrics import all_metrics, psnr_per_band, sam_map

    est, ref = estimate.to_torch()[None], clean.to_torch()[None]
    values = all_metrics(est, ref)
    return {"psnr": float(values["psnr"]), "ssim": float(values["ssim"]), "sam": float(values["sam"]),
            "psnr_per_band": np.asarray(psnr_per_band(est, ref)).reshape(-1).astype(np.float32),
            "sam_map": np.asarray(sam_map(est, ref)).reshape(estimate.shape[:2]).astype(np.float32)}


def run_evaluate(adapted_model: Path, source_model: Path | None,
                 items: Sequence[tuple[int, Cube, Cube | None, Cube | None]], device: str,
                 progress: Progress) -> list[tuple[int, Cube, dict[str, Any] | None]]:
    """Restore every (uid, degraded, clean, proxy) with the adapted model and score both models.

    The source model's restoration of x_i *is* the proxy p_i; it is recomputed only for
    targets without one.
    """
    from hiralign.proxy import restore_cube

    bands = items[0][1].n_bands
    model, config = _load_model(adapted_model, bands, device)
    source = None
    results = []
    for k, (uid, degraded, clean, proxy) in enumerate(items):
        progress.check()
        span = _span(progress, k, len(items), f"{degraded.name}: ")
        restored = restore_cube(model, degraded, scale=config.scale, device=_torch_device(device), progress=span,
                                name=f"{degraded.name} restored")
        metrics = None
        if clean is not None:
            if proxy is None:
                if source is None:
                    source = _load_model(source_model, bands, device) if source_model else None
                if source is None:
                    raise ModelError("no source model to score the source-only restoration")
                proxy = restore_cube(source[0], degraded, scale=source[1].scale, device=_torch_device(device))
            metrics = {"source": cube_metrics(proxy, clean), "adapted": cube_metrics(restored, clean)}
        progress.preview("result-evaluation", (uid, restored, metrics))
        results.append((uid, restored, metrics))
    return results
