"""Export: the adapted checkpoint bundle, restored / synthesized / proxy cubes (ENVI or MAT),
figures of every view (PNG), and the plotted spectra and ROI statistics (CSV).

Every write is atomic (a temporary sibling renamed into place), so a failed or cancelled
export never leaves half a file. Cube and checkpoint writes run as background jobs; the
figure and CSV writes are small and run at once.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QTabWidget, QWidget

from hiralign.atomic import atomic_dir, atomic_path, write_text
from hiralign.cube import Cube
from hiralign.errors import HiralignError

if TYPE_CHECKING:
    from app.errors import ErrorReporter
    from app.jobs import JobManager
    from app.session import Session
    from app.settings import Preferences
    from hiralign.config import AdaptConfig

#: Cube formats offered for export: label → suffix (hiralign.io.save picks the writer).
CUBE_FORMATS = {"ENVI (.hdr + .img)": ".hdr", "MATLAB (.mat)": ".mat"}


def export_checkpoint(source: Path, target: Path) -> Path:
    """Copy the checkpoint bundle folder ``source`` to ``target`` (replaced atomically)."""
    if not (Path(source) / "config.json").is_file():
        raise HiralignError(f"{source} is not a checkpoint bundle (no config.json)")
    import os

    umask = os.umask(0)
    os.umask(umask)
    with atomic_dir(target) as tmp:
        for item in Path(source).iterdir():
            if item.is_file():
                shutil.copy2(item, tmp / item.name)
                # Atomic writes leave their temporary file's 0600; a bundle is for sharing.
                os.chmod(tmp / item.name, 0o666 & ~umask)
    return Path(target)


def export_cubes(cubes: Sequence[Cube], folder: Path, suffix: str, progress=None) -> list[Path]:
    """Save each cube as ``folder/<name><suffix>``; returns the written paths."""
    from hiralign.io import save

    written = []
    for k, cube in enumerate(cubes):
        if progress is not None:
            progress.check()
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in cube.name)
        written.append(save(cube, Path(folder) / f"{stem}{suffix}"))
        if progress is not None:
            progress.report(k + 1, len(cubes), cube.name)
    return written


def spectra_csv(wavelengths: np.ndarray, columns: dict[str, np.ndarray]) -> str:
    """CSV text: a ``wavelength_nm`` column then one column per spectrum."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["wavelength_nm", *columns])
    for b, wl in enumerate(wavelengths):
        writer.writerow([f"{wl:g}", *(f"{float(col[b]):.6g}" for col in columns.values())])
    return buffer.getvalue()


def export_figure(widget: QWidget, path: Path) -> Path:
    """Render ``widget`` as it looks on screen to a PNG (atomic)."""
    with atomic_path(path) as tmp:
        if not widget.grab().save(str(tmp), "PNG"):
            raise HiralignError(f"{path}: cannot write the PNG")
    return Path(path)


@dataclasses.dataclass
class ExportActions:
    """The File ▸ Export menu, over explicit collaborators (no window internals).

    Attributes:
        session: the targets and results to export.
        prefs: remembers the last export folder.
        errors: where failures are shown.
        jobs: runs the cube and checkpoint writes in the background.
        parent: parent widget of the dialogs.
        figures: the views to render, by file stem (``cube`` → ``cube.png``).
        tabs: the tab widget holding the views (each is shown while it is rendered).
        spectra: the spectrum plot whose ``table()`` gives the plotted spectra.
        config: the pipeline panel's current :class:`~hiralign.config.AdaptConfig`.
        status: shows a short message (the status bar).
    """

    session: Session
    prefs: Preferences
    errors: ErrorReporter
    jobs: JobManager
    parent: QWidget
    figures: Callable[[], dict[str, QWidget]]
    tabs: QTabWidget
    spectra: Any
    config: Callable[[], AdaptConfig]
    status: Callable[[str], None]

    def populate(self, menu: QMenu) -> None:
        menu.addAction("Adapted checkpoint bundle…", self.checkpoint_dialog)
        menu.addAction("New captures restored with the adapted model…", self.restore_dialog)
        menu.addSeparator()
        menu.addAction("Restored cubes…", lambda: self.cubes_dialog("restored"))
        menu.addAction("Synthesized cubes…", lambda: self.cubes_dialog("synth"))
        menu.addAction("Proxy cubes…", lambda: self.cubes_dialog("proxy"))
        menu.addSeparator()
        menu.addAction("Figures of every view (PNG)…", self.figures_dialog)
        menu.addAction("Plotted spectra (CSV)…", lambda: self.csv_dialog(roi=False))
        menu.addAction("ROI statistics (CSV)…", lambda: self.csv_dialog(roi=True))
        menu.addSeparator()
        menu.addAction("Run config for a cluster (launch.sh)…", self.run_config_dialog)

    # -- what can be exported ----------------------------------------------------------
    def cubes_of(self, kind: str) -> list[Cube]:
        out: list[Cube] = []
        for target in self.session.targets:
            if kind == "restored" and target.restored is not None:
                out.append(target.restored.with_data(target.restored.data, name=f"{target.name}_restored"))
            elif kind == "proxy" and target.proxy is not None:
                out.append(target.proxy.with_data(target.proxy.data, name=f"{target.name}_proxy"))
            elif kind == "synth":
                out.extend(c.with_data(c.data, name=f"{target.name}_synth{j + 1}") for j, c in enumerate(target.synth))
        return out

    # -- actions -----------------------------------------------------------------------
    def export_figures(self, folder: Path) -> list[Path]:
        """Save each view (switching tabs so each is laid out) as ``folder/<view>.png``."""
        tabs, current = self.tabs, self.tabs.currentIndex()
        written = []
        for name, widget in self.figures().items():
            page = next((i for i in range(tabs.count()) if tabs.widget(i).isAncestorOf(widget)
                         or tabs.widget(i) is widget), None)
            if page is not None:
                tabs.setCurrentIndex(page)
            written.append(export_figure(widget, Path(folder) / f"{name}.png"))
        tabs.setCurrentIndex(current)
        return written

    def export_csv(self, path: Path, roi: bool) -> Path:
        wl, columns = self.spectra.table()
        if roi:
            columns = {k: v for k, v in columns.items() if k.startswith("roi ")}
            if not columns:
                raise HiralignError("no ROI: tick ROI in the cube view and place the rectangle first")
        elif not columns:
            raise HiralignError("no spectra plotted: click a pixel in the cube view first")
        write_text(path, spectra_csv(wl, columns))
        return Path(path)

    def checkpoint_dialog(self) -> None:
        session, prefs = self.session, self.prefs
        if session.adapted_checkpoint is None:
            self.errors.show("No adapted model yet: run the Finetune stage first.")
            return
        folder = QFileDialog.getExistingDirectory(self.parent, "Export the adapted checkpoint into…",
                                                  prefs.last_folder("export"))
        if not folder:
            return
        prefs.set_last_folder("export", folder)
        target = Path(folder) / f"hiralign-adapted-{session.task}"
        if target.exists() and not self.confirm(f"{target} exists. Replace the bundle in it?"):
            return
        source = session.adapted_checkpoint
        self._job("export checkpoint", lambda progress: export_checkpoint(source, target),
                  done=f"adapted checkpoint bundle written to {target}")

    def restore_dialog(self) -> None:
        """Pick captures the run never saw and a folder; restore them as the run restored its targets."""
        from app.opener import OPEN_FILTER

        checkpoint = self.session.adapted_checkpoint
        if checkpoint is None:
            self.errors.show("No adapted model yet: run the Finetune stage first.")
            return
        paths, _ = QFileDialog.getOpenFileNames(self.parent, "Captures to restore with the adapted model",
                                                self.prefs.last_folder("open"), OPEN_FILTER)
        if not paths:
            return
        folder = QFileDialog.getExistingDirectory(self.parent, f"Write the {len(paths)} restored captures into…",
                                                  self.prefs.last_folder("export"))
        if folder:
            self.prefs.set_last_folder("export", folder)
            self.restore_new(checkpoint, [Path(p) for p in paths], Path(folder))

    def restore_new(self, checkpoint: Path, paths: Sequence[Path], folder: Path) -> None:
        """Restore ``paths`` with ``checkpoint``'s recipe into ``folder`` in the background (asks before replacing)."""
        from hiralign.device import resolve_device
        from hiralign.restoration import capture_clash, restore_files, result_paths
        from hiralign.runfolder import safe_names

        if capture_clash(paths, folder) is not None:
            self.errors.show(f"{folder} holds the captures themselves: their results would overwrite them. "
                             "Choose another folder.")
            return
        clashes = [n for n in safe_names(list(paths)) if result_paths(n, folder)[0].exists()]
        if clashes and not self.confirm(f"{len(clashes)} restored cube(s) already in {folder} "
                                        f"({', '.join(clashes[:3])}…). Replace them?"):
            return
        config = self.config()
        device = str(resolve_device(config.device))
        # an unticked "match the observation" (sr4) turns the recipe's projection off; ticked keeps the recipe's
        consistency = None if config.consistency else False
        self._job("restore new captures",
                  lambda progress: restore_files(checkpoint, list(paths), folder, tiles=config.tiles, device=device,
                                                 consistency=consistency, progress=progress),
                  done=f"{len(paths)} new capture(s) restored with the adapted model into {folder}", device=device)

    def cubes_dialog(self, kind: str) -> None:
        cubes = self.cubes_of(kind)
        if not cubes:
            self.errors.show(f"No {kind} cubes to export yet.")
            return
        label, ok = QInputDialog.getItem(self.parent, "Cube format", "Write the cubes as:", list(CUBE_FORMATS), 0,
                                         False)
        if not ok:
            return
        folder = QFileDialog.getExistingDirectory(self.parent, f"Export {len(cubes)} {kind} cubes into…",
                                                  self.prefs.last_folder("export"))
        if folder:
            self.prefs.set_last_folder("export", folder)
            self._job(f"export {kind}", lambda progress: export_cubes(cubes, Path(folder), CUBE_FORMATS[label],
                                                                      progress))

    def figures_dialog(self) -> None:
        if not self.figures():
            self.errors.show("No view shows anything yet: open a cube first.")
            return
        folder = QFileDialog.getExistingDirectory(self.parent, "Save figures into…", self.prefs.last_folder("export"))
        if folder:
            self.now(lambda: self.export_figures(Path(folder)))

    def csv_dialog(self, roi: bool) -> None:
        path, _ = QFileDialog.getSaveFileName(self.parent, "Save CSV", str(Path(self.prefs.last_folder(
            "export")) / ("roi_statistics.csv" if roi else "spectra.csv")), "CSV (*.csv)")
        if path:
            self.now(lambda: self.export_csv(Path(path), roi))

    def run_config_dialog(self) -> None:
        from app.run_config import RunConfigDialog, export_run_config

        dialog = RunConfigDialog(self.prefs.last_folder("export"), self.parent)
        if dialog.exec() != RunConfigDialog.DialogCode.Accepted:
            return
        choice = dialog.choices()
        if not choice["folder"] or not choice["run_dir"]:
            self.errors.show("Choose a folder for launch.sh and a run folder name.")
            return
        self.prefs.set_last_folder("export", choice["folder"])
        self.now(lambda: export_run_config(self.session, self.config(), choice["folder"], choice["run_dir"],
                                           choice["launcher"], choice["processes"]))

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question (tests replace this)."""
        from PySide6.QtWidgets import QMessageBox

        answer = QMessageBox.question(self.parent, "hiralign — export", question)
        return answer == QMessageBox.StandardButton.Yes

    def _job(self, name: str, work: Callable, done: str | None = None, device: str = "io") -> None:
        job = self.jobs.submit(name, work, device=device)
        job.failed.connect(lambda summary, details: self.errors.show(summary, details))
        job.finished.connect(lambda _result: self.status(done or f"{name}: done"))
        if done:  # where it went stays in the Messages dock, not only 5 s in the status bar
            job.finished.connect(lambda _result: logging.getLogger(__name__).warning("%s", done))

    def now(self, work: Callable) -> None:
        """Run a small export at once; its failure is shown, its success counted in the status bar."""
        try:
            written = work()
        except Exception as exc:  # noqa: BLE001 - shown in the error dialog
            self.errors.show_exception(exc)
            return
        count = len(written) if isinstance(written, list) else 1
        self.status(f"wrote {count} file(s)")
