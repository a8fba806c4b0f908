"""The hyperspectral cube model shared by every stage.

A :class:`Cube` is an (H, W, B) float32 array with optional per-band metadata:
wavelengths in nm (increasing), full widths at half maximum in nm and a list of bad
bands, and an optional no-data mask (a file's ``data ignore value`` samples). Values are
reflectance-like in [0, 1] (integer data is scaled by its full scale when loaded; see
PROTOCOL.md).
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
    import xarray

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
        mask: samples without data (True), e.g. the file's ``data ignore value``:
            (H, W, B), or (H, W, 1) when whole pixels are missing; None when every
            sample holds data. Masked samples hold 0 in ``data`` (so networks see
            finite values) and are written back as the ignore value on save.
    """

    data: np.ndarray
    wavelengths: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    bad_bands: tuple[int, ...] = ()
    name: str = "cube"
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    mask: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

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
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=bool)
            if mask.ndim == 2:
                mask = mask[:, :, None]
            if mask.shape[:2] != self.data.shape[:2] or mask.shape[2] not in (1, bands):
                raise InputError(f"mask of shape {mask.shape} does not fit the cube's {self.data.shape}{where}")
            self.mask = mask if mask.any() else None

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
        """A cube with new data of the same band count and this cube's band metadata.

        The mask follows the new data's size: kept when the size is the same, repeated
        when it is an integer multiple (super-resolution), any-reduced over blocks when
        an integer fraction (a down-sampled observation), dropped otherwise.
        """
        new = np.asarray(data)
        return dataclasses.replace(self, data=new, name=self.name if name is None else name,
                                   metadata=dict(self.metadata), mask=_resize_mask(self.mask, new.shape[:2]))

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
        out = self.with_data(self.data[top:top + height, left:left + width].copy())
        if self.mask is not None:
            out.mask = self.mask[top:top + height, left:left + width].copy()
            out.mask = out.mask if out.mask.any() else None
        return out

    # ------------------------------------------------------------- xarray
    def to_xarray(self) -> xarray.DataArray:
        """The cube as an ``xarray.DataArray`` with dims (y, x, wavelength).

        Coordinates: ``wavelength`` (nm, or band numbers when unknown), ``fwhm`` and
        ``bad_band`` along it; masked samples are NaN; the name and JSON-safe metadata
        are attributes. :meth:`from_xarray` is the way back.

        Raises:
            InputError: xarray is not installed (``pip install "hiralign[xarray]"``).
        """
        xr = _xarray()
        data = self.data if self.mask is None else np.where(self.mask, np.float32(np.nan), self.data)
        wl = self.wavelengths if self.wavelengths is not None else np.arange(1, self.n_bands + 1, dtype=np.float64)
        coords: dict[str, Any] = {"wavelength": ("wavelength", wl, {"units": "nm" if self.wavelengths is not None
                                                                    else "band number"})}
        if self.fwhm is not None:
            coords["fwhm"] = ("wavelength", self.fwhm, {"units": "nm"})
        bad = np.zeros(self.n_bands, dtype=bool)
        bad[list(self.bad_bands)] = True
        coords["bad_band"] = ("wavelength", bad)
        attrs = {k: v for k, v in self.metadata.items() if isinstance(v, (str, int, float, bool))}
        attrs["has_wavelengths"] = int(self.wavelengths is not None)
        return xr.DataArray(data, dims=("y", "x", "wavelength"), coords=coords, name=self.name, attrs=attrs)

    @classmethod
    def from_xarray(cls, array: xarray.DataArray, name: str | None = None) -> Cube:
        """A cube from a 3-D ``DataArray`` with a ``wavelength`` (or ``band``) dim.

        The other two dims are (y, x) in the array's order; NaN samples become the mask.
        Wavelengths are read from the ``wavelength`` coordinate (its ``units`` attribute,
        else µm when all values are below 30), ``fwhm`` and ``bad_band`` from coordinates
        along it.

        Raises:
            InputError: not 3-D, or no wavelength/band dimension.
        """
        if array.ndim != 3:
            raise InputError(f"expected a 3-D DataArray (y, x, wavelength), not dims {array.dims}")
        band_dim = next((d for d in array.dims if str(d).lower() in ("wavelength", "wavelengths", "band", "bands",
                                                                     "lambda", "wl")), None)
        if band_dim is None:
            raise InputError(f"DataArray dims {array.dims}: none is a wavelength or band dimension")
        spatial = [d for d in array.dims if d != band_dim]
        arr = array.transpose(*spatial, band_dim)
        values = np.asarray(arr.values, dtype=np.float32)
        missing = ~np.isfinite(values)
        mask = None
        if missing.any():
            mask = missing if not np.all(missing == missing[:, :, :1]) else missing[:, :, :1]
            values = np.where(missing, np.float32(0), values)
        wavelengths = fwhm = None
        bad: tuple[int, ...] = ()
        if band_dim in arr.coords and int(arr.attrs.get("has_wavelengths", 1)):
            coord = arr.coords[band_dim]
            if coord.dtype.kind in "iuf":
                wavelengths = to_nanometres(np.asarray(coord.values, dtype=np.float64),
                                            coord.attrs.get("units") or coord.attrs.get("unit"))
        if "fwhm" in arr.coords:
            fwhm = np.asarray(arr.coords["fwhm"].values, dtype=np.float64)
        if "bad_band" in arr.coords:
            bad = tuple(int(i) for i in np.flatnonzero(np.asarray(arr.coords["bad_band"].values, dtype=bool)))
        meta = {k: v for k, v in arr.attrs.items() if k != "has_wavelengths"}
        return cls(data=values, wavelengths=wavelengths, fwhm=fwhm, bad_bands=bad,
                   name=name or str(array.name or "cube"), metadata=meta, mask=mask)

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


def _resize_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """``mask`` brought to spatial ``shape`` (see :meth:`Cube.with_data`), or None."""
    if mask is None or tuple(mask.shape[:2]) == tuple(shape):
        return mask
    (h, w), (nh, nw) = mask.shape[:2], shape
    if nh % h == 0 and nw % w == 0 and nh // h == nw // w:
        f = nh // h
        return np.repeat(np.repeat(mask, f, axis=0), f, axis=1)
    if h % nh == 0 and w % nw == 0 and h // nh == w // nw:
        f = h // nh
        return mask.reshape(nh, f, nw, f, mask.shape[2]).any(axis=(1, 3))
    return None


def _xarray() -> Any:
    try:
        import xarray
    except ImportError:
        raise InputError("xarray is not installed: pip install xarray (or hiralign[xarray])") from None
    return xarray


def _short(values: np.ndarray, n: int = 6) -> str:
    head = ", ".join(f"{v:g}" for v in values[:n])
    return f"[{head}{', …' if values.size > n else ''}]"
