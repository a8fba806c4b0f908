"""Model bundles on disk: ``model.safetensors`` + ``config.json`` + ``provenance.json``.

A checkpoint is a folder::

    CKPT/
      model.safetensors   the weights (state dict, float32)
      config.json         how to rebuild the network: arch, args, task, bands, wavelengths, scale
      provenance.json     what it was trained/finetuned on: data, steps, seeds, metrics, version, time
      module.pt           (TorchScript plug-ins only) the scripted network the weights belong to

``config.json`` is everything needed to run the model; ``provenance.json`` is for people
and reports. Bundles are written atomically (the folder appears complete or not at all).
The ``arch`` is an :data:`hiralign.models.ARCHS` name, ``"torchscript"``, or a plug-in
factory ``"package.module:factory"`` (see :mod:`hiralign.models.plugin`);
networks are rebuilt by :mod:`hiralign.models.build`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from hiralign.errors import MissingFileError, ModelError
from hiralign.models.build import TORCHSCRIPT_ARCH, TORCHSCRIPT_FILE

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PROVENANCE_FILE = "provenance.json"
#: Version of the bundle layout, bumped when config.json changes incompatibly.
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """What is needed to rebuild and use a restorer.

    Attributes:
        arch: architecture name (an ARCHS key, ``"torchscript"`` or ``"package.module:factory"``).
        task: the degradation task it restores (a :data:`hiralign.degrade.TASKS` name).
        bands: number of spectral bands B it expects.
        wavelengths: (B,) band centres in nm, or None when unknown.
        scale: spatial factor from input to output (4 for ``sr4``, else 1).
        args: keyword arguments of the architecture factory (besides bands and scale).
    """

    arch: str
    task: str
    bands: int
    wavelengths: tuple[float, ...] | None = None
    scale: int = 1
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.wavelengths is not None:
            wl = tuple(float(w) for w in np.asarray(self.wavelengths, dtype=np.float64).ravel())
            if len(wl) != self.bands:
                raise ModelError(f"checkpoint config lists {len(wl)} wavelengths for {self.bands} bands")
            object.__setattr__(self, "wavelengths", wl)
        object.__setattr__(self, "args", dict(self.args))

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "arch": self.arch, "task": self.task, "bands": self.bands,
                "wavelengths": None if self.wavelengths is None else list(self.wavelengths),
                "scale": self.scale, "args": dict(self.args)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config.json") -> CheckpointConfig:
        """Parse a ``config.json`` object, raising :class:`ModelError` naming ``where``."""
        if not isinstance(data, Mapping):
            raise ModelError(f"{where}: expected a JSON object")
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelError(f"{where}: checkpoint format version {version!r} is newer than this hiralign "
                             f"understands ({FORMAT_VERSION}); update hiralign")
        missing = [k for k in ("arch", "task", "bands") if k not in data]
        if missing:
            raise ModelError(f"{where}: missing key(s) {', '.join(missing)}")
        try:
            args = data.get("args") or {}
            if not isinstance(args, Mapping):
                raise TypeError("args must be an object")
            return cls(arch=str(data["arch"]), task=str(data["task"]), bands=int(data["bands"]),
                       wavelengths=data.get("wavelengths"), scale=int(data.get("scale", 1)), args=args)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where}: invalid value ({exc})") from None


def save_checkpoint(
    model: nn.Module,
    folder: str | Path,
    config: CheckpointConfig,
    provenance: Mapping[str, Any] | None = None,
    *,
    torchscript_source: str | Path | None = None,
) -> Path:
    """Write ``model`` as a checkpoint bundle, atomically replacing ``folder``.

    Args:
        model: the restorer (its state dict is saved as float32 on the CPU).
        folder: the bundle folder to create or replace.
        config: how to rebuild the model.
        provenance: free JSON-able description of training; ``hiralign_version`` and
            ``saved_at`` are added when absent.
        torchscript_source: for ``arch == "torchscript"``, the scripted module file to copy
            beside the weights (defaults to the file the model was loaded from).

    Returns:
        The folder path.
    """
    from safetensors.torch import save_file

    from hiralign import __version__
    from hiralign.atomic import atomic_dir, plain_permissions

    folder = Path(folder)
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    prov = dict(provenance or {})
    prov.setdefault("hiralign_version", __version__)
    prov.setdefault("saved_at", _now())
    if config.arch == TORCHSCRIPT_ARCH:
        torchscript_source = torchscript_source or getattr(model, "_hiralign_torchscript_file", None)
        if torchscript_source is None or not Path(torchscript_source).is_file():
            raise ModelError("saving a TorchScript model needs the scripted module file it came from")
    with atomic_dir(folder) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"arch": config.arch, "task": config.task})
        plain_permissions(tmp / WEIGHTS_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        (tmp / PROVENANCE_FILE).write_text(json.dumps(prov, indent=2, default=_json_default) + "\n",
                                           encoding="utf-8")
        if config.arch == TORCHSCRIPT_ARCH:
            shutil.copyfile(torchscript_source, tmp / TORCHSCRIPT_FILE)
    return folder


def read_config(folder: str | Path) -> CheckpointConfig:
    """Read and validate ``folder/config.json`` without loading any weights."""
    folder = _check_folder(folder)
    return CheckpointConfig.from_dict(_read_json(folder / CONFIG_FILE), where=str(folder / CONFIG_FILE))


def read_provenance(folder: str | Path) -> dict[str, Any]:
    """``folder/provenance.json`` as a dict ({} when the file is absent)."""
    path = Path(folder) / PROVENANCE_FILE
    return _read_json(path) if path.is_file() else {}


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, CheckpointConfig]:
    """Rebuild the restorer stored in ``folder`` on ``device``, in eval mode.

    Raises:
        MissingFileError: ``folder`` does not exist.
        ModelError: a file is missing, unreadable or inconsistent, or the arch is unknown.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from hiralign.models.build import build_from_config

    folder = _check_folder(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"checkpoint {folder} is incomplete: {WEIGHTS_FILE} is missing")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot read the weights {weights}: {exc}") from None
    model = build_from_config(config, folder)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(f"weights in {weights} do not fit architecture {config.arch!r} "
                         f"({first[0] if first else exc}; {_mismatch_summary(model, state)})") from None
    model.to(torch.device(device) if not isinstance(device, torch.device) else device)
    model.eval()
    return model, config


def _check_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise MissingFileError(f"checkpoint folder {folder} does not exist")
    if not folder.is_dir():
        raise ModelError(f"{folder} is not a checkpoint folder (expected a folder with {WEIGHTS_FILE}, "
                         f"{CONFIG_FILE} and {PROVENANCE_FILE})")
    if not (folder / CONFIG_FILE).is_file():
        raise ModelError(f"checkpoint {folder} is incomplete: {CONFIG_FILE} is missing")
    return folder


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None


def _mismatch_summary(model: nn.Module, state: Mapping[str, Any]) -> str:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)]
    return (f"{len(missing)} missing, {len(unexpected)} unexpected, {len(shapes)} of different shape"
            + (f", e.g. {shapes[0]}" if shapes else ""))


def _json_default(obj: object) -> object:
    from hiralign.atomic import _json_default as default

    return default(obj)


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

