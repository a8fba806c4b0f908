"""The window's layout and help: remembered geometry and docks, *Reset layout*, the user
guide and the keyboard-shortcut list.

* :class:`LayoutKeeper` saves ``saveGeometry()``/``saveState()`` in the preferences'
  :class:`QSettings` when the window closes and restores them on the next start; the
  layout the window was built with is kept for *View ▸ Reset layout*. A state saved by
  another version of the dock set is ignored (``restoreState`` refuses it).
* :func:`user_guide_dialog` shows ``docs/gui.md`` (Qt renders the Markdown and its
  screenshots) offline; :func:`shortcut_rows` lists every shortcut of the window's
  actions and buttons plus the mouse gestures of the views.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, QSettings, QSize, Qt, QUrl
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QHeaderView,
    QMainWindow,
    QScrollArea,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

#: Where the user guide lives in a source checkout.
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "gui.md"
#: Mouse gestures of the views, listed with the keyboard shortcuts.
GESTURES = (
    ("Click a pixel (Cube view)", "spectrum of every layer at that pixel"),
    ("Shift-click a pixel", "pin / unpin its spectrum"),
    ("Mouse wheel / drag", "zoom / pan the images (panels share zoom)"),
    ("Right-click the image", "fit, stretch, ROI, layer and display menu"),
    ("Click a guide pixel (Warp view)", "its proxy source pixels and weights"),
)
#: Smallest dock sizes (px) that keep their contents usable; below them a dock is squashed
#: instead of the window growing past the screen.
DOCK_MINIMUM = {"Target set": (180, 120), "Spectra": (360, 190), "Pipeline": (340, 200), "Messages": (300, 120)}
#: Share of the window each dock gets by default: width of the side docks, height of the bottom ones.
DOCK_SHARE = {"Target set": 0.21, "Pipeline": 0.26, "Spectra": 0.30}
#: Largest default dock sizes (px): on a big screen the views get the extra room.
DOCK_DEFAULT_MAXIMUM = {"Target set": 300, "Pipeline": 420, "Spectra": 380}
#: The window's preferred size, px; a smaller screen gets 92 % of its available area.
PREFERRED_SIZE = (1500, 950)


def initial_size(screen: QRect | None = None) -> QSize:
    """:data:`PREFERRED_SIZE`, shrunk to 92 % of the screen's available area when that is smaller."""
    if screen is None:
        primary = QGuiApplication.primaryScreen()
        screen = primary.availableGeometry() if primary is not None else QRect(0, 0, *PREFERRED_SIZE)
    width, height = PREFERRED_SIZE
    return QSize(min(width, int(screen.width() * 0.92)), min(height, int(screen.height() * 0.92)))


def fit_docks(window: QMainWindow) -> None:
    """Size the docks by :data:`DOCK_SHARE` of the window (never below :data:`DOCK_MINIMUM`).

    Qt keeps dock sizes when the window is resized, so a window built large and then made
    small would keep big docks and a tiny centre; call this after such a resize.
    """
    docks = {d.objectName(): d for d in window.findChildren(QDockWidget)}
    for names, orientation, extent in ((("Target set", "Pipeline"), Qt.Orientation.Horizontal, window.width()),
                                       (("Spectra",), Qt.Orientation.Vertical, window.height())):
        chosen = [docks[n] for n in names if n in docks and docks[n].isVisible()]
        sizes = [max(min(int(DOCK_SHARE[d.objectName()] * extent), DOCK_DEFAULT_MAXIMUM[d.objectName()]),
                     DOCK_MINIMUM[d.objectName()][orientation.value - 1]) for d in chosen]
        if chosen:
            window.resizeDocks(chosen, sizes, orientation)


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless vertical scroll area (tall panels in short windows)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    # Wide enough for the widget beside a vertical scroll bar: no horizontal scrolling.
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    bar = area.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
    area.setMinimumWidth(widget.minimumSizeHint().width() + bar + 4)
    return area


def apply_dock_minimums(window: QMainWindow) -> None:
    """Give each known dock its :data:`DOCK_MINIMUM` (by object name)."""
    for dock in window.findChildren(QDockWidget):
        size = DOCK_MINIMUM.get(dock.objectName())
        if size is not None:
            widget = dock.widget()
            widget.setMinimumSize(max(size[0], widget.minimumWidth()), max(size[1], widget.minimumHeight()))


class LayoutKeeper:
    """Saves, restores and resets the window's geometry and dock layout.

    Args:
        window: the main window, fully built (every dock added, each with an object name).
        store: where the layout is kept (the preferences' ``QSettings``).
    """

    GEOMETRY, STATE = "window/geometry", "window/state"

    def __init__(self, window: QMainWindow, store: QSettings) -> None:
        self.window = window
        self.store = store
        self.default_state = window.saveState()

    def restore(self) -> bool:
        """Apply the saved geometry and docks; False when none was saved (or it was unusable)."""
        geometry, state = self.store.value(self.GEOMETRY), self.store.value(self.STATE)
        if not isinstance(geometry, QByteArray) or not isinstance(state, QByteArray):
            return False
        return bool(self.window.restoreGeometry(geometry)) and bool(self.window.restoreState(state))

    def save(self) -> None:
        self.store.setValue(self.GEOMETRY, self.window.saveGeometry())
        self.store.setValue(self.STATE, self.window.saveState())
        self.store.sync()

    def reset(self) -> None:
        """Back to the layout the window was built with: every dock shown, docked, default sizes."""
        for dock in self.window.findChildren(QDockWidget):
            dock.setFloating(False)
            dock.show()
        self.window.restoreState(self.default_state)
        fit_docks(self.window)
        self.store.remove(self.STATE)


def user_guide_dialog(parent: QWidget) -> QDialog:
    """A dialog showing the user guide (``docs/gui.md``) with its screenshots, offline."""
    dialog = QDialog(parent)
    dialog.setWindowTitle("hiralign — user guide")
    dialog.resize(900, 700)
    browser = QTextBrowser()
    browser.setOpenExternalLinks(True)
    if GUIDE.is_file():
        browser.setSearchPaths([str(GUIDE.parent)])
        browser.document().setBaseUrl(QUrl.fromLocalFile(str(GUIDE.parent) + "/"))
        browser.setMarkdown(GUIDE.read_text(encoding="utf-8"))
    else:
        browser.setMarkdown(f"The user guide ({GUIDE.name}) is not part of this build: it ships in the source "
                            "repository's docs/ folder (``mkdocs serve`` there shows the whole documentation).")
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(browser)
    layout.addWidget(buttons)
    dialog.browser = browser  # type: ignore[attr-defined] - for tests
    return dialog


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """(what, keys) of every action and button with a shortcut in ``window``, then the mouse gestures."""
    rows: dict[str, str] = {}
    for action in window.findChildren(QAction):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        text = action.text().replace("&", "").rstrip("…").strip()
        if keys and text:
            rows.setdefault(text, keys)
    for button in window.findChildren(QAbstractButton):
        keys = button.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if keys and button.text():
            rows.setdefault(button.text().replace("&", ""), keys)
    return sorted(rows.items(), key=lambda kv: kv[0].lower()) + list(GESTURES)


def shortcuts_dialog(parent: QWidget) -> QDialog:
    """A dialog with the table of :func:`shortcut_rows`."""
    rows = shortcut_rows(parent)
    dialog = QDialog(parent)
    dialog.setWindowTitle("Keyboard shortcuts and mouse gestures")
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(["Action", "Keys / gesture"])
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for i, (what, keys) in enumerate(rows):
        table.setItem(i, 0, QTableWidgetItem(what))
        table.setItem(i, 1, QTableWidgetItem(keys))
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(table)
    layout.addWidget(buttons)
    dialog.resize(560, min(120 + 26 * len(rows), 640))
    dialog.table = table  # type: ignore[attr-defined] - for tests
    return dialog
