"""The run folder of ``hiralign adapt``: layout, settings record and resumption.

Layout::

    RUN/config.json      every setting, seed, input path and the hiralign version
    RUN/proxies/         <target>.hdr/.img proxy cubes and <target>_rgb.png proxy RGBs
    RUN/guides/          <target>_g<j>.png generated RGB guides (16-bit)
    RUN/synth/           <target>_g<j>.hdr/.img synthesized cubes
    RUN/warp.json        warp diagnostics per guide
    RUN/checkpoint/      the adapted model bundle
    RUN/restored/        <target>.hdr/.img: the adapted model applied to the observed targets
    RUN/report.json      timings per stage, metrics when clean references were given

Every file is written atomically, so an existing output is complete and a stage resumes by
skipping what exists. A folder made with other settings is refused rather than mixed.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

from hiralign.atomic import write_json
from hiralign.errors import ConfigError

CUBE_SUFFIX = ".hdr"
#: Settings whose change invalidates earlier stages of a run (all of them, for now).
CONFIG_FILE = "config.json"


def safe_names(paths: Sequence[str | Path]) -> list[str]:
    """Unique, filesystem-safe names for targets, from their file stems."""
    names: list[str] = []
    for p in paths:
        stem = Path(p).name
        for suffix in (".hdr", ".mat", ".npy", ".npz", ".tif", ".tiff", ".img", ".raw", ".dat"):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "target"
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


class RunFolder:
    """Paths of one adaptation run and its settings record."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    # ------------------------------------------------------------------ paths
    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    def proxy(self, name: str) -> Path:
        return self.root / "proxies" / f"{name}{CUBE_SUFFIX}"

    def proxy_rgb(self, name: str) -> Path:
        return self.root / "proxies" / f"{name}_rgb.png"

    def guide(self, name: str, j: int) -> Path:
        return self.root / "guides" / f"{name}_g{j}.png"

    def synth(self, name: str, j: int) -> Path:
        return self.root / "synth" / f"{name}_g{j}{CUBE_SUFFIX}"

    def warp_diagnostics(self, name: str, j: int) -> Path:
        return self.root / "synth" / f"{name}_g{j}.json"

    @property
    def warp_json(self) -> Path:
        return self.root / "warp.json"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def train_state(self) -> Path:
        return self.root / "finetune_state.pt"

    def restored(self, name: str) -> Path:
        return self.root / "restored" / f"{name}{CUBE_SUFFIX}"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    # --------------------------------------------------------------- settings
    def claim(self, record: dict[str, Any]) -> bool:
        """Write the settings record, or check an existing one matches.

        Returns:
            True when the folder already held this run (a resume).

        Raises:
            ConfigError: the folder holds a run with other settings.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        if self.config_file.is_file():
            try:
                old = json.loads(self.config_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.config_file}: unreadable ({exc}); use another --out folder") from None
            differences = _differences(_comparable(old), _comparable(record))
            if differences:
                raise ConfigError(f"{self.root} holds a run with other settings ({'; '.join(differences[:4])}); "
                                  "choose a new --out folder or delete it")
            return True
        if any(self.root.iterdir()):
            raise ConfigError(f"{self.root} is not empty and is not a hiralign run folder; choose a new --out")
        write_json(self.config_file, record)
        return False


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    # The device and the version do not change results that were already written.
    return {k: v for k, v in record.items() if k not in ("device", "hiralign_version", "created")}


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    if old != new:
        return [f"{prefix.rstrip('.')}: {old!r} → {new!r}"]
    return []
