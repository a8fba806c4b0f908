"""The warp entry point: descriptors → FAISS seeds → refinement → optimisation → transfer."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from hiralign.device import configure_torch, resolve_device
from hiralign.progress import Progress, SubProgress, as_progress
from hiralign.warp import descriptors as desc
from hiralign.warp import diagnostics as diag
from hiralign.warp.config import WarpConfig
from hiralign.warp.inputs import prepare_inputs
from hiralign.warp.optimise import fit
from hiralign.warp.refine import WindowBank, refine
from hiralign.warp.result import WarpResult
from hiralign.warp.retrieval import build_index, faiss_threads, search_seeds
from hiralign.warp.transfer import build_operator, transfer

#: Share of the progress bar taken by matching (retrieval + refinement) and optimisation.
MATCH_SPAN = (0.0, 0.25)
FIT_SPAN = (0.25, 0.95)


class _Clock:
    """Accumulates wall and process-CPU seconds per stage.

    CPU seconds are reported too because on a shared machine wall time mostly measures
    the other processes.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self._stage = ""
        self._start = (0.0, 0.0)

    def start(self, stage: str) -> None:
        self.stop()
        self._stage, self._start = stage, (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        if self._stage:
            wall, cpu = time.perf_counter() - self._start[0], time.process_time() - self._start[1]
            self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + wall
            self.cpu_seconds[self._stage] = self.cpu_seconds.get(self._stage, 0.0) + cpu
            self._stage = ""

    def summary(self, values: dict[str, float]) -> dict[str, float]:
        out = {k: round(v, 3) for k, v in values.items()}
        out["total"] = round(sum(values.values()), 3)
        return out


def warp(proxy: Any, guide_rgb: Any, config: WarpConfig = WarpConfig(), *, proxy_rgb: Any = None,
         wavelengths: Any = None, device: str = "auto", progress: Progress | None = None) -> WarpResult:
    """Synthesize an HSI with the guide's layout from the proxy's spectra (Sec. III-B 2).

    Args:
        proxy: the proxy HSI p, a :class:`~hiralign.cube.Cube` or an (H, W, B) array.
        guide_rgb: the guide g, (H, W, 3) float in [0, 1]; another size is resized to
            the proxy's (noted in the diagnostics) unless ``config.resize_guide`` is False.
        config: every setting (paper defaults).
        proxy_rgb: r, (H, W, 3); default Γ(p) (:meth:`Cube.pseudo_rgb`). A bare array
            proxy needs ``proxy_rgb`` or ``wavelengths`` (nm).
        wavelengths: band centres of a bare array proxy, used to form Γ(p).
        device: "auto", "cpu", "cuda" or "cuda:N".
        progress: receives per-tile and per-iteration reports, ``"warp_rgb"`` previews of
            r̃ every ``config.preview_every`` iterations; its ``check()`` cancels.

    Returns:
        The :class:`WarpResult`.

    Raises:
        InputError: unusable inputs (see :func:`hiralign.warp.inputs.prepare_inputs`).
        Cancelled: ``progress.check()`` asked to stop; nothing is left half-done.
    """
    import torch

    progress = as_progress(progress)
    dev = resolve_device(device)
    configure_torch()
    faiss_threads(torch.get_num_threads())
    inputs = prepare_inputs(proxy, guide_rgb, proxy_rgb, wavelengths, config)
    height, width = inputs.guide.shape[:2]
    clock = _Clock()

    clock.start("descriptors")
    proxy_features = desc.feature_map(inputs.proxy_rgb, config.chroma_weight, config.gradient_weight,
                                      config.chroma_eps)
    guide_padded = desc.padded_features(desc.feature_map(inputs.guide, config.chroma_weight,
                                                         config.gradient_weight, config.chroma_eps),
                                        config.patch_size)
    database = desc.all_descriptors(desc.padded_features(proxy_features, config.patch_size), config.patch_size)
    clock.start("index")
    index = build_index(database, config, use_gpu=dev.type == "cuda", gpu_id=dev.index or 0)
    del database
    clock.start("refinement")
    bank = WindowBank(proxy_features, config.patch_size, config.radius, dev)
    clock.stop()
    progress.check()

    n = height * width
    candidates = np.empty((n, config.candidates), dtype=np.int32)
    distances = np.empty((n, config.candidates), dtype=np.float32)
    match = SubProgress(progress, *MATCH_SPAN)
    tiles = list(desc.row_tiles(height, width, config.tile_pixels))
    for number, (start, stop) in enumerate(tiles):
        clock.start("descriptors")
        queries = desc.descriptor_rows(guide_padded, config.patch_size, start, stop)
        clock.start("retrieval")
        seeds = search_seeds(index, queries, config.seeds)
        clock.start("refinement")
        rows = slice(start * width, stop * width)
        candidates[rows], distances[rows] = refine(bank, queries, seeds, config.candidates, dev,
                                                   check=progress.check)
        clock.stop()
        match.report(number + 1, len(tiles), f"matching tile {number + 1}/{len(tiles)}")
        progress.check()
    index_kind, index_details = index.kind + ("-gpu" if index.on_gpu else ""), index.details
    del bank, index

    clock.start("optimisation")
    fitted = fit(candidates, distances, inputs.proxy_rgb, inputs.guide, config, dev,
                 SubProgress(progress, *FIT_SPAN))
    clock.start("transfer")
    cand_t = torch.from_numpy(candidates.T.reshape(-1, height, width).astype(np.int64)).to(dev)
    synthesized = transfer(inputs.proxy, fitted.weights, cand_t, fitted.kernel, config.boundary)
    del cand_t
    weights = fitted.weights.permute(1, 2, 0).cpu().numpy()
    kernel = fitted.kernel.permute(1, 2, 0).cpu().numpy()
    transported = fitted.transported.permute(1, 2, 0).cpu().numpy()
    coords = fitted.coords.permute(1, 2, 0).cpu().numpy()
    loss_terms, loss_history = fitted.loss_terms, fitted.loss_history
    del fitted
    grid = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"), axis=-1)
    displacement = (coords - grid).astype(np.float32)

    clock.start("operator")
    operator = build_operator(weights.reshape(n, -1), candidates, kernel.reshape(n, -1),
                              height, width, config.stencil, config.boundary)
    clock.start("diagnostics")
    kappa, kappa_iters = diag.overlap_constant(operator, config.kappa_iterations, config.kappa_tol)
    nnz = diag.nnz_per_row(operator)
    region = config.region_distance or config.stencil
    diagnostics = {
        "alignment_psnr_db": diag.psnr(transported, inputs.guide),
        "row_stochastic_error": diag.row_stochastic_error(operator),
        "min_weight": float(operator.data.min()) if operator.nnz else 0.0,
        "max_nnz_per_row": int(nnz.max()),
        "mean_nnz_per_row": float(nnz.mean()),
        "nnz_bound": config.candidates * config.stencil ** 2,
        "kappa": kappa,
        "kappa_iterations": kappa_iters,
        "multi_region_fraction": diag.multi_region_fraction(weights.reshape(n, -1), candidates, width,
                                                            config.region_weight, region),
        "mean_displacement_px": float(np.mean(np.linalg.norm(displacement, axis=-1))),
        "loss": loss_terms,
        "loss_first": loss_history[0] if loss_history else None,
        "index": index_kind,
        "index_details": index_details,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "size": [height, width, int(inputs.proxy.shape[2])],
        "notes": inputs.notes,
    }
    clock.stop()
    diagnostics["seconds"] = clock.summary(clock.seconds)
    diagnostics["cpu_seconds"] = clock.summary(clock.cpu_seconds)
    progress.report(1.0, 1.0, "warp done")
    k = config.candidates
    return WarpResult(
        synthesized=synthesized, transported_rgb=transported.astype(np.float32),
        coords=coords.astype(np.float32), displacement=displacement, operator=operator,
        diagnostics=diagnostics, candidates=candidates.reshape(height, width, k),
        weights=weights.astype(np.float32), kernel=kernel.astype(np.float32),
        distances=distances.reshape(height, width, k), boundary=config.boundary, like=inputs.like)
