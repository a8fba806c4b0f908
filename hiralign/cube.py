"""The hyperspectral cube model shared by every stage.

A :class:`Cube` is an (H, W, B) float32 array with optional per-band metadata:
wavelengths in nm (increasing), full widths at half maximum in nm and a list of bad
bands. Values are reflectance-like in [0, 1] (integer data is scaled by its full scale
when loaded; see PROTOCOL.md).
"""
from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hiralign.errors import InputError

if TYPE_CHECKING:  # torch is heavy; import it only where tensors are made
    import torch

log = logging.getLogger(__name__)

#: Band centres of the pseudo-RGB projection Γ (paper Eq. 4), in nm, as (R, G, B).
RGB_WAVELENGTHS_NM: tuple[float, float, float] = (660.0, 550.0, 470.0)

#: Wavelengths assumed for a 31-band cube that carries none (CAVE/ICVL convention).
DEFAULT_31_BANDS_NM = np.arange(400.0, 701.0, 10.0)


def to_nanometres(values: Sequence[float] | np.ndarray, unit: str | None = None) -> np.ndarray:
    """Convert wavelengths to nm, guessing µm when no unit is given and all values < 30.

    Args:
        values: (B,) wavelengths in nm, µm or m.
        unit: an ENVI-style unit name ("nm", "Nanometers", "um", "Micrometers", ...).

    Returns:
        (B,) float64 wavelengths in nm.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    if unit:
        u = unit.strip().lower()
        if u in {"nm", "nanometer", "nanometers", "nanometre", "nanometres"}:
            return arr
        if u in {"um", "µm", "μm", "micrometer", "micrometers", "micrometre", "micrometres", "micron", "microns"}:
            return arr * 1000.0
        if u in {"mm", "millimeter", "millimeters"}:
            return arr * 1e6
        if u in {"m", "meter", "meters", "metre", "metres"}:
            return arr * 1e9
        if u in {"index", "unknown", "wavenumber", "ghz", "mhz"}:
            log.warning("wavelength units %r are not a length; keeping the values as they are", unit)
            return arr
    if arr.size and np.nanmax(arr) < 30.0 and np.nanmin(arr) > 0.0:
        return arr * 1000.0  # values like 0.43–2.5 are micrometres
    return arr


def parse_wavelengths(text: str) -> np.ndarray:
    """Parse ``"420:720:10"`` (start:stop:step, stop inclusive) or ``"450,550,650"``."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3 or parts[2] <= 0:
                raise ValueError
            start, stop, step = parts
            return to_nanometres(np.arange(start, stop + step / 2, step))
        return to_nanometres([float(p) for p in text.replace(";", ",").split(",") if p.strip()])
    except ValueError:
        raise InputError(f"cannot read wavelengths {text!r}: give start:stop:step (e.g. 420:720:10) "
                         "or a comma-separated list") from None


@dataclasses.dataclass
class Cube:
    """A hyperspectral image.

    Attributes:
        data: (H, W, B) float32 array.
        wavelengths: (B,) band centres in nm, strictly increasing, or None if unknown.
        fwhm: (B,) band widths in nm, or None.
        bad_bands: indices of bands flagged bad (ENVI ``bbl`` = 0), sorted.
        name: a short name, usually the file stem.
        metadata: free-form extra information (source file, header keys, units...).
    """

    data: np.ndarray
    wavelengths: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    bad_bands: tuple[int, ...] = ()
    name: str = "cube"
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        where = f" ({self.name})" if self.name else ""
        if data.ndim == 2:
            raise InputError(f"expected a 3-D cube (H, W, B) but got a 2-D array of shape {data.shape}{where}")
        if data.ndim != 3:
            raise InputError(f"expected a 3-D cube (H, W, B) but got shape {data.shape}{where}")
        if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
            raise InputError(f"cube data must be numeric, not {data.dtype}{where}")
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        bands = self.data.shape[2]
        if self.wavelengths is not None:
            wl = np.asarray(self.wavelengths, dtype=np.float64).ravel()
            if wl.size != bands:
                raise InputError(f"{wl.size} wavelengths given for {bands} bands{where}")
            if not np.all(np.isfinite(wl)):
                raise InputError(f"wavelengths contain NaN or Inf{where}")
            if bands > 1 and not np.all(np.diff(wl) > 0):
                raise InputError(f"wavelengths must be strictly increasing{where}: "
                                 f"{_short(wl)}")
            self.wavelengths = wl
        if self.fwhm is not None:
            fw = np.asarray(self.fwhm, dtype=np.float64).ravel()
            if fw.size != bands:
                raise InputError(f"{fw.size} fwhm values given for {bands} bands{where}")
            self.fwhm = fw
        bad = sorted({int(b) for b in self.bad_bands})
        if bad and (bad[0] < 0 or bad[-1] >= bands):
            raise InputError(f"bad-band index out of range 0..{bands - 1}{where}")
        self.bad_bands = tuple(bad)

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, B)."""
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def height(self) -> int:
        return self.data.shape[0]

    @property
    def width(self) -> int:
        return self.data.shape[1]

    @property
    def n_bands(self) -> int:
        return self.data.shape[2]

    def count_nonfinite(self) -> int:
        """Number of NaN or Inf values."""
        return int(self.data.size - np.count_nonzero(np.isfinite(self.data)))

    def zero_nonfinite(self) -> Cube:
        """A copy with NaN and Inf replaced by 0."""
        return self.with_data(np.nan_to_num(self.data, nan=0.0, posinf=0.0, neginf=0.0))

    def with_data(self, data: np.ndarray, name: str | None = None) -> Cube:
        """A cube with new data of the same band count and this cube's band metadata."""
        return dataclasses.replace(self, data=data, name=self.name if name is None else name,
                                   metadata=dict(self.metadata))

    # ------------------------------------------------------------- wavelengths
    def wavelengths_or_default(self) -> np.ndarray:
        """Wavelengths in nm; a 31-band cube without any is assumed to span 400–700 nm.

        Raises:
            InputError: when the cube has no wavelengths and is not 31-band.
        """
        if self.wavelengths is not None:
            return self.wavelengths
        if self.n_bands == DEFAULT_31_BANDS_NM.size:
            warnings.warn(f"{self.name}: no wavelengths; assuming 31 bands at 400–700 nm in 10 nm steps",
                          stacklevel=2)
            return DEFAULT_31_BANDS_NM.copy()
        raise InputError(f"{self.name}: the cube has {self.n_bands} bands and no wavelengths; "
                         "give them (e.g. --wavelengths 420:720:10)")

    def band_index(self, wavelength: float) -> int:
        """Index of the band nearest ``wavelength`` (nm; µm values below 30 are converted)."""
        wl = self.wavelengths_or_default()
        query = float(wavelength)
        if query < 30.0 and wl.max() > 100.0:
            query *= 1000.0
        return int(np.argmin(np.abs(wl - query)))

    def rgb_band_indices(self, targets: Sequence[float] = RGB_WAVELENGTHS_NM) -> tuple[int, int, int]:
        """Indices of the bands nearest the Γ wavelengths (R, G, B)."""
        if self.n_bands == 3 and self.wavelengths is None:
            return (0, 1, 2)
        r, g, b = (self.band_index(t) for t in targets)
        return (r, g, b)

    def pseudo_rgb(self, targets: Sequence[float] = RGB_WAVELENGTHS_NM) -> np.ndarray:
        """Γ(x): the (H, W, 3) float32 image of the bands nearest ``targets`` (Eq. 4)."""
        idx = list(self.rgb_band_indices(targets))
        return np.ascontiguousarray(self.data[:, :, idx])

    # ------------------------------------------------------------- geometry
    def crop(self, top: int, left: int, height: int, width: int) -> Cube:
        """A spatial crop; raises when it leaves the image."""
        if top < 0 or left < 0 or height <= 0 or width <= 0 or top + height > self.height \
                or left + width > self.width:
            raise InputError(f"{self.name}: crop ({top}, {left}, {height}, {width}) outside the "
                             f"{self.height}×{self.width} image")
        return self.with_data(self.data[top:top + height, left:left + width].copy())

    # ------------------------------------------------------------- torch
    def to_torch(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """The data as a (B, H, W) float32 tensor."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.data.transpose(2, 0, 1))).to(device)

    @classmethod
    def from_torch(cls, tensor: torch.Tensor, like: Cube | None = None, name: str | None = None) -> Cube:
        """Build a cube from a (B, H, W) tensor, copying band metadata from ``like``."""
        arr = tensor.detach().to("cpu", dtype=tensor.dtype if tensor.is_floating_point() else None)
        data = arr.float().numpy().transpose(1, 2, 0)
        if like is None:
            return cls(data=data, name=name or "cube")
        return like.with_data(data, name=name)

    def __repr__(self) -> str:
        wl = "none" if self.wavelengths is None else f"{self.wavelengths[0]:.1f}–{self.wavelengths[-1]:.1f} nm"
        return f"Cube({self.name!r}, shape={self.shape}, wavelengths={wl})"


def _short(values: np.ndarray, n: int = 6) -> str:
    head = ", ".join(f"{v:g}" for v in values[:n])
    return f"[{head}{', …' if values.size > n else ''}]"
