"""The one typed configuration of an adaptation run, shared by the CLI, the GUI and run folders.

:class:`AdaptConfig` holds typed sub-configs — :class:`~hiralign.proxy.TileConfig`, the
guide generator's name and its own config dataclass, :class:`~hiralign.warp.WarpConfig`,
:class:`~hiralign.finetune.FinetuneConfig` — plus one seed and the device. ``hiralign
adapt`` builds it from its arguments (whose help texts and defaults come from these
dataclasses, :func:`field_help`), the GUI's pipeline panel builds the same object, a run
folder's ``config.json`` records :meth:`AdaptConfig.to_dict`, and ``launch.sh`` is
generated from it (:mod:`hiralign.launch`). :meth:`AdaptConfig.from_dict` reads the record
back exactly.

Seeds: the run's ``seed`` seeds finetuning, and target ``i`` draws its guides from
:func:`target_seed` ``(seed, i) = seed + 7919·i`` (what every existing run folder used).
"""
from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from hiralign.bands import INDEX_WISE_TOLERANCE_NM
from hiralign.ensemble import ProxyConfig
from hiralign.errors import ConfigError, ModelError
from hiralign.finetune import FinetuneConfig
from hiralign.proxy import TileConfig

if TYPE_CHECKING:
    from hiralign.cube import Cube
    from hiralign.warp.config import WarpConfig

#: Guides of target ``i`` are drawn with seed ``seed + TARGET_SEED_STRIDE * i`` (a prime, so
#: the per-target streams of nearby base seeds do not collide).
TARGET_SEED_STRIDE = 7919
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def target_seed(seed: int, index: int) -> int:
    """The generation seed of target ``index`` in a run seeded with ``seed``."""
    return int(seed) + TARGET_SEED_STRIDE * int(index)


#: Band centres of a target may differ from a fixed-band model's by this much (nm) and still be
#: fed to it band by band, without resampling: the same tolerance as
#: :func:`hiralign.bands.match_bands` (KAIST's 420–720 nm on a 400–700 nm model, as the paper
#: does). Targets beyond it, or of another band count, go to the band-agnostic model.
SAME_BANDS_NM = INDEX_WISE_TOLERANCE_NM


def default_model_folder(task: str, targets: Sequence[Cube] = ()) -> Path:
    """The shipped source model a run of ``task`` on ``targets`` uses when none is given.

    The band-agnostic model (``resources/models/<task>-any/``) when one ships for the task
    and either the task is ``sensor`` (its noise model lives on the captures' own bands) or
    some target is not on the 31-band model's bands (no spectral resampling); otherwise the
    fixed-band model (``resources/models/<task>/``). Without targets (e.g. listing models)
    the fixed-band one is preferred when it exists.

    Raises:
        ModelError: no shipped model fits (names what ships; pass ``--model``).
    """
    from hiralign.models.checkpoint import read_config
    from hiralign.resources import shipped_model

    try:
        agnostic = shipped_model(task, band_agnostic=True)
    except ModelError:
        agnostic = None
    if agnostic is not None and task == "sensor":
        return agnostic
    try:
        fixed = shipped_model(task)
    except ModelError:
        if agnostic is not None:
            return agnostic
        raise
    if agnostic is not None:
        ckpt = read_config(fixed)
        if not all(on_bands(t, ckpt.bands, ckpt.wavelengths) for t in targets):
            return agnostic
    return fixed


def on_bands(cube: Cube, bands: int, wavelengths: Sequence[float] | None) -> bool:
    """Whether a fixed-band model takes ``cube`` unresampled (same count, centres within :data:`SAME_BANDS_NM`)."""
    if cube.n_bands != bands:
        return False
    if wavelengths is None or cube.wavelengths is None:
        return True
    import numpy as np

    return bool(np.max(np.abs(np.asarray(cube.wavelengths, dtype=float) - np.asarray(wavelengths, dtype=float)))
                <= SAME_BANDS_NM)


def _warp_config_class() -> type:
    # imported on use: hiralign.warp pulls in torch, and `hiralign --help` reads this module
    from hiralign.warp.config import WarpConfig

    return WarpConfig


def _default_warp() -> WarpConfig:
    return _warp_config_class()()


def generator_config_class(name: str) -> type:
    """The config dataclass of guide generator ``name`` (ConfigError when unknown)."""
    from hiralign.generate import settings_class

    return settings_class(name)


@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    """Every setting of an adaptation run (recorded in ``config.json``).

    Attributes:
        task: degradation task of the targets and the model: gaussian, complex, sr4, deblur,
            bandmiss, inpaint, or sensor (the captures' own noise, estimated from them).
        model: source checkpoint folder; None uses the shipped source model for ``task``.
        generator: guide generator name (:data:`hiralign.generate.GENERATORS`).
        generator_config: that generator's config dataclass (its defaults when None is
            given; a mapping of its fields is accepted and converted).
        guides: M, guides per proxy (the paper uses 3).
        warp: settings of the warp-based spectral transfer.
        finetune: aligned finetuning settings (ratio r, steps, mode...); its seed is
            always the run's ``seed``.
        tiles: tiled inference settings for proxies and restoration.
        proxy: where the stage-1 proxies come from (the source model, its dihedral
            ensemble, the subspace denoiser, BM4D, or a blend; ``auto``: the subspace
            denoiser for gaussian and complex, its blend with the model for sensor,
            interpolate (the observed values completed, :mod:`hiralign.completion`) for
            bandmiss and inpaint, else the model's ensemble; :func:`hiralign.ensemble.resolve_source`).
        fuse_proxies: weight of the run's proxies in the final restoration where they come
            from a classical restorer (proxy source subspace, bm4d, interpolate or blend); the adapted
            network gets the rest. 0 is the paper (the network alone). With the denoiser's
            Wiener stage (session 5) the 400-step compact networks no longer add to its
            proxies. Measured 1 / 0.9 / 0.75 (docs/benchmarks.md, "Session 5"): simulated
            IMEC captures, real noise 44.51 / 44.45 / 44.17 dB (SAM 1.10 / 1.10 / 1.15°; BM4D
            44.23 / 1.11), 4× variance 42.05 / 42.08 / 41.95, 4× darker 40.52 / 40.36 / 39.54
            (BM4D 39.67); KAIST gaussian 40.96 / 41.00 / 40.81, KAIST complex 37.57 / 37.59 /
            37.25, CAVE complex 34.65 / 34.81 / 34.62 (SAM 16.75 / 15.97 / 15.63°). 0.9 is
            within ±0.2 dB of 1 either way (better on the protocol tasks, worse on the
            sensor's); 1 is kept because it never loses to BM4D and the restoration then has
            no tiles at all. The network is still finetuned
            and exported: it restores new captures in one pass. Session 4's 0.75 was best
            with the NLM-only denoiser (KAIST gaussian 0 / 0.5 / 0.75 / 1: 37.49 / 39.68 /
            40.30 / 40.28 dB).
        restore_transforms: dihedral views (1–8) the adapted network restores each target in
            and averages (test-time ensemble, :func:`hiralign.ensemble.ensemble_restore`);
            1 is one pass. Only what the network contributes to ``restored/`` changes (all
            of it for model proxies, e.g. sr4; nothing when ``fuse_proxies`` is 1, which
            restores in one pass). 8 measured best of 1 / 2 / 4 / 8 on sr4 CAVE (the
            adapted network: 31.80 / 31.82 / 31.85 / 31.85 dB, SAM 4.34 / 4.30 / 4.28 /
            4.27°) at 2.2× the restore time (2.8 → 6.3 s for 3 scenes).
        consistency: where the task's observation is noise-free, make every cube the run
            makes — the proxies and ``restored/`` — agree with it exactly
            (:mod:`hiralign.consistency`; beyond the paper): ``sr4`` projects onto the cubes
            that down-sample exactly to their target; ``bandmiss`` and ``inpaint`` keep every
            observed band or value as observed and restore only the missing ones. No effect
            on other tasks. Measured on ``sr4`` (docs/benchmarks.md, "Session 11"): the
            adapted restoration KAIST 44.45 → 45.08 dB, CAVE 32.36 → 32.47 dB (its proxies
            43.53 → 44.55, 32.03 → 32.15), for 0.03 s a 256² cube; on ``bandmiss`` and
            ``inpaint`` see "Session 12". Turn it off for captures that are not a clean
            observation of the scene: an sr4 capture's noise comes back as grain on the
            4-pixel grid, a noisy capture's observed values keep their noise.
        seed: the run's one seed: finetuning uses it, and target i draws its guides with
            seed + 7919·i (:func:`target_seed`).
        device: "auto", "cpu", "cuda" or "cuda:N"; a generator whose own device is
            "auto" follows it.
    """

    task: str
    model: str | None = None
    generator: str = "patchnn"
    generator_config: Any = None
    guides: int = 3
    warp: WarpConfig = dataclasses.field(default_factory=_default_warp)
    finetune: FinetuneConfig = FinetuneConfig()
    tiles: TileConfig = TileConfig()
    proxy: ProxyConfig = ProxyConfig()
    fuse_proxies: float = 1.0
    restore_transforms: int = 8
    consistency: bool = True
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        from hiralign.degrade import check_task

        check_task(self.task)
        if self.model is not None:
            object.__setattr__(self, "model", str(self.model))
        name = str(self.generator).strip().lower()
        object.__setattr__(self, "generator", name)
        cls = generator_config_class(name)
        chosen = self.generator_config
        if chosen is None:
            chosen = cls()
        elif isinstance(chosen, Mapping):
            chosen = build_dataclass(cls, chosen, f"generator {name!r}")
        elif type(chosen) is not cls:
            raise ConfigError(f"generator {name!r} takes a {cls.__name__}, not a {type(chosen).__name__}")
        object.__setattr__(self, "generator_config", chosen)
        for attr, cls_ in (("warp", _warp_config_class()), ("finetune", FinetuneConfig), ("tiles", TileConfig),
                           ("proxy", ProxyConfig)):
            value = getattr(self, attr)
            if isinstance(value, Mapping):
                object.__setattr__(self, attr, build_dataclass(cls_, value, attr))
            elif not isinstance(value, cls_):
                raise ConfigError(f"{attr} settings must be a {cls_.__name__}, not {type(value).__name__}")
        if not isinstance(self.guides, int) or self.guides < 0:
            raise ConfigError(f"guides per proxy must be an integer ≥ 0 (got {self.guides!r})")
        if not isinstance(self.fuse_proxies, (int, float)) or not 0.0 <= float(self.fuse_proxies) <= 1.0:
            raise ConfigError(f"fuse_proxies must be a weight in [0, 1] (got {self.fuse_proxies!r})")
        object.__setattr__(self, "fuse_proxies", float(self.fuse_proxies))
        if not isinstance(self.restore_transforms, int) or not 1 <= self.restore_transforms <= 8:
            raise ConfigError(f"restore_transforms must be an integer 1–8 (got {self.restore_transforms!r})")
        if not isinstance(self.consistency, bool):
            raise ConfigError(f"consistency must be true or false (got {self.consistency!r})")
        if not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer (got {self.seed!r})")
        if not _DEVICE.match(str(self.device).lower()):
            raise ConfigError(f"unknown device {self.device!r}: use auto, cpu, cuda or cuda:N")
        if self.guides == 0 and self.finetune.pairs != "proxy-only":
            raise ConfigError("with 0 guides per proxy only --mode proxy-only (or ratio 0) can finetune")
        if self.finetune.seed != self.seed:  # one seed: finetuning always uses the run's
            object.__setattr__(self, "finetune", dataclasses.replace(self.finetune, seed=self.seed))

    # ------------------------------------------------------------------ derived
    @property
    def needs_synthesis(self) -> bool:
        """Whether the run generates guides and warps them (not for proxy-only finetuning)."""
        return self.guides > 0 and self.finetune.pairs != "proxy-only"

    def proxy_for(self, scale: int = 1) -> ProxyConfig:
        """The proxy settings with ``auto`` resolved for this task at the model's ``scale``."""
        return self.proxy.resolved(self.task, scale)

    def proxy_fusion(self, scale: int = 1) -> float:
        """The proxies' weight in the final restoration: :attr:`fuse_proxies` where they are
        classical (a denoiser's, alone or blended), else 0 (model proxies would undo the adaptation)."""
        return self.fuse_proxies if self.proxy_for(scale).restorer else 0.0

    def network_in_restoration(self, scale: int = 1) -> bool:
        """Whether any tiled network output reaches ``restored/``: False only when the
        restoration is the proxies alone (fuse weight 1) and they are a classical restorer's
        without the model (``subspace``, ``subspace-bm3d``, ``bm4d``, ``interpolate``), i.e. one untiled pass."""
        proxy = self.proxy_for(scale)
        return not (self.proxy_fusion(scale) >= 1.0 and not proxy.needs_model)

    def replay_weight(self, scale: int = 1) -> float:
        """The source-replay weight this run finetunes with: ``finetune.source_replay``, or for
        None (auto) :data:`hiralign.finetune.AUTO_REPLAY` with classical proxies, else 0."""
        from hiralign.finetune import AUTO_REPLAY

        if self.finetune.source_replay is not None:
            return float(self.finetune.source_replay)
        return AUTO_REPLAY if self.proxy_for(scale).restorer else 0.0

    def target_seed(self, index: int) -> int:
        """The generation seed of target ``index`` (:func:`target_seed`)."""
        return target_seed(self.seed, index)

    def model_folder(self, targets: Sequence[Cube] = ()) -> Path:
        """The source checkpoint folder: ``model``, or :func:`default_model_folder` for the targets."""
        return Path(self.model).expanduser() if self.model else default_model_folder(self.task, targets)

    def generator_for(self, device: str) -> Any:
        """The generator config to run with: its device follows ``device`` when it is "auto"."""
        chosen = self.generator_config
        if getattr(chosen, "device", None) == "auto" and device != "auto":
            chosen = dataclasses.replace(chosen, device=str(device))
        return chosen

    # --------------------------------------------------------------- round trip
    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings with every default spelled out; :meth:`from_dict` inverts it."""
        return {"task": self.task, "model": self.model, "generator": self.generator,
                "generator_config": as_dict(self.generator_config), "guides": self.guides,
                "warp": as_dict(self.warp), "finetune": as_dict(self.finetune), "tiles": as_dict(self.tiles),
                "proxy": as_dict(self.proxy), "fuse_proxies": self.fuse_proxies,
                "restore_transforms": self.restore_transforms, "consistency": self.consistency, "seed": self.seed,
                "device": self.device}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "settings") -> AdaptConfig:
        """Rebuild a config from :meth:`to_dict`'s output (or a subset: defaults elsewhere).

        Raises:
            ConfigError: unknown keys or values out of range, naming ``where``.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a JSON object of adaptation settings")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "task" not in data:
            raise ConfigError(f"{where}: the task is missing")
        values = dict(data)
        generator = str(values.get("generator", "patchnn"))
        try:
            values["generator_config"] = build_dataclass(generator_config_class(generator),
                                                         values.get("generator_config") or {},
                                                         f"{where}: generator_config")
            for attr, sub in (("warp", _warp_config_class()), ("finetune", FinetuneConfig), ("tiles", TileConfig),
                              ("proxy", ProxyConfig)):
                values[attr] = build_dataclass(sub, values.get(attr) or {}, f"{where}: {attr}")
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def as_dict(config: Any) -> dict[str, Any]:
    """A frozen config dataclass as a JSON-friendly dict (tuples become lists)."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def build_dataclass(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """``cls(**values)``, refusing unknown fields and turning JSON lists back into tuples.

    Raises:
        ConfigError: an unknown field (listing the known ones) or a rejected value.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected an object of settings, not {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: no setting {', '.join(map(repr, unknown))}; "
                          f"its settings are: {', '.join(sorted(fields))}")
    defaults = cls()
    converted = {k: tuple(v) if isinstance(v, list) and isinstance(getattr(defaults, k), tuple) else v
                 for k, v in values.items()}
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise ConfigError(f"{where}: {exc}") from None
        raise ConfigError(f"{where}: {exc}") from None


def overrides(config: Any) -> dict[str, Any]:
    """The fields of a config dataclass that differ from its defaults (JSON-friendly)."""
    defaults = as_dict(type(config)())
    return {k: v for k, v in as_dict(config).items() if defaults[k] != v}


# ----------------------------------------------------------------- help texts
@functools.cache
def _field_docs(cls: type) -> dict[str, str]:
    """Field name -> its description, parsed from the class's Google-style docstring."""
    docs: dict[str, str] = {}
    current: list[str] = []
    indent = None
    for line in (cls.__doc__ or "").splitlines():
        match = re.match(r"^(\s+)([a-z_][\w]*(?:, [a-z_][\w]*)*): (.*)$", line)
        if match and (indent is None or len(match.group(1)) <= indent):
            indent = len(match.group(1))
            current = [match.group(3).strip()]
            for name in match.group(2).split(", "):
                docs[name] = current  # type: ignore[assignment]
            continue
        if current and line.strip() and indent is not None and len(line) - len(line.lstrip()) > indent:
            current.append(line.strip())
        else:
            current = []
    return {name: " ".join(parts) for name, parts in docs.items()}  # type: ignore[arg-type]


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls``."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def field_help(cls: type, name: str, default: bool = True) -> str:
    """The command-line help of field ``name``: its docstring text and its default.

    Both come from the dataclass, so the CLI never repeats (and never contradicts) them.
    """
    text = _field_docs(cls).get(name, name.replace("_", " ")).rstrip(".")
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")  # reST roles read as plain names
    text = text.replace("%", "%%")  # argparse formats help strings
    if not default:
        return text
    value = field_default(cls, name)
    return f"{text} (default: {value})"
