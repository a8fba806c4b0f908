"""Users' own networks as plug-ins (rebuilding from a config lives in :mod:`hiralign.models.build`).

A restorer can come from

* a checkpoint folder (:func:`hiralign.models.checkpoint.load_checkpoint`),
* a **TorchScript** file (``torch.jit.save`` of a scripted or traced module), or
* a **factory** ``"package.module:function"`` called as ``function(bands=B, scale=s, **args)``
  plus a state dict (``.safetensors`` or a ``torch.save``-d dict).

:func:`load_model` accepts all three. Plug-ins are checked on a tiny input so a network
with the wrong band count or scale fails with a clear message, not deep inside a stage.
Once finetuned, a plug-in is saved as an ordinary checkpoint folder whose ``arch`` is the
factory string (or ``"torchscript"`` with the scripted file copied beside the weights).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from hiralign.errors import MissingFileError, ModelError
from hiralign.models.build import check_model, is_factory_spec, load_torchscript

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from hiralign.models.checkpoint import CheckpointConfig

#: File suffixes read as TorchScript archives.
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save``-d file (tensors only)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"state dict file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt files raise many kinds of errors
        raise ModelError(f"cannot read the state dict {path}: {type(exc).__name__}: {exc}") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]  # common wrapper of training scripts
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return dict(state)


def load_model(
    spec: str | Path,
    device: str | torch.device = "cpu",
    *,
    task: str | None = None,
    bands: int | None = None,
    scale: int = 1,
    wavelengths: Sequence[float] | None = None,
    state_dict: str | Path | None = None,
    args: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, CheckpointConfig]:
    """Load a restorer from a checkpoint folder, a TorchScript file or a plug-in factory.

    Args:
        spec: checkpoint folder, TorchScript file, or ``"package.module:function"``.
        device: where the model goes.
        task, bands, scale, wavelengths: describe a plug-in (ignored for checkpoint folders,
            which carry their own config); ``bands`` is required for plug-ins.
        state_dict: weights of a factory plug-in (``.safetensors`` or ``torch.save`` file);
            without it the factory's own initialisation is used.
        args: extra keyword arguments of a factory plug-in.

    Returns:
        (model in eval mode on ``device``, its :class:`CheckpointConfig`).
    """
    import torch

    from hiralign.models.build import TORCHSCRIPT_ARCH, call_factory
    from hiralign.models.checkpoint import CheckpointConfig, load_checkpoint

    text = str(spec)
    path = Path(text)
    if path.is_dir():
        return load_checkpoint(path, device)
    is_file = path.suffix.lower() in TORCHSCRIPT_SUFFIXES or path.is_file()
    if not is_file and not is_factory_spec(text):
        raise MissingFileError(f"model {text!r} is neither a checkpoint folder, a TorchScript file "
                               "nor a plug-in factory 'package.module:function'")
    if bands is None:
        raise ModelError(f"plug-in model {text}: give its band count")
    if is_file:
        model = load_torchscript(path)
        config = CheckpointConfig(arch=TORCHSCRIPT_ARCH, task=task or "unknown", bands=bands,
                                  wavelengths=wavelengths, scale=scale)
    else:
        config = CheckpointConfig(arch=text, task=task or "unknown", bands=bands, wavelengths=wavelengths,
                                  scale=scale, args=args or {})
        model = call_factory(text, bands, scale, config.args)
        if state_dict is not None:
            state = read_state_dict(state_dict)
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise ModelError(f"state dict {state_dict} does not fit plug-in {text!r}: "
                                 f"{str(exc).splitlines()[0]}") from None
    model.to(torch.device(device) if not isinstance(device, torch.device) else device)
    model.eval()
    check_model(model, bands, scale, where=f"plug-in model {text}")
    return model, config
