"""Rebuilding a network from its description: an architecture name, TorchScript or a plug-in factory.

The one place that turns a :class:`~hiralign.models.checkpoint.CheckpointConfig` into an
(untrained) ``nn.Module``. :mod:`hiralign.models.checkpoint` (bundles on disk) and
:mod:`hiralign.models.plugin` (users' own networks) both build through it, so neither
needs the other to rebuild a model.

Band-agnostic models: a restorer class may set ``band_agnostic = True``; it then accepts
any band count B (its weights do not depend on B), and the stages feed it a target on the
target's own bands instead of resampling them to the checkpoint's (:func:`is_band_agnostic`).
"""
from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from hiralign.errors import MissingFileError, ModelError

if TYPE_CHECKING:
    import torch.nn as nn

    from hiralign.models.checkpoint import CheckpointConfig

TORCHSCRIPT_FILE = "module.pt"
TORCHSCRIPT_ARCH = "torchscript"
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_band_agnostic(model: Any) -> bool:
    """Whether ``model`` accepts any band count (its class sets ``band_agnostic = True``).

    A wrapper (DistributedDataParallel, a compiled module) is looked through.
    """
    inner = getattr(model, "module", model)
    return bool(getattr(model, "band_agnostic", False) or getattr(inner, "band_agnostic", False))


def is_factory_spec(text: str) -> bool:
    """True for strings shaped like ``package.module:factory``."""
    return bool(_FACTORY.match(text))


def build_from_config(config: CheckpointConfig, folder: Path | None = None) -> nn.Module:
    """Instantiate (untrained) the network a checkpoint config describes.

    Raises:
        ModelError: unknown architecture, factory that fails, or missing TorchScript file.
    """
    from hiralign.models import ARCHS, build_model

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


