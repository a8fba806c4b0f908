"""The target-set panel: one row per target cube with a thumbnail and its shape, band
count and wavelength range; a context menu to attach a clean reference or remove it."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu, QWidget

from app.session import Session, Target
from app.views import rgb_pixmap, to_display_rgb

THUMB_SIZE = 64


def describe(target: Target) -> str:
    """``name`` then ``H × W × B · 400–700 nm`` (+ which layers exist)."""
    cube = target.degraded
    wl = target.wavelengths
    text = f"{target.name}\n{cube.height}×{cube.width}×{cube.n_bands} · {wl[0]:.0f}–{wl[-1]:.0f} nm"
    guides, synth = len(target.guides), len(target.warps)
    extras = [name for name, present in (("clean ref", target.clean is not None),
                                          ("proxy", target.proxy is not None),
                                          (f"{guides} guide{'s' * (guides != 1)}", bool(guides)),
                                          (f"{synth} synth", bool(synth)),
                                          ("restored", target.restored is not None)) if present]
    return text + ("\n" + ", ".join(extras) if extras else "")


def thumbnail(target: Target, size: int = THUMB_SIZE) -> QPixmap:
    """A stretched Γ pseudo-RGB thumbnail of the degraded cube (of the proxy once it exists)."""
    cube = thumbnail_source(target)
    rgb = to_display_rgb(cube.pseudo_rgb() if cube.n_bands >= 3 else np.repeat(cube.data[..., :1], 3, axis=2))
    return rgb_pixmap(rgb, size)


def thumbnail_source(target: Target):
    return target.proxy if target.proxy is not None else target.degraded


class TargetList(QListWidget):
    """Lists the session's targets and selects the current one.

    Signals:
        attach_clean_requested(int): the user asked to load a clean reference for a target.
    """

    attach_clean_requested = Signal(int)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        #: uid -> (cube drawn, icon): most updates change other layers than the drawn one.
        self._icons: dict[int, tuple[object, QIcon]] = {}
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.setSpacing(2)
        self.setWordWrap(True)
        # wrapped items follow the panel's width; a horizontal scrollbar would cut them off at 1024 px
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setToolTip("Target set: the degraded cubes to adapt to. Right-click for more.")
        self.customContextMenuRequested.connect(self._context_menu)
        self.currentRowChanged.connect(self._on_row_changed)
        session.targets_changed.connect(self.rebuild)
        session.target_updated.connect(self.update_row)
        session.current_changed.connect(self._on_session_current)

    def rebuild(self) -> None:
        alive = {t.uid for t in self.session.targets}
        self._icons = {uid: icon for uid, icon in self._icons.items() if uid in alive}
        self.blockSignals(True)
        self.clear()
        for target in self.session.targets:
            item = QListWidgetItem(self._icon(target), describe(target))
            item.setToolTip(str(target.path) if target.path else target.name)
            self.addItem(item)
        self.setCurrentRow(self.session.current)
        self.blockSignals(False)

    def update_row(self, index: int) -> None:
        item = self.item(index)
        if item is not None:
            target = self.session.targets[index]
            item.setText(describe(target))
            item.setIcon(self._icon(target))

    def _icon(self, target: Target) -> QIcon:
        cube = thumbnail_source(target)
        cached = self._icons.get(target.uid)
        if cached is None or cached[0] is not cube:
            cached = (cube, QIcon(thumbnail(target)))
            self._icons[target.uid] = cached
        return cached[1]

    def row_texts(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count())]

    def _on_row_changed(self, row: int) -> None:
        if row != self.session.current:
            self.session.set_current(row)

    def _on_session_current(self, index: int) -> None:
        if self.currentRow() != index:
            self.blockSignals(True)
            self.setCurrentRow(index)
            self.blockSignals(False)

    def _context_menu(self, pos) -> None:
        row = self.indexAt(pos).row()
        if row < 0:
            return
        menu = QMenu(self)
        menu.addAction("Attach clean reference…", lambda: self.attach_clean_requested.emit(row))
        menu.addAction("Remove from target set", lambda: self.session.remove_target(row))
        menu.exec(self.viewport().mapToGlobal(pos))
