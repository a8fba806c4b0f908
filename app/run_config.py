"""File ▸ Export ▸ *Run config for a cluster*: the clicked-together run as ``launch.sh``.

The pipeline panel's :class:`~hiralign.config.AdaptConfig` and the target set's files go
to :func:`hiralign.launch.write_launch_files`, which writes the script (plus a settings
JSON when warp or generator settings go beyond the command-line options), so a run set up
in the window is launched headless — with ``torchrun`` or ``accelerate launch`` over
several processes, or plain ``hiralign`` — unchanged.
"""
from __future__ import annotations

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
    from app.session import Session
    from hiralign.config import AdaptConfig

#: Launchers offered, as :func:`hiralign.launch.run_command` names them.
LAUNCHERS = ("torchrun", "accelerate", "none")


def export_run_config(session: Session, config: AdaptConfig, folder: str | Path, run_dir: str,
                      launcher: str = "torchrun", processes: int = 2) -> Path:
    """Write ``folder/launch.sh`` reproducing the window's run on its target set; returns its path.

    ``config`` is the pipeline panel's :class:`~hiralign.config.AdaptConfig` itself, so the
    script's ``hiralign adapt`` rebuilds an equal config: the same seeds, guides, finetuning
    mode and every warp and generator setting.

    Raises:
        ConfigError: no targets, a target that did not come from a file, or settings the
            command line cannot carry.
    """
    from hiralign.launch import write_launch_files

    if not session.targets:
        raise ConfigError("no target cubes: open the target set first")
    unsaved = [t.name for t in session.targets if t.path is None]
    if unsaved:
        raise ConfigError(f"{', '.join(unsaved)}: not loaded from a file; save it as a cube first "
                          "(File ▸ Export) and open that file")
    import logging

    log = logging.getLogger(__name__)
    clean_paths = [t.clean_path for t in session.targets]
    clean = [str(p) for p in clean_paths] if all(p is not None for p in clean_paths) else None
    with_clean = sum(p is not None for p in clean_paths)
    if clean is None and with_clean:  # said, not silently dropped: the script will not score
        log.warning("launch.sh: %d of %d targets have a clean reference; hiralign adapt --clean takes one per "
                    "target, so the script scores none (attach clean references to every target to keep them)",
                    with_clean, len(clean_paths))
    load_options: dict[str, Any] = {}
    wavelengths = [t.degraded.wavelengths for t in session.targets]
    first = wavelengths[0]
    if first is not None and all(w is not None and w.shape == first.shape and (w == first).all()
                                 for w in wavelengths):
        load_options["wavelengths"] = [float(w) for w in first]  # only used by files that lack them
    else:
        log.warning("launch.sh: the targets are on different wavelengths, and --wavelengths takes one list; the "
                    "script passes none, so a file without wavelengths in its header will not open headless")
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
