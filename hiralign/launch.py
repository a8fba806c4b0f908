"""The ``hiralign adapt`` command line of a run, and ``launch.sh`` to start it headless.

:func:`adapt_arguments` turns an :class:`~hiralign.config.AdaptConfig` into the ``adapt``
arguments that rebuild it exactly (``hiralign adapt`` parses them back into an equal
config; settings beyond the options travel in a ``--config`` JSON file), and
:func:`run_command` prefixes a launcher (``accelerate launch``, ``torchrun`` or none), so
a run set up in the GUI (*File ▸ Export ▸ Run config*) starts on a cluster unchanged.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from hiralign.errors import ConfigError

if TYPE_CHECKING:
    from hiralign.config import AdaptConfig

LAUNCHERS = ("accelerate", "torchrun", "none")
#: Name of the settings file written beside ``launch.sh`` when one is needed.
SETTINGS_FILE = "adapt_settings.json"


def run_command(
    config: AdaptConfig,
    targets: Sequence[str | Path],
    out: str | Path,
    *,
    clean: Sequence[str | Path] | None = None,
    load_options: Mapping[str, Any] | None = None,
    processes: int = 2,
    launcher: str = "accelerate",
    settings_file: str | Path | None = None,
) -> list[str]:
    """The command line that runs this adaptation headless, e.g. on a GPU cluster.

    Args:
        config: the run's settings (as the GUI's pipeline panel built them).
        targets: degraded target files.
        out: the run folder.
        clean: optional clean references, one per target.
        load_options: :func:`hiralign.io.load` options (var, wavelengths, zero_nonfinite).
        processes: processes (GPUs) per machine.
        launcher: ``"accelerate"`` (``accelerate launch --multi_gpu``), ``"torchrun"``, or
            ``"none"`` for a plain single-process ``hiralign adapt``.
        settings_file: JSON file holding warp and extra generator settings, passed as
            ``--config``; required when the config has such settings (see
            :func:`write_launch_files`, which writes it).

    Returns:
        The argument list (join it with :func:`shlex.join` for a shell).

    Raises:
        ConfigError: a setting the command line cannot express, or an unknown launcher.
    """
    if launcher not in LAUNCHERS:
        raise ConfigError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    if processes < 1:
        raise ConfigError(f"need at least one process (got {processes})")
    if launcher == "none" or processes == 1:
        prefix = ["hiralign"]
    elif launcher == "accelerate":
        prefix = ["accelerate", "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
                  "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "hiralign"]
    else:
        prefix = ["torchrun", "--standalone", "--nproc_per_node", str(processes), "-m", "hiralign"]
    return prefix + adapt_arguments(config, targets, out, clean=clean, load_options=load_options,
                                    settings_file=settings_file)


def extra_settings(config: AdaptConfig) -> dict[str, Any]:
    """Settings only a ``--config`` JSON file can carry ({} when there are none).

    Those are the warp and generator fields that differ from their defaults (the unCLIP
    model has its own option, ``--generator-model``).
    """
    from hiralign.config import overrides

    generator = {k: v for k, v in overrides(config.generator_config).items() if k != "model"}
    extra: dict[str, Any] = {}
    warp = overrides(config.warp)
    if warp:
        extra["warp"] = warp
    if generator:
        extra["generator"] = generator
    return extra


def adapt_arguments(
    config: AdaptConfig,
    targets: Sequence[str | Path],
    out: str | Path,
    *,
    clean: Sequence[str | Path] | None = None,
    load_options: Mapping[str, Any] | None = None,
    settings_file: str | Path | None = None,
) -> list[str]:
    """``adapt …`` arguments reproducing ``config`` exactly (see :func:`run_command`)."""
    from hiralign.config import overrides
    from hiralign.ensemble import ProxyConfig
    from hiralign.finetune import FinetuneConfig
    from hiralign.proxy import TileConfig

    fine, default_fine = config.finetune, FinetuneConfig()
    if fine.lr_min != default_fine.lr_min:
        raise ConfigError(f"final learning rate {fine.lr_min} has no command-line option")
    if config.tiles.batch != TileConfig().batch:
        raise ConfigError(f"tile batch {config.tiles.batch} has no command-line option")
    if config.proxy.bm4d_profile != ProxyConfig().bm4d_profile:
        raise ConfigError(f"BM4D profile {config.proxy.bm4d_profile!r} has no command-line option")
    args = ["adapt", "--target", *map(str, targets), "--task", config.task, "--out", str(out)]
    if config.model:
        args += ["--model", str(config.model)]
    args += ["--generator", config.generator, "--guides", str(config.guides)]
    if "model" in overrides(config.generator_config):
        args += ["--generator-model", str(config.generator_config.model)]
    if extra_settings(config):
        if settings_file is None:
            raise ConfigError("this run has warp or generator settings beyond the command-line options; "
                              "give a settings file (write_launch_files writes one)")
        args += ["--config", str(settings_file)]
    if clean:
        args += ["--clean", *map(str, clean)]
    args += ["--seed", str(config.seed), "--steps", str(fine.steps), "--ratio", repr(fine.ratio),
             "--mode", fine.mode, "--batch-size", str(fine.batch_size), "--patch-size", str(fine.patch_size),
             "--lr", repr(fine.lr),
             *([] if fine.source_replay is None else ["--source-replay", repr(fine.source_replay)]),
             "--tile", str(config.tiles.tile), "--overlap", str(config.tiles.overlap),
             "--proxy-source", config.proxy.source, "--proxy-classical", config.proxy.classical,
             "--blend-weight", repr(config.proxy.blend_weight), "--proxy-transforms", str(config.proxy.transforms),
             "--fuse-proxies", repr(config.fuse_proxies), "--restore-transforms", str(config.restore_transforms),
             *([] if config.consistency else ["--no-consistency"]),
             "--device", config.device]
    options = dict(load_options or {})
    if options.get("var"):
        args += ["--var", str(options["var"])]
    if options.get("wavelengths") is not None:
        wl = options["wavelengths"]
        args += ["--wavelengths", wl if isinstance(wl, str) else ",".join(f"{float(w):g}" for w in wl)]
    if options.get("zero_nonfinite"):
        args.append("--zero-nonfinite")
    return args


def write_launch_files(
    config: AdaptConfig,
    targets: Sequence[str | Path],
    out: str | Path,
    folder: str | Path,
    **options: Any,
) -> Path:
    """Write ``folder/launch.sh`` (and ``folder/adapt_settings.json`` when needed).

    The GUI's "export run config": copy the folder to a cluster login node and run
    ``sh launch.sh`` (or submit it). ``options`` are those of :func:`run_command`.

    Returns:
        The script's path.
    """
    from hiralign.atomic import write_json, write_text

    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    settings = None
    if extra_settings(config):
        settings = folder / SETTINGS_FILE
        write_json(settings, extra_settings(config))
    command = run_command(config, targets, out, settings_file=settings, **options)
    script = folder / "launch.sh"
    write_text(script, "#!/bin/sh\n# hiralign adapt, exported for a headless or multi-GPU run "
                       "(see docs/distributed.md)\nset -e\n" + shlex.join(command) + "\n")
    script.chmod(0o755)
    return script


def script_arguments(script: str | Path) -> list[str]:
    """The ``hiralign`` arguments of a ``launch.sh`` written by :func:`write_launch_files`.

    Raises:
        ConfigError: the file holds no ``hiralign`` command line.
    """
    lines = [line for line in Path(script).read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#") and line.strip() != "set -e"]
    if not lines:
        raise ConfigError(f"{script}: no command line in it")
    argv = shlex.split(lines[-1])
    if "hiralign" not in argv:
        raise ConfigError(f"{script}: its command does not run hiralign")
    return argv[argv.index("hiralign") + 1:]
