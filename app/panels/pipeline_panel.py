"""The pipeline panel: settings of the adaptation, a button per stage, Run all, progress
with ETA, a live preview and a working Cancel."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import stages
from app.jobs import Job
from app.panels.config_form import ConfigDialog
from app.runner import PipelineRunner
from app.settings import Preferences
from app.views import to_display_rgb
from hiralign.config import AdaptConfig, field_default, field_help
from hiralign.ensemble import PROXY_SOURCES, ProxyConfig, resolve_source
from hiralign.finetune import MODES, FinetuneConfig

CHOOSE_MODEL = "Choose checkpoint folder…"
#: The demo opens with a smaller budget than the paper's (M = 3 guides, 400 steps) so that
#: *Run all* ends in minutes on two CPU cores; measurements of both in docs/gui.md.
#: Its proxies come from the source model's 8-view ensemble, so the Training tab compares the
#: source model with its adaptation. ``auto`` (the subspace denoiser here) makes better proxies
#: (32–39 dB on the demo scenes) than this budget's adapted model (4–7 dB below them, measured
#: 2026-12-01), and its "source" column would then be the denoiser, not the source model.
DEMO_BUDGET = {"guides": 1, "steps": 150, "proxy": "ensemble"}
DEVICES = ("auto", "cpu", "cuda")


#: Captions of the image previews the stages stream (``Progress.preview`` keys).
PREVIEW_CAPTIONS = {"proxy": "proxy RGB Γ(p)", "guide": "generated guide g", "warp_rgb": "transported RGB r̃ (warping)",
                    "warp": "transported RGB r̃"}


def preview_caption(stage: str, key: str) -> str:
    """The preview title: the running stage and what its image shows."""
    return f"{stage}: {PREVIEW_CAPTIONS.get(key, key.replace('_', ' '))}"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA —"
    seconds = int(round(seconds))
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


def _tasks() -> tuple[str, ...]:
    from hiralign.degrade import ALL_TASKS  # the protocol's tasks and sensor (the captures' own noise)

    return ALL_TASKS


def _generators() -> tuple[tuple[str, ...], str]:
    """The generator names and the default one (unCLIP when its weights are present)."""
    from hiralign.generate import GENERATORS, default_generator_name

    return tuple(GENERATORS), default_generator_name()


def _tip(cls: type, name: str) -> str:
    return field_help(cls, name)


class PipelinePanel(QWidget):
    """Settings + stage buttons + progress; drives a :class:`PipelineRunner`.

    Signals:
        loss_streamed(list): the finetune loss history so far, while it trains.
        model_changed: the task or the source model chosen changed (the window re-checks
            how the model will treat each target).
    """

    loss_streamed = Signal(list)
    model_changed = Signal()

    def __init__(self, runner: PipelineRunner, prefs: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.session = runner.session
        self.prefs = prefs
        #: The chosen generator's config dataclass, and the warp settings (None: the paper's).
        self.generator_config: object | None = None
        self.warp_config: object | None = None

        self.task_box = QComboBox(toolTip="Degradation the target cubes suffer (the restoration task)")
        self.task_box.addItems(_tasks())
        # sr4, bandmiss, inpaint: proxies and restorations agree exactly with the targets (AdaptConfig.consistency)
        self.consistency_check = QCheckBox("match the observation", checked=field_default(AdaptConfig, "consistency"),
                                           toolTip=_tip(AdaptConfig, "consistency"))
        self.model_box = QComboBox(toolTip="Source-pretrained restorer Φ_src")
        self.generator_box = QComboBox(toolTip="How guide RGBs g_ij are generated from each proxy RGB")
        names, default = _generators()
        self.generator_box.addItems(names)
        self.generator_box.setCurrentText(default)
        self.generator_button = QPushButton("Settings…", toolTip="Generator settings")
        self.warp_button = QPushButton("Warp settings…", toolTip="Spectral-warp settings (paper defaults)")
        # Stage 1's proxy source, read from hiralign.ensemble.ProxyConfig like the CLI's --proxy-source.
        self.proxy_config = ProxyConfig()
        self.proxy_box = QComboBox(toolTip=_tip(ProxyConfig, "source"))
        self.proxy_box.addItems(PROXY_SOURCES)
        self.proxy_box.setCurrentText(field_default(ProxyConfig, "source"))
        # the longest source name (subspace-bm3d) must not widen the panel at 1024×700; the row
        # stretches the box to the room there is, and the list opens as wide as its names
        self.proxy_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.proxy_box.setMinimumContentsLength(len("subspace") - 2)  # the icon space makes up the rest
        self.proxy_box.view().setMinimumWidth(self.proxy_box.view().sizeHintForColumn(0) + 24)
        self.proxy_button = QPushButton("Settings…", toolTip="Proxy settings: ensemble transforms, blend weight, "
                                                             "BM4D profile")
        # defaults and tooltips come from the config dataclasses, as the CLI's help does
        self.guides_spin = QSpinBox(minimum=1, maximum=32, value=field_default(AdaptConfig, "guides"),
                                    toolTip=_tip(AdaptConfig, "guides"))
        self.ratio_spin = QDoubleSpinBox(minimum=0.0, maximum=50.0, singleStep=0.5, decimals=1,
                                         value=field_default(FinetuneConfig, "ratio"),
                                         toolTip=_tip(FinetuneConfig, "ratio"))
        self.steps_spin = QSpinBox(minimum=1, maximum=100000, value=field_default(FinetuneConfig, "steps"),
                                   singleStep=50, toolTip=_tip(FinetuneConfig, "steps"))
        self.mode_box = QComboBox(toolTip=_tip(FinetuneConfig, "mode"))
        self.mode_box.addItems(MODES)
        self.mode_box.setCurrentText(field_default(FinetuneConfig, "mode"))
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=field_default(AdaptConfig, "seed"),
                                  toolTip=_tip(AdaptConfig, "seed"))
        self.device_box = QComboBox(toolTip="Where the heavy stages run")
        self.device_box.addItems(DEVICES)
        self.device_box.setCurrentText(prefs.device if prefs.device in DEVICES else "auto")
        self._saved_device = self.device_box.currentText()  # checked against the machine by set_availability

        form = QFormLayout()
        form.addRow("Task", self.task_box)
        form.addRow("Consistency", self.consistency_check)  # its own row: beside the task it widens the dock
        self.settings_form = form
        form.addRow("Source model", self.model_box)
        proxy_row = QHBoxLayout()
        proxy_row.addWidget(self.proxy_box, 1)
        proxy_row.addWidget(self.proxy_button)
        form.addRow("Proxy source", proxy_row)
        generator_row = QHBoxLayout()
        generator_row.addWidget(self.generator_box, 1)
        generator_row.addWidget(self.generator_button)
        form.addRow("Generator", generator_row)
        form.addRow("Guides per proxy", self.guides_spin)
        form.addRow("Synth : proxy ratio", self.ratio_spin)
        form.addRow("Finetune steps", self.steps_spin)
        form.addRow("Finetune pairs", self.mode_box)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Device", self.device_box)
        form.addRow("", self.warp_button)
        # Shown when the demo sets its smaller budget, so the values used are never switched silently.
        self.budget_note = QLabel(wordWrap=True)
        self.budget_note.setVisible(False)
        form.addRow("", self.budget_note)
        settings_box = QGroupBox("Settings")
        settings_box.setLayout(form)

        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for k, stage in enumerate(stages.STAGES):
            button = QPushButton(stage.capitalize())
            button.clicked.connect(lambda _checked=False, s=stage: self.start(s))
            self.buttons[stage] = button
            grid.addWidget(button, k // 3, k % 3)
        self.run_all_button = QPushButton("Run all")
        self.run_all_button.setStyleSheet("font-weight: bold")
        self.run_all_button.setShortcut("Ctrl+R")
        self.run_all_button.clicked.connect(lambda _checked=False: self.start("all"))
        grid.addWidget(self.run_all_button, 1, 2)
        self.cancel_button = QPushButton("Cancel", enabled=False, toolTip="Stop the running stage (Esc)")
        self.cancel_button.setShortcut("Esc")
        self.cancel_button.clicked.connect(lambda _checked=False: self.cancel())
        grid.addWidget(self.cancel_button, 2, 0, 1, 3)

        self.progress = QProgressBar(minimum=0, maximum=1000, value=0, textVisible=True)
        self.status = QLabel("Idle.")
        self.status.setWordWrap(True)
        self.preview = pg.GraphicsLayoutWidget()
        self.preview.setFixedHeight(200)
        self.preview_title = self.preview.addLabel("live preview", row=0, col=0, size="9pt")
        self.preview_box = self.preview.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.preview_image = pg.ImageItem(axisOrder="row-major")
        self.preview_box.addItem(self.preview_image)

        layout = QVBoxLayout(self)
        layout.addWidget(settings_box)
        layout.addLayout(grid)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.preview)
        layout.addStretch(1)

        self._job: Job | None = None
        self._cancelling = False
        self._stage_started = 0.0
        self._preview_stage = ""
        self.task_box.currentTextChanged.connect(self._fill_models)
        self.model_box.activated.connect(self._on_model_activated)
        self.generator_box.currentTextChanged.connect(self._on_generator_changed)
        self.generator_button.clicked.connect(lambda _checked=False: self._edit_generator())
        self.warp_button.clicked.connect(lambda _checked=False: self._edit_warp())
        self.proxy_button.clicked.connect(lambda _checked=False: self._edit_proxy())
        self.proxy_box.currentTextChanged.connect(lambda _text: self._describe_proxy())
        self.task_box.currentTextChanged.connect(lambda _text: self._describe_proxy())
        self.task_box.currentTextChanged.connect(self._show_consistency)
        self.device_box.currentTextChanged.connect(self._on_device_changed)
        runner.stage_started.connect(self._on_stage_started)
        runner.stage_ended.connect(self._on_stage_ended)
        runner.previewed.connect(self._on_preview)
        for signal in (self.session.targets_changed, self.session.training_updated):
            signal.connect(self.update_buttons)
        self.session.targets_changed.connect(self._on_targets_changed)
        self.session.target_updated.connect(lambda _i: self.update_buttons())
        self.restore_settings()
        self._describe_proxy()
        self._show_consistency(self.task_box.currentText())
        self._fill_models()
        self._on_generator_changed(self.generator_box.currentText())
        self.update_buttons()

    # -- settings ----------------------------------------------------------------------
    def config(self) -> AdaptConfig:
        """The panel's choices as the run's one typed config (what ``hiralign adapt`` gets).

        Raises:
            ConfigError: an inconsistent combination (e.g. a mode that needs guides).
        """
        from hiralign.warp import WarpConfig

        model = self.model_box.currentData()
        finetune = FinetuneConfig(steps=self.steps_spin.value(), ratio=self.ratio_spin.value(),
                                  mode=self.mode_box.currentText())
        proxy = dataclasses.replace(self.proxy_config, source=self.proxy_box.currentText())
        return AdaptConfig(task=self.task_box.currentText(), model=str(model) if model else None,
                           generator=self.generator_box.currentText(), generator_config=self.generator_config,
                           guides=self.guides_spin.value(), warp=self.warp_config or WarpConfig(), finetune=finetune,
                           proxy=proxy, consistency=self.consistency_check.isChecked(), seed=self.seed_spin.value(),
                           device=self.device_box.currentText())

    # The settings kept between sessions (the model, generator settings and warp settings are
    # per run; the device has its own preference).
    def _saved_widgets(self) -> dict[str, QWidget]:
        return {"task": self.task_box, "proxy": self.proxy_box, "generator": self.generator_box,
                "guides": self.guides_spin, "ratio": self.ratio_spin, "steps": self.steps_spin, "mode": self.mode_box,
                "seed": self.seed_spin}

    def save_settings(self) -> None:
        """Remember the settings for the next start (called when the window closes).

        The demo's budget is not a choice of the user's: while it is unchanged, the guides
        and steps saved stay what they were.
        """
        previous = self.prefs.pipeline_settings()
        values: dict[str, object] = {}
        for key, widget in self._saved_widgets().items():
            values[key] = widget.currentText() if isinstance(widget, QComboBox) else widget.value()
        if not self.budget_note.isHidden() and all(values[k] == DEMO_BUDGET[k] for k in DEMO_BUDGET):
            for key in DEMO_BUDGET:
                if key in previous:
                    values[key] = previous[key]
                else:
                    del values[key]
        self.prefs.set_pipeline_settings(values)

    def restore_settings(self) -> None:
        """Apply the settings saved by :meth:`save_settings`; unknown or invalid values are skipped."""
        for key, text in self.prefs.pipeline_settings().items():
            widget = self._saved_widgets().get(key)
            try:
                if isinstance(widget, QComboBox):
                    if widget.findText(text) >= 0:
                        widget.setCurrentText(text)
                elif isinstance(widget, QSpinBox):
                    widget.setValue(int(text))
                elif isinstance(widget, QDoubleSpinBox):
                    widget.setValue(float(text))
            except ValueError:
                continue  # a hand-edited preference file: keep the default

    def set_source_model(self, folder: str | Path) -> None:
        folder = str(folder)
        index = self.model_box.findData(folder)
        if index < 0:
            self.model_box.insertItem(self.model_box.count() - 1, Path(folder).name, folder)
            index = self.model_box.findData(folder)
            self._describe_item(index, folder)
        self.model_box.setCurrentIndex(index)
        self.update_buttons()
        self.model_changed.emit()

    def apply_demo(self, demo) -> None:
        """Select the demo's task, its shipped model and the demo budget, ready for *Run all*."""
        self.task_box.setCurrentText(demo.task)
        self.session.task = demo.task
        self.guides_spin.setValue(DEMO_BUDGET["guides"])
        self.steps_spin.setValue(DEMO_BUDGET["steps"])
        self.proxy_box.setCurrentText(DEMO_BUDGET["proxy"])
        # Short: a long note pushed the stage buttons and Run all below the fold at 1366×768.
        self.budget_note.setText(
            f"Demo budget: {DEMO_BUDGET['guides']} guide, {DEMO_BUDGET['steps']} finetune steps, "
            f"{DEMO_BUDGET['proxy']} proxies: Run all in minutes (paper: {field_default(AdaptConfig, 'guides')} "
            f"guides, {field_default(FinetuneConfig, 'steps')} steps).")
        self.budget_note.setToolTip(
            f"The proxies come from the source model's {DEMO_BUDGET['proxy']}, so the Training tab compares the "
            f"source model with its adaptation. auto ({resolve_source('auto', demo.task)} here) may make better "
            "proxies than a 150-step adaptation, and its 'source' column would not be the source model.")
        self.budget_note.setVisible(True)

    def _describe_item(self, index: int, folder: str | Path) -> None:
        """The model's one-line summary (what it is, how it was made) as the item's tooltip."""
        from hiralign.errors import HiralignError
        from hiralign.models.summary import describe_checkpoint, summary_line

        try:
            text = summary_line(describe_checkpoint(folder))
        except HiralignError as exc:  # the run's preflight names the problem; the tooltip only hints
            text = f"{folder}: {exc}"
        self.model_box.setItemData(index, text, Qt.ItemDataRole.ToolTipRole)

    def _fill_models(self) -> None:
        self.model_box.clear()
        shipped = stages.shipped_model(self.task_box.currentText(), [t.degraded for t in self.session.targets])
        if shipped is not None:
            # Named by folder: "gaussian-any" (band-agnostic) and "gaussian" (31 bands) differ.
            self.model_box.addItem(f"shipped: {Path(shipped).name}", str(shipped))
            self._describe_item(0, shipped)
        self.model_box.addItem(CHOOSE_MODEL, None)
        self.session.task = self.task_box.currentText()
        self.update_buttons()
        self.model_changed.emit()

    def _on_targets_changed(self) -> None:
        # The shipped model depends on the targets (a 16-band capture takes the band-agnostic
        # one, as `hiralign adapt` decides): follow them unless the user chose a checkpoint.
        shipped = self.model_box.currentText().startswith("shipped:") or self.model_box.currentData() is None
        if shipped and str(self.model_box.currentData()) != str(stages.shipped_model(
                self.task_box.currentText(), [t.degraded for t in self.session.targets])):
            self._fill_models()

    def _on_model_activated(self, index: int) -> None:
        if self.model_box.itemText(index) != CHOOSE_MODEL:
            return
        folder = QFileDialog.getExistingDirectory(self, "Source checkpoint folder", self.prefs.last_folder("model"))
        if folder:
            self.prefs.set_last_folder("model", folder)
            self.set_source_model(folder)
        else:
            self.model_box.setCurrentIndex(0)

    def _on_generator_changed(self, name: str) -> None:
        self.generator_config = None
        if name:
            from hiralign.generate import settings_class

            self.generator_config = settings_class(name)()
        self.generator_button.setEnabled(dataclasses.is_dataclass(self.generator_config))

    def _edit_generator(self) -> None:
        dialog = ConfigDialog(self.generator_config, f"{self.generator_box.currentText()} settings", self)
        if dialog.exec():
            self.generator_config = dialog.result_config

    def _edit_proxy(self) -> None:
        current = dataclasses.replace(self.proxy_config, source=self.proxy_box.currentText())
        dialog = ConfigDialog(current, "Proxy settings", self)
        if dialog.exec():
            self.proxy_config = dialog.result_config
            self.proxy_box.setCurrentText(self.proxy_config.source)

    def _show_consistency(self, task: str) -> None:
        from hiralign.consistency import applies

        self.settings_form.setRowVisible(self.consistency_check, applies(task))

    def _describe_proxy(self) -> None:
        """The proxy box's tooltip says what ``auto`` means for the task chosen (as the run resolves it)."""
        text = _tip(ProxyConfig, "source")
        if self.proxy_box.currentText() == "auto":
            text += f"\nHere, for {self.task_box.currentText()}: {resolve_source('auto', self.task_box.currentText())}"
        self.proxy_box.setToolTip(text)

    def _edit_warp(self) -> None:
        from hiralign.warp import WarpConfig

        dialog = ConfigDialog(self.warp_config or WarpConfig(), "Warp settings", self)
        if dialog.exec():
            self.warp_config = dialog.result_config

    def _on_device_changed(self, name: str) -> None:
        self.prefs.device = name

    def set_availability(self, available: dict) -> None:
        """Grey out what this machine cannot run (:func:`app.analysis.availability`), saying why.

        A generator without its weights and ``cuda`` without a GPU stay listed (a launch file
        for another machine may want them) but disabled, with the reason as their tooltip. A
        ``cuda`` choice saved on a machine that had a GPU falls back to ``auto`` here, with a
        message, instead of failing every run.
        """
        from PySide6.QtCore import Qt

        def disable(box: QComboBox, text: str, reason: str) -> None:
            index = box.findText(text)
            item = box.model().item(index) if index >= 0 else None
            if item is not None:
                item.setEnabled(not reason)
                item.setData(reason or None, Qt.ItemDataRole.ToolTipRole)

        for name, reason in available.get("generators", {}).items():
            if reason:
                first = reason.split("; downloads are off")[0].split(". ")[0]
                reason = (f"Not available on this machine: {first}. Download the weights (docs/generators.md) "
                          "and restart, or choose another generator.")
            disable(self.generator_box, name, reason)
        # proxy sources that need an optional package (blend mixes in the subspace denoiser by default)
        for package, source in (("bm4d", "bm4d"), ("bm3d", "subspace-bm3d")):
            if package in available:
                missing = "" if available[package] else (f"Not available: the optional {package} package is not "
                                                         f"installed (pip install {package}; free for non-commercial "
                                                         "use).")
                disable(self.proxy_box, source, missing)
        cuda = bool(available.get("cuda"))
        disable(self.device_box, "cuda", "" if cuda else "Not available: torch sees no CUDA GPU on this machine.")
        if not cuda and self._saved_device == "cuda" and self.device_box.currentText() == "cuda":
            self.device_box.setCurrentText("auto")
            import logging

            logging.getLogger(__name__).warning("the saved device cuda is not available on this machine (no CUDA "
                                                "GPU); using auto")
        self._saved_device = ""

    # -- running -----------------------------------------------------------------------
    def start(self, stage: str) -> Job | None:
        """Start ``stage`` (or ``"all"``); errors are shown, not raised."""
        try:
            if stage == "all":
                return self.runner.run_all(self.config())
            return self.runner.start(stage, self.config())
        except Exception as exc:  # noqa: BLE001 - every failure reaches the error dialog
            self.runner.errors.show_exception(exc)
            return None

    def cancel(self) -> None:
        """Stop the running stage (and the rest of *Run all*), saying so at once.

        The worker stops at its next check, up to seconds later (a warp iteration, a
        training step): until then the button is disabled and the status says it is
        cancelling, instead of the stage's last progress line and ETA.
        """
        if not self.runner.busy:
            return
        self.runner.cancel()
        self._cancelling = True
        stage = self.runner.current_stage.capitalize()
        self.status.setText(f"{stage}: cancelling… (it stops at its next step; finished results are kept)")
        self.update_buttons()

    def update_buttons(self) -> None:
        busy = self.runner.busy
        for stage, button in self.buttons.items():
            reason = self.runner.missing_inputs(stage)
            if stage in ("proxy", "finetune") and not reason and self.model_box.currentData() is None:
                reason = "Choose a source model first."
            button.setEnabled(not busy and not reason)
            button.setToolTip(reason or f"Run the {stage} stage")
        all_reason = self.runner.missing_inputs("proxy") or (None if self.model_box.currentData() else
                                                             "Choose a source model first.")
        self.run_all_button.setEnabled(not busy and not all_reason)
        self.run_all_button.setToolTip(all_reason or "Proxy → Generate → Warp → Finetune → Evaluate "
                                                     "(the whole chain is checked first)")
        self.cancel_button.setEnabled(busy and not self._cancelling)
        self.generator_button.setEnabled(not busy and dataclasses.is_dataclass(self.generator_config))
        self.warp_button.setEnabled(not busy)
        self.proxy_button.setEnabled(not busy)

    def _on_stage_started(self, stage: str, job: Job) -> None:
        self._job = job
        self._stage_started = time.monotonic()
        self.progress.setValue(0)
        self.status.setText(f"{stage.capitalize()}: waiting…")
        self._preview_stage = stage  # the caption changes with the next image, so it always describes the image
        job.progressed.connect(lambda done, total, message: self._on_progress(stage, job, done, total, message))
        self.update_buttons()

    def _on_progress(self, stage: str, job: Job, done: float, total: float, message: str) -> None:
        if self._cancelling:
            return  # "cancelling…" stays until the stage has stopped
        if total > 0:
            self.progress.setValue(int(1000 * min(done / total, 1.0)))
        self.status.setText(f"{stage.capitalize()}: {message}  ·  {format_eta(job.eta_seconds())}")

    def _on_stage_ended(self, stage: str, state: str) -> None:
        elapsed = time.monotonic() - self._stage_started
        stall = self._job.max_stall_ms if self._job is not None else 0.0
        words = {"finished": "done", "failed": "failed", "cancelled": "cancelled"}[state]
        self.status.setText(f"{stage.capitalize()} {words} after {elapsed:.1f} s "
                            f"(GUI max stall {stall:.0f} ms).")
        if state == "finished":
            self.progress.setValue(1000)
        self._job = None
        self._cancelling = False
        self.update_buttons()

    def _on_preview(self, key: str, value: object) -> None:
        if isinstance(value, np.ndarray) and value.ndim in (2, 3):
            image = np.asarray(value, dtype=np.float32)
            if image.ndim == 3:
                image = to_display_rgb(image)  # dark scenes stay visible
            self.preview_image.setImage(image, levels=(0.0, 1.0) if image.ndim == 3 else None)
            self.preview_title.setText(preview_caption(self._preview_stage, key))
            self.preview_box.autoRange(padding=0.0)
        elif key == "loss":
            self.loss_streamed.emit(self.runner.live_losses)
