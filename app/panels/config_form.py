"""A settings dialog built from a frozen config dataclass (generator or warp settings).

Each int/float/bool/str field gets an editor; the dialog returns a new instance made with
:func:`dataclasses.replace`, so the dataclass's own validation (``__post_init__``) decides
what is acceptable and its message is shown when a value is not.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from hiralign.errors import HiralignError


def _editor(value: Any, kind: Any) -> QWidget | None:
    if kind is bool or isinstance(value, bool):
        return QCheckBox(checked=bool(value))
    if kind is int or isinstance(value, int):
        return QSpinBox(minimum=-10**9, maximum=10**9, value=int(value))
    if kind is float or isinstance(value, float):
        box = QDoubleSpinBox(minimum=-1e9, maximum=1e9, decimals=6, value=float(value))
        box.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        return box
    if kind is str or isinstance(value, str):
        return QLineEdit(str(value))
    return None  # tuples, nested configs: not editable here


def _read(editor: QWidget) -> Any:
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        return editor.value()
    return editor.text()


class ConfigDialog(QDialog):
    """Edit a config dataclass; :attr:`result_config` holds the accepted value."""

    def __init__(self, config: Any, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.original = config
        self.result_config = config
        hints = typing.get_type_hints(type(config))
        form = QFormLayout()
        self.editors: dict[str, QWidget] = {}
        for field in dataclasses.fields(config):
            editor = _editor(getattr(config, field.name), hints.get(field.name))
            if editor is not None:
                self.editors[field.name] = editor
                form.addRow(field.name.replace("_", " "), editor)
        inner = QWidget()
        inner.setLayout(form)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00000")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self._defaults)
        layout = QVBoxLayout(self)
        doc = (type(config).__doc__ or "").strip().splitlines()
        if doc:
            layout.addWidget(QLabel(doc[0]))
        layout.addWidget(scroll, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(420, 520)

    def values(self) -> dict[str, Any]:
        return {name: _read(editor) for name, editor in self.editors.items()}

    def _accept(self) -> None:
        try:
            self.result_config = dataclasses.replace(self.original, **self.values())
        except (HiralignError, TypeError, ValueError) as exc:
            self.message.setText(str(exc))
            return
        self.accept()

    def _defaults(self) -> None:
        defaults = type(self.original)()
        for name, editor in self.editors.items():
            value = getattr(defaults, name)
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                editor.setValue(value)
            else:
                editor.setText(str(value))
