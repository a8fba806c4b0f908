"""File ▸ Export ▸ *Run config for a cluster*: the clicked-together run as ``launch.sh``.

The pipeline panel's settings and the target set's files become an :class:`AdaptConfig`
and :func:`hiralign.distributed.write_launch_files` writes the script (plus a settings
JSON when warp or generator settings go beyond the command-line options), so a run set up
in the window is launched headless — with ``torchrun`` or ``accelerate launch`` over
several processes, or plain ``hiralign`` — unchanged.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from hiralign.errors import ConfigError

if TYPE_CHECKING:
    from app.runner import PipelineSettings
    from app.session import Session
    from hiralign.pipeline import AdaptConfig

#: Launchers offered, as :func:`hiralign.distributed.run_command` names them.
LAUNCHERS = ("torchrun", "accelerate", "none")


def adapt_config_for(settings: PipelineSettings) -> AdaptConfig:
    """The :class:`AdaptConfig` that reproduces the pipeline panel's settings headless.

    Only generator and warp settings that differ from their defaults are carried (the
    generator's device is the run's ``--device``); no source model means the shipped one.
    """
    from app.runner import generator_settings
    from hiralign.finetune import FinetuneConfig
    from hiralign.generate import settings_class
    from hiralign.pipeline import AdaptConfig
    from hiralign.warp import WarpConfig

    defaults = dataclasses.asdict(settings_class(settings.generator)())
    generator = {k: v for k, v in generator_settings(settings).items() if k != "device" and defaults.get(k) != v}
    warp: dict[str, Any] = {}
    if settings.warp_config is not None:
        defaults = dataclasses.asdict(WarpConfig())
        warp = {k: v for k, v in dataclasses.asdict(settings.warp_config).items() if defaults[k] != v}
    # The window finetunes on proxies only when nothing was synthesized; a headless run
    # generates guides itself, so it keeps the paper's mode.
    finetune = FinetuneConfig(steps=settings.steps, ratio=settings.ratio, seed=settings.seed)
    return AdaptConfig(task=settings.task, model=str(settings.source_model) if settings.source_model else None,
                       generator=settings.generator, generator_settings=generator,
                       guides=settings.guides_per_proxy, warp_settings=warp, finetune=finetune,
                       seed=settings.seed, device=settings.device)


def export_run_config(session: Session, settings: PipelineSettings, folder: str | Path, run_dir: str,
                      launcher: str = "torchrun", processes: int = 2) -> Path:
    """Write ``folder/launch.sh`` for the session's target set; returns its path.

    Raises:
        ConfigError: no targets, a target that did not come from a file, or settings the
            command line cannot carry.
    """
    from hiralign.distributed import write_launch_files

    if not session.targets:
        raise ConfigError("no target cubes: open the target set first")
    unsaved = [t.name for t in session.targets if t.path is None]
    if unsaved:
        raise ConfigError(f"{', '.join(unsaved)}: not loaded from a file; save it as a cube first "
                          "(File ▸ Export) and open that file")
    clean_paths = [t.clean_path for t in session.targets]
    clean = [str(p) for p in clean_paths] if all(p is not None for p in clean_paths) else None
    load_options: dict[str, Any] = {}
    wavelengths = [t.degraded.wavelengths for t in session.targets]
    first = wavelengths[0]
    if first is not None and all(w is not None and w.shape == first.shape and (w == first).all()
                                 for w in wavelengths):
        load_options["wavelengths"] = [float(w) for w in first]  # only used by files that lack them
    config = adapt_config_for(settings)
    return write_launch_files(config, [str(t.path) for t in session.targets], run_dir, folder,
                              clean=clean, load_options=load_options, processes=processes, launcher=launcher)


class RunConfigDialog(QDialog):
    """Asks for the launcher, process count, run folder name and where to write the script."""

    def __init__(self, start_folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export run config (launch.sh)")
        self.launcher_box = QComboBox(toolTip="torchrun / accelerate launch shard the run over processes; "
                                              "none runs plain `hiralign adapt`")
        self.launcher_box.addItems(LAUNCHERS)
        self.processes_spin = QSpinBox(minimum=1, maximum=1024, value=2, toolTip="processes (GPUs) on the node")
        self.run_dir_edit = QLineEdit("hiralign-run", toolTip="run folder the job writes (relative to where "
                                                              "launch.sh is started, or absolute)")
        self.folder_edit = QLineEdit(start_folder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Launcher", self.launcher_box)
        form.addRow("Processes", self.processes_spin)
        form.addRow("Run folder", self.run_dir_edit)
        form.addRow("Write launch.sh into", folder_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Write launch.sh into…", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def choices(self) -> dict[str, Any]:
        return {"folder": self.folder_edit.text().strip(), "run_dir": self.run_dir_edit.text().strip(),
                "launcher": self.launcher_box.currentText(), "processes": self.processes_spin.value()}
