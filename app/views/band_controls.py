"""The cube view's band pickers: RGB composite (three bands, presets) or one band (slider).

The pickers are labelled in nm. In RGB mode the R/G/B boxes show and the band slider
hides, in single-band mode the reverse: both in one row did not fit at 1024 px and
squashed the slider to a handle. Moving the slider switches to single-band mode; picking
a preset or a channel band switches to RGB mode.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QWidget

from hiralign.cube import RGB_WAVELENGTHS_NM, Cube

#: Band-combination presets (R, G, B) in nm; offered when the cube covers them.
RGB_PRESETS: dict[str, tuple[float, float, float]] = {
    "Γ pseudo-RGB 660/550/470 nm": RGB_WAVELENGTHS_NM,
    "True colour 640/545/460 nm": (640.0, 545.0, 460.0),
    "Colour infrared 860/650/550 nm": (860.0, 650.0, 550.0),
    "SWIR 2200/1650/850 nm": (2200.0, 1650.0, 850.0),
}
#: A preset is offered when each of its wavelengths lies within this many nm of the cube's range.
PRESET_TOLERANCE_NM = 25.0
MODES = ("RGB composite", "Single band")

#: A display choice: (mode index, R/G/B band indices, single band index).
Choice = tuple[int, tuple[int, ...], int]


def fixed_combo(tip: str, chars: int) -> QComboBox:
    """A combo box sized by ``chars`` characters, not by its longest item (long names elide)."""
    box = QComboBox(toolTip=tip)
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(chars)
    return box


class BandControls(QObject):
    """Mode, preset, R/G/B and single-band pickers for one cube's bands.

    Signals:
        changed: the bands or the mode on display changed (redraw the image).
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cube: Cube | None = None
        self._building = False
        self.mode_box = QComboBox(toolTip="RGB composite of three bands, or one band")
        self.mode_box.addItems(MODES)
        self.preset_box = fixed_combo("Band combination presets (wavelengths in nm)", 15)
        self.channel_boxes = [fixed_combo(f"{name} channel band", 8) for name in ("Red", "Green", "Blue")]
        self.band_slider = QSlider(Qt.Orientation.Horizontal, toolTip="Band shown in single-band mode")
        self.band_slider.setMinimumWidth(120)
        self.band_label = QLabel("— nm")
        self.band_label.setMinimumWidth(self.band_label.fontMetrics().horizontalAdvance("0000.0 nm  (band 000/000)"))
        self.channel_row = QWidget()
        channels = QHBoxLayout(self.channel_row)
        channels.setContentsMargins(0, 0, 0, 0)
        for name, box in zip("RGB", self.channel_boxes):
            label = QLabel(name)
            label.setStyleSheet(f"color: {dict(R='#c00000', G='#008000', B='#0000c0')[name]}; font-weight: bold")
            channels.addWidget(label)
            channels.addWidget(box)
        channels.addStretch(1)
        self.band_row = QWidget()
        band = QHBoxLayout(self.band_row)
        band.setContentsMargins(0, 0, 0, 0)
        band.addWidget(QLabel("Band"))
        band.addWidget(self.band_slider, 1)
        band.addWidget(self.band_label)
        self.band_row.hide()

        self.mode_box.currentIndexChanged.connect(self._on_mode_changed)
        self.preset_box.currentIndexChanged.connect(self._apply_preset)
        for box in self.channel_boxes:
            box.currentIndexChanged.connect(self._on_channel_changed)
        self.band_slider.valueChanged.connect(self._on_band_changed)

    # -- state -------------------------------------------------------------------------
    def single(self) -> bool:
        return self.mode_box.currentIndex() == 1

    def bands(self) -> list[int]:
        """Indices of the bands on display: three (R, G, B) or one."""
        if not self.single():
            return [max(box.currentIndex(), 0) for box in self.channel_boxes]
        return [self.band_slider.value()]

    def choice(self) -> Choice:
        return (self.mode_box.currentIndex(), tuple(box.currentIndex() for box in self.channel_boxes),
                self.band_slider.value())

    def set_cube(self, cube: Cube | None) -> None:
        """Offer ``cube``'s bands: Γ (660/550/470 nm) composite, slider at 550 nm, presets it covers."""
        self.cube = cube
        self._building = True
        for box in self.channel_boxes:
            box.clear()
        self.preset_box.clear()
        if cube is not None:
            wl = cube.wavelengths_or_default()
            items = [f"{w:.1f} nm" for w in wl]
            for box in self.channel_boxes:
                box.addItems(items)
            lo, hi = wl.min() - PRESET_TOLERANCE_NM, wl.max() + PRESET_TOLERANCE_NM
            for name, triple in RGB_PRESETS.items():
                if all(lo <= t <= hi for t in triple):
                    self.preset_box.addItem(name, triple)
                    self.preset_box.setItemData(self.preset_box.count() - 1, name, Qt.ItemDataRole.ToolTipRole)
            self.preset_box.addItem("Custom")
            self.band_slider.setRange(0, cube.n_bands - 1)
            self.band_slider.setValue(cube.band_index(550.0) if cube.n_bands > 3 else 0)
            for box, band in zip(self.channel_boxes, cube.rgb_band_indices()):
                box.setCurrentIndex(band)
        self._building = False
        self._update_band_label()

    def restore(self, mode: int, channels: tuple[int, ...], band: int) -> bool:
        """Show the bands of an earlier :meth:`choice` (False when this cube has too few bands)."""
        if self.cube is None or max(*channels, band) >= self.cube.n_bands:
            return False
        self._building = True
        for box, index in zip(self.channel_boxes, channels):
            box.setCurrentIndex(index)
        self.band_slider.setValue(band)
        self._match_preset()
        self.mode_box.setCurrentIndex(mode)
        self._building = False
        self._show_rows()
        self._update_band_label()
        return True

    # -- internals ---------------------------------------------------------------------
    def _set_mode(self, index: int) -> None:
        """Switch mode without a second redraw (the caller emits :attr:`changed` once)."""
        self._building = True
        self.mode_box.setCurrentIndex(index)
        self._building = False
        self._show_rows()

    def _show_rows(self) -> None:
        self.channel_row.setVisible(not self.single())
        self.band_row.setVisible(self.single())

    def _apply_preset(self) -> None:
        triple = self.preset_box.currentData()
        self.preset_box.setToolTip(f"Band combination preset: {self.preset_box.currentText()}")
        if self._building or self.cube is None or triple is None:
            return
        self._building = True
        for box, band in zip(self.channel_boxes, self.cube.rgb_band_indices(triple)):
            box.setCurrentIndex(band)
        self._building = False
        self._set_mode(0)
        self.changed.emit()

    def _on_channel_changed(self) -> None:
        if self._building:
            return
        self._building = True
        self._match_preset()
        self._building = False
        self._set_mode(0)
        self.changed.emit()

    def _match_preset(self) -> None:
        """Select the preset the R/G/B bands match, else "Custom" (call with ``_building`` set)."""
        chosen = [box.currentIndex() for box in self.channel_boxes]
        match = self.preset_box.count() - 1
        for i in range(self.preset_box.count()):
            triple = self.preset_box.itemData(i)
            if triple is not None and self.cube is not None and list(self.cube.rgb_band_indices(triple)) == chosen:
                match = i
                break
        self.preset_box.setCurrentIndex(match)

    def _on_mode_changed(self) -> None:
        if self._building:
            return
        self._show_rows()
        self.changed.emit()

    def _on_band_changed(self) -> None:
        self._update_band_label()
        if self._building:
            return
        self._set_mode(1)
        self.changed.emit()

    def _update_band_label(self) -> None:
        if self.cube is None:
            self.band_label.setText("— nm")
            return
        b = self.band_slider.value()
        self.band_label.setText(f"{self.cube.wavelengths_or_default()[b]:.1f} nm  (band {b + 1}/{self.cube.n_bands})")
