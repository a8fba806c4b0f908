"""Rebuilding networks from a checkpoint config, and users' own networks as plug-ins.

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

import importlib
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from hiralign.errors import MissingFileError, ModelError

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from hiralign.models.checkpoint import CheckpointConfig

#: File suffixes read as TorchScript archives.
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_factory_spec(text: str) -> bool:
    """True for strings shaped like ``package.module:factory``."""
    return bool(_FACTORY.match(text))


def build_from_config(config: CheckpointConfig, folder: Path | None = None) -> nn.Module:
    """Instantiate (untrained) the network a checkpoint config describes.

    Raises:
        ModelError: unknown architecture, factory that fails, or missing TorchScript file.
    """
    from hiralign.models import ARCHS, build_model
    from hiralign.models.checkpoint import TORCHSCRIPT_ARCH, TORCHSCRIPT_FILE

    if config.arch in ARCHS:
        try:
            return build_model(config.arch, config.bands, config.scale, **config.args)
        except TypeError as exc:
            raise ModelError(f"architecture {config.arch!r} rejects the checkpoint's arguments "
                             f"{dict(config.args)}: {exc}") from None
    if config.arch == TORCHSCRIPT_ARCH:
        if folder is None:
            raise ModelError("a TorchScript checkpoint needs its folder")
        return load_torchscript(folder / TORCHSCRIPT_FILE)
    if is_factory_spec(config.arch):
        return call_factory(config.arch, config.bands, config.scale, config.args)
    from hiralign.models import ARCHS as known

    raise ModelError(f"unknown architecture {config.arch!r}; known: {', '.join(sorted(known))}, "
                     "'torchscript' or a plug-in factory 'package.module:function'")


def load_torchscript(path: str | Path) -> nn.Module:
    """Load a TorchScript archive on the CPU, remembering its file for re-saving."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"TorchScript file {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch ≥ 2.9 nudges towards torch.export
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"cannot load {path} as TorchScript: {str(exc).splitlines()[0]}") from None
    module._hiralign_torchscript_file = str(path)  # read back by save_checkpoint
    return module


def call_factory(spec: str, bands: int, scale: int, args: Mapping[str, Any]) -> nn.Module:
    """Import ``package.module:function`` and call it with ``bands``, ``scale`` and ``args``."""
    import torch.nn as nn

    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"cannot import plug-in module {module_name!r} ({exc}); "
                         "is it installed or on PYTHONPATH?") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"plug-in {spec!r}: {module_name} has no callable {attr!r}")
    try:
        model = factory(bands=bands, scale=scale, **dict(args))
    except Exception as exc:  # noqa: BLE001 - user code may raise anything
        raise ModelError(f"plug-in factory {spec!r} failed with bands={bands}, scale={scale}, "
                         f"args={dict(args)}: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"plug-in factory {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


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


def check_model(model: nn.Module, bands: int, scale: int, where: str, size: int = 16) -> None:
    """Run ``model`` on a tiny (1, bands, size, size) input and check the output shape."""
    import torch

    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.rand(1, bands, size, size, device=device)
    try:
        with torch.no_grad():
            y = model(x)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{where} fails on a (1, {bands}, {size}, {size}) input: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    expected = (1, bands, size * scale, size * scale)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ModelError(f"{where} maps (1, {bands}, {size}, {size}) to {got}; expected {expected}")


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

    from hiralign.models.checkpoint import TORCHSCRIPT_ARCH, CheckpointConfig, load_checkpoint

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
