"""User preferences kept in :class:`QSettings`: recent files, last folders, default
wavelengths and device. ``python -m app --fresh`` clears them.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "hiralign"
APPLICATION = "hiralign"
MAX_RECENT = 10


class Preferences:
    """Typed access to the application's :class:`QSettings`.

    Args:
        settings: the store; by default the per-user native one. Tests pass an INI file.
    """

    def __init__(self, settings: QSettings | None = None) -> None:
        self.store = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)

    @classmethod
    def at(cls, path: str | Path) -> Preferences:
        """Preferences stored in an INI file (used by tests and ``--settings``)."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def clear(self) -> None:
        self.store.clear()
        self.store.sync()

    # -- recent files ------------------------------------------------------------------
    @property
    def recent_files(self) -> list[str]:
        value = self.store.value("recent_files", [])
        if isinstance(value, str):  # QSettings returns a lone string for a 1-item list
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        items = [p for p in self.recent_files if p != path]
        self.store.setValue("recent_files", [path, *items][:MAX_RECENT])

    def remove_recent(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        self.store.setValue("recent_files", [p for p in self.recent_files if p != path])

    # -- folders -----------------------------------------------------------------------
    def last_folder(self, kind: str = "open") -> str:
        """The folder the last ``kind`` ("open", "export", "model") dialog ended in."""
        return str(self.store.value(f"last_folder/{kind}", str(Path.home())))

    def set_last_folder(self, kind: str, folder: str | Path) -> None:
        self.store.setValue(f"last_folder/{kind}", str(folder))

    # -- defaults ----------------------------------------------------------------------
    @property
    def default_wavelengths(self) -> str:
        """Wavelengths offered for files without any, as ``start:stop:step`` in nm."""
        return str(self.store.value("default_wavelengths", "400:700:10"))

    @default_wavelengths.setter
    def default_wavelengths(self, text: str) -> None:
        self.store.setValue("default_wavelengths", text)

    @property
    def device(self) -> str:
        return str(self.store.value("device", "auto"))

    @device.setter
    def device(self, name: str) -> None:
        self.store.setValue("device", name)

    # -- pipeline settings -------------------------------------------------------------
    def pipeline_settings(self) -> dict[str, str]:
        """The pipeline panel's last settings (name -> text as saved; {} on a first start)."""
        self.store.beginGroup("pipeline")
        try:
            return {key: str(self.store.value(key)) for key in self.store.childKeys()}
        finally:
            self.store.endGroup()

    def set_pipeline_settings(self, values: dict[str, object]) -> None:
        self.store.beginGroup("pipeline")
        try:
            self.store.remove("")
            for key, value in values.items():
                self.store.setValue(key, str(value))
        finally:
            self.store.endGroup()
