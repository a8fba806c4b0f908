"""What a checkpoint bundle is, in a few lines a scientist can read (``hiralign info CKPT``).

Reads ``config.json``, ``provenance.json`` and the weights' header only (no tensors are
loaded): the architecture and its bands, how the weights were made — source pretraining
(steps, validation PSNR, the source set, any checkpoint it was continued from) or a
HIR-ALIGN adaptation (targets, mode, steps, the source model, and how ``hiralign restore``
will restore new captures with it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from hiralign.errors import ModelError
from hiralign.models.checkpoint import CONFIG_FILE, WEIGHTS_FILE, read_config, read_provenance


def is_checkpoint_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a checkpoint bundle's ``config.json``."""
    return Path(path).is_dir() and (Path(path) / CONFIG_FILE).is_file()


def describe_checkpoint(folder: str | Path) -> dict[str, Any]:
    """A JSON-ready summary of the checkpoint bundle in ``folder``.

    Raises:
        MissingFileError / ModelError: ``folder`` is not a readable bundle (as
            :func:`~hiralign.models.checkpoint.read_config` says).
    """
    folder = Path(folder)
    config = read_config(folder)
    provenance = read_provenance(folder)
    wavelengths = list(config.wavelengths) if config.wavelengths else None
    agnostic = bool(provenance.get("band_agnostic") or _source_of(provenance).get("band_agnostic"))
    span = [wavelengths[0], wavelengths[-1]] if wavelengths else None
    summary: dict[str, Any] = {
        "checkpoint": str(folder),
        "arch": config.arch,
        "task": config.task,
        "scale": config.scale,
        # a band-agnostic model restores any band count; its config's bands are only the layout it was validated on
        "bands": "any" if agnostic else config.bands,
        "wavelengths_nm": None if agnostic else span,
        "band_agnostic": agnostic,
        **({"validation_layout": {"bands": config.bands, "wavelengths_nm": span}} if agnostic else {}),
        "args": dict(config.args),
        "parameters": _parameter_count(folder / WEIGHTS_FILE),
        "kind": provenance.get("kind", "unknown (no provenance.json)"),
    }
    if provenance.get("kind") == "hiralign-adapted":
        summary["adapted"] = _adapted(folder, config, provenance)
    elif provenance:
        summary["pretraining"] = _pretraining(provenance)
    return summary


def _pretraining(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Steps, validation, source set and the chain of checkpoints it was continued from."""
    result = provenance.get("result") or {}
    source = provenance.get("source") or {}
    out: dict[str, Any] = {
        "steps": result.get("steps"),
        "validation_psnr_db": _rounded((provenance.get("metrics") or {}).get("validation_psnr")),
        "loss": (provenance.get("train_config") or {}).get("loss"),
        "source_set": source.get("config"),
        "train_wall_s": provenance.get("train_wall_s"),
    }
    chain, init, depth = [], provenance.get("init"), 0
    while isinstance(init, Mapping) and depth < 16:
        chain.append({"folder": init.get("folder"), "steps": init.get("steps"),
                      "validation_psnr_db": _rounded(init.get("validation_psnr"))})
        init, depth = (init.get("provenance") or {}).get("init"), depth + 1
    if chain:
        out["continued_from"] = chain
        out["total_steps"] = (out["steps"] or 0) + sum(c["steps"] or 0 for c in chain)
    return out


def _adapted(folder: Path, config: Any, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Targets, mode, budget, source model and the restore recipe of an adapted checkpoint."""
    from hiralign.restoration import Recipe

    targets = provenance.get("targets") or []
    out: dict[str, Any] = {
        "targets": [Path(str(t)).name for t in targets],
        "mode": provenance.get("mode"),
        "steps": (provenance.get("training") or {}).get("steps"),
        "pairs": provenance.get("pairs"),
        "source_model": provenance.get("source_model"),
        "source_replay": (provenance.get("source_replay") or {}).get("weight"),
    }
    try:
        out["restores_new_captures_with"] = Recipe.from_provenance(provenance, config.task, config.scale,
                                                                    str(folder)).describe()
    except ModelError as exc:  # an adapted bundle from another version: say so, describe the rest
        out["restores_new_captures_with"] = f"unknown ({exc})"
    return out


def _source_of(provenance: Mapping[str, Any]) -> Mapping[str, Any]:
    source = provenance.get("source_provenance")
    return source if isinstance(source, Mapping) else {}


def _parameter_count(weights: Path) -> int | None:
    """Number of weights from the safetensors header (None when the file cannot be read)."""
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as f:
            total = 0
            for key in f.keys():
                count = 1
                for side in f.get_slice(key).get_shape():
                    count *= int(side)
                total += count
            return total
    except Exception:  # noqa: BLE001 - a damaged header only loses this one field
        return None


def _rounded(value: Any) -> float | None:
    return round(float(value), 2) if isinstance(value, (int, float)) else None


def summary_line(summary: Mapping[str, Any]) -> str:
    """One line of :func:`describe_checkpoint`'s summary (the window's tooltip of a model)."""
    wl = summary.get("wavelengths_nm")
    bands = "any bands" if summary.get("band_agnostic") else (
        f"{summary['bands']} bands" + (f" {wl[0]:g}–{wl[1]:g} nm" if wl else ""))
    parts = [f"{summary['arch']} for {summary['task']}", bands]
    if summary.get("parameters"):
        parts.append(f"{summary['parameters'] / 1000:.0f} k parameters")
    training = summary.get("pretraining")
    if training:
        steps = training.get("total_steps") or training.get("steps")
        psnr = training.get("validation_psnr_db")
        parts.append(f"pretrained {steps} steps" + (f" (validation {psnr:.2f} dB)" if psnr is not None else ""))
    adapted = summary.get("adapted")
    if adapted:
        parts.append(f"adapted on {len(adapted['targets'])} targets ({adapted.get('mode')}, {adapted.get('steps')} "
                     f"steps); new captures: {adapted.get('restores_new_captures_with')}")
    return " · ".join(parts)
