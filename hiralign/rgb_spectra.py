"""Spectral upsampling: a plausible 31-band reflectance for every sRGB pixel.

Physics used throughout (400–700 nm, 10 nm steps, the 31 bands of CAVE/ICVL, by default;
every function also takes another grid inside 380–780 nm, e.g. :data:`FINE_WAVELENGTHS_NM`
for the band-agnostic source sets):

* a surface of reflectance r(λ) under an illuminant E(λ) sends radiance L = r·E;
* the CIE 1931 2° observer turns L into XYZ, normalised so a perfect white has Y = 1;
* the picture is white-balanced (von Kries in the CAT02 space, from the illuminant's white
  to sRGB's D65 white) and encoded as sRGB.

So a reflectance r renders to linear sRGB as ``A @ r`` with one 3×31 matrix ``A`` per
illuminant (:class:`Renderer`). :class:`SpectralUpsampler` inverts that map with real
measured spectra: each pixel starts from the inverse-distance blend of the library
spectra nearest in chromaticity (scaled to the pixel's intensity), then a correction
along the library's principal components (weighted by their variances, so it moves along
natural directions) removes the remaining colour error, alternating with clipping to
[0, 1] (a projection onto the physically possible reflectances). Everything is vectorised
over pixels: about a second per 512² image on one core.
"""
from __future__ import annotations

import dataclasses
import functools
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from hiralign.errors import InputError

#: Band centres of the synthetic cubes, nm.
WAVELENGTHS_NM = np.arange(400.0, 701.0, 10.0)
#: The fine grid of band-agnostic source sets (380–780 nm, 5 nm): every bundled library,
#: illuminant and the CIE observer cover it, so any band layout inside it is an exact
#: (linear-interpolation) resampling of measured spectra, never an extrapolation.
FINE_WAVELENGTHS_NM = np.arange(380.0, 781.0, 5.0)
#: Named wavelength grids of source sets (``SourceConfig.grid``).
GRIDS: dict[str, np.ndarray] = {"31": WAVELENGTHS_NM, "fine": FINE_WAVELENGTHS_NM}

#: sRGB (IEC 61966-2-1) linear RGB from XYZ, D65 white.
_XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986],
                         [-0.9689, 1.8758, 0.0415],
                         [0.0557, -0.2040, 1.0570]])
_SRGB_WHITE_XYZ = np.linalg.solve(_XYZ_TO_SRGB, np.ones(3))
#: CAT02 chromatic adaptation space.
_CAT02 = np.array([[0.7328, 0.4296, -0.1624],
                   [-0.7036, 1.6975, 0.0061],
                   [0.0030, 0.0136, 0.9834]])

#: Built-in reflectance libraries: name -> loaders of spectra bundled with colour-science.
LIBRARIES: dict[str, tuple[str, ...]] = {
    # 99 CIE 2017 colour-fidelity samples (natural and man-made objects) + the 190
    # training patches of RAW-to-ACES (paints, fabrics, skin, foliage...).
    "source": ("tcs_cie2017", "rawtoaces_190"),
    # Colour checkers (three measurements), CIE 1995/2024 and NIST CQS test colours:
    # a different, smaller, more saturated set for the demo target domain.
    "target": ("colourcheckers", "tcs_cie1995_2024", "nist_cqs"),
}


def _colour():
    import sys

    before = set(sys.modules)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # colour warns about matplotlib being absent
        import colour
    # Without matplotlib, colour-science registers unittest.mock stand-ins for it in
    # sys.modules; they have no __spec__ and make importlib.util.find_spec("matplotlib")
    # raise in diffusers/transformers later in the same process. Remove them.
    for name in set(sys.modules) - before:
        if name.split(".")[0] == "matplotlib" and getattr(sys.modules[name], "__spec__", None) is None:
            del sys.modules[name]
    return colour


def _resample(msds_or_sds, wavelengths: np.ndarray) -> np.ndarray:
    """(M, B) spectra of colour-science distributions, linearly interpolated at ``wavelengths``."""
    colour = _colour()
    if isinstance(msds_or_sds, colour.MultiSpectralDistributions):
        wl, values = msds_or_sds.wavelengths, msds_or_sds.values.T
    else:
        sds = list(msds_or_sds)
        wl = sds[0].wavelengths
        values = np.stack([np.interp(wl, sd.wavelengths, sd.values) for sd in sds])
    return np.stack([np.interp(wavelengths, wl, v) for v in values])


def _load_part(name: str, wavelengths: np.ndarray) -> np.ndarray:
    colour = _colour()
    if name == "tcs_cie2017":
        from colour.quality.cfi2017 import load_TCS_CIE2017

        return _resample(load_TCS_CIE2017(colour.SpectralShape(380, 780, 5)), wavelengths)
    if name == "rawtoaces_190":
        from colour.characterisation.aces_it import read_training_data_rawtoaces_v1

        return _resample(read_training_data_rawtoaces_v1(), wavelengths)
    if name == "colourcheckers":
        from colour.characterisation import SDS_COLOURCHECKERS

        keys = ("BabelColor Average", "ColorChecker N Ohta", "ISO 17321-1")
        return np.concatenate([_resample(SDS_COLOURCHECKERS[k].values(), wavelengths) for k in keys])
    if name == "tcs_cie1995_2024":
        from colour.quality.datasets import SDS_TCS

        return np.concatenate([_resample(SDS_TCS[k].values(), wavelengths) for k in ("CIE 1995", "CIE 2024")])
    if name == "nist_cqs":
        from colour.quality.datasets import SDS_VS

        return _resample(SDS_VS["NIST CQS 9.0"].values(), wavelengths)
    raise InputError(f"unknown reflectance library part {name!r}")


@functools.lru_cache(maxsize=8)
def _cached_library(name: str, wavelengths: tuple[float, ...]) -> np.ndarray:
    if name not in LIBRARIES:
        raise InputError(f"unknown reflectance library {name!r}; known: {', '.join(LIBRARIES)}")
    spectra = np.concatenate([_load_part(part, np.asarray(wavelengths)) for part in LIBRARIES[name]])
    spectra = np.clip(spectra, 0.0, 1.0)  # a few RAW-to-ACES patches fluoresce above 1
    # Drop exact duplicates (the same chart measured twice) so neighbours are distinct.
    _, keep = np.unique(np.round(spectra, 4), axis=0, return_index=True)
    spectra = spectra[np.sort(keep)]
    spectra.setflags(write=False)
    return spectra


def reflectance_library(name: str = "source", wavelengths: Sequence[float] | None = None) -> np.ndarray:
    """(M, B) measured reflectances in [0, 1] (read-only).

    Args:
        name: a :data:`LIBRARIES` key.
        wavelengths: (B,) band centres in nm inside 380–780 (None: :data:`WAVELENGTHS_NM`).
    """
    return _cached_library(name, _grid_key(wavelengths))


def _grid_key(wavelengths: Sequence[float] | None) -> tuple[float, ...]:
    """A hashable, checked wavelength grid (the cache key of libraries and renderers)."""
    grid = WAVELENGTHS_NM if wavelengths is None else np.asarray(wavelengths, dtype=np.float64).ravel()
    if grid.size < 3 or np.any(np.diff(grid) <= 0) or grid[0] < 380.0 - 1e-6 or grid[-1] > 780.0 + 1e-6:
        raise InputError(f"synthetic spectra need ≥ 3 increasing wavelengths inside 380–780 nm "
                         f"(got {grid.size} over {grid.min():g}–{grid.max():g} nm)")
    return tuple(float(w) for w in grid)


def read_spectra_csv(path: str | Path, wavelengths: Sequence[float] | None = None) -> np.ndarray:
    """Read user reflectances: a CSV whose first column is the wavelength (nm), one spectrum per column.

    Args:
        path: the CSV file.
        wavelengths: grid to resample to (None: :data:`WAVELENGTHS_NM`); the file must cover it
            to within 10 nm at both ends.

    Returns:
        (M, B) spectra resampled to the grid and clipped to [0, 1].
    """
    path = Path(path)
    grid = np.asarray(_grid_key(wavelengths))
    try:
        table = np.genfromtxt(path, delimiter=",", names=None, dtype=np.float64, skip_header=1)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read spectra from {path}: {exc}") from None
    table = np.atleast_2d(table)
    if table.ndim != 2 or table.shape[1] < 2 or not np.all(np.isfinite(table)):
        raise InputError(f"{path}: expected a header line, then rows 'wavelength_nm, value, value, …' "
                         "with finite numbers")
    wl = table[:, 0]
    if wl[0] > grid[0] + 10 or wl[-1] < grid[-1] - 10 or np.any(np.diff(wl) <= 0):
        raise InputError(f"{path}: wavelengths must increase and cover about {grid[0]:g}–{grid[-1]:g} nm "
                         f"(found {wl[0]:g}–{wl[-1]:g})")
    return np.clip(np.stack([np.interp(grid, wl, col) for col in table[:, 1:].T]), 0.0, 1.0)


def srgb_decode(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] → linear RGB."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear RGB → sRGB-encoded values (clipped to [0, 1])."""
    lin = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


@dataclasses.dataclass(frozen=True)
class Renderer:
    """Reflectance/radiance → white-balanced sRGB under one illuminant.

    Attributes:
        illuminant: colour-science illuminant name ("D65", "A", "FL11", ...).
        matrix: (3, B) linear sRGB of a reflectance: ``rgb = matrix @ r``.
        spd: (B,) relative illuminant power, maximum 1; radiance cubes are ``r * spd``.
        wavelengths: (B,) band centres, nm (default :data:`WAVELENGTHS_NM`).
    """

    illuminant: str
    matrix: np.ndarray
    spd: np.ndarray
    wavelengths: np.ndarray = dataclasses.field(default_factory=lambda: WAVELENGTHS_NM.copy())

    @classmethod
    def for_illuminant(cls, illuminant: str = "D65", wavelengths: Sequence[float] | None = None) -> Renderer:
        """The renderer of ``illuminant`` on a wavelength grid inside 380–780 nm (None: 31 bands)."""
        return cls._cached(illuminant, _grid_key(wavelengths))

    @classmethod
    @functools.lru_cache(maxsize=16)
    def _cached(cls, illuminant: str, grid: tuple[float, ...]) -> Renderer:
        colour = _colour()
        if illuminant not in colour.SDS_ILLUMINANTS:
            raise InputError(f"unknown illuminant {illuminant!r}; e.g. D65, D50, A, FL2, FL11, LED-B3")
        wavelengths = np.asarray(grid)
        sd = colour.SDS_ILLUMINANTS[illuminant]
        spd = np.interp(wavelengths, sd.wavelengths, sd.values)
        cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
        xyz_bar = np.stack([np.interp(wavelengths, cmfs.wavelengths, cmfs.values[:, i]) for i in range(3)])
        # The Riemann sum over the grid is normalised below, so the band step cancels out.
        to_xyz = xyz_bar * spd / np.dot(xyz_bar[1], spd)  # (3, B); white reflector → Y = 1
        white = to_xyz.sum(axis=1)
        adapt = np.linalg.inv(_CAT02) @ np.diag((_CAT02 @ _SRGB_WHITE_XYZ) / (_CAT02 @ white)) @ _CAT02
        matrix = _XYZ_TO_SRGB @ adapt @ to_xyz
        spd = spd / spd.max()
        for array in (matrix, spd, wavelengths):
            array.setflags(write=False)
        return cls(illuminant=illuminant, matrix=matrix, spd=spd, wavelengths=wavelengths)

    def linear_rgb(self, reflectance: np.ndarray) -> np.ndarray:
        """(..., B) reflectances → (..., 3) linear sRGB (unclipped)."""
        return np.asarray(reflectance, dtype=np.float64) @ self.matrix.T

    def render_radiance(self, cube: np.ndarray) -> np.ndarray:
        """(H, W, B) radiance cube (``r * spd``) → (H, W, 3) sRGB-encoded float in [0, 1]."""
        return srgb_encode(self.linear_rgb(np.asarray(cube, dtype=np.float64) / self.spd)).astype(np.float32)


class SpectralUpsampler:
    """Maps linear sRGB pixels to reflectances built from a measured library.

    Args:
        spectra: (M, B) library reflectances in [0, 1] on the renderer's wavelengths.
        renderer: the illuminant and colour pipeline the pixels were taken under.
        neighbours: library spectra blended per pixel (k of the kNN in chromaticity).
        rank: principal components of the library along which colour errors are corrected.
        iterations: correction / clipping rounds.
    """

    def __init__(self, spectra: np.ndarray, renderer: Renderer, neighbours: int = 4, rank: int = 8,
                 iterations: int = 12) -> None:
        from scipy.spatial import cKDTree

        spectra = np.asarray(spectra, dtype=np.float64)
        bands = renderer.matrix.shape[1]
        if spectra.ndim != 2 or spectra.shape[1] != bands or spectra.shape[0] < 4:
            raise InputError(f"need (M ≥ 4, {bands}) library spectra, got {spectra.shape}")
        self.renderer = renderer
        self.iterations = int(iterations)
        rgb = renderer.linear_rgb(spectra)
        intensity = rgb.sum(axis=1)
        usable = intensity > 1e-3  # near-black samples have no chromaticity
        self.unit_spectra = spectra[usable] / intensity[usable, None]
        self.neighbours = int(min(neighbours, self.unit_spectra.shape[0]))
        self._tree = cKDTree(_chromaticity(rgb[usable]))
        mean = spectra.mean(axis=0)
        eigval, eigvec = np.linalg.eigh(np.cov((spectra - mean).T))
        order = np.argsort(eigval)[::-1][:max(3, min(rank, spectra.shape[1]))]
        basis, variance = eigvec[:, order], np.maximum(eigval[order], 1e-12)
        # Minimum-Mahalanobis-norm correction: Δr = U S (AU)ᵀ (AU S (AU)ᵀ)⁻¹ e, one (B, 3) gain.
        au = renderer.matrix @ basis
        self._gain = basis @ np.diag(variance) @ au.T @ np.linalg.inv(au @ np.diag(variance) @ au.T)

    def upsample(self, linear_rgb: np.ndarray) -> np.ndarray:
        """(..., 3) linear sRGB in [0, 1] → (..., B) reflectances in [0, 1] rendering to it."""
        rgb = np.clip(np.asarray(linear_rgb, dtype=np.float64), 0.0, 1.0)
        shape = rgb.shape[:-1]
        flat = rgb.reshape(-1, 3)
        intensity = flat.sum(axis=1, keepdims=True)
        dist, idx = self._tree.query(_chromaticity(flat), k=self.neighbours)
        dist, idx = dist.reshape(len(flat), -1), idx.reshape(len(flat), -1)
        weights = 1.0 / (dist + 1e-4)
        weights /= weights.sum(axis=1, keepdims=True)
        refl = intensity * np.einsum("pk,pkb->pb", weights, self.unit_spectra[idx])
        to_rgb, gain = self.renderer.matrix.T, self._gain.T
        active = np.arange(len(flat))
        for _ in range(self.iterations):
            # Only pixels still off their colour are refined (most settle in one round).
            sub = refl[active]
            error = flat[active] - sub @ to_rgb
            moving = np.abs(error).max(axis=1) > 1e-5
            active, sub, error = active[moving], sub[moving], error[moving]
            if active.size == 0:
                break
            refl[active] = np.clip(sub + error @ gain, 0.0, 1.0)
        return refl.reshape(*shape, -1).astype(np.float32)


def _chromaticity(rgb: np.ndarray) -> np.ndarray:
    """(P, 3) linear RGB → (P, 2) (r, g) chromaticities (grey for black pixels)."""
    total = rgb.sum(axis=1, keepdims=True)
    safe = np.where(total > 1e-6, total, 1.0)
    chroma = np.where(total > 1e-6, rgb / safe, 1.0 / 3.0)
    return chroma[:, :2]


def upsample_srgb(srgb: np.ndarray, spectra: np.ndarray, illuminant: str = "D65", **settings) -> np.ndarray:
    """(H, W, 3) sRGB-encoded image in [0, 1] → (H, W, 31) radiance cube ``r * spd`` in [0, 1].

    Args:
        srgb: the picture, as displayed (gamma-encoded).
        spectra: (M, 31) library reflectances.
        illuminant: the light the scene is rendered under (the cube carries its spectrum).
        **settings: :class:`SpectralUpsampler` settings.
    """
    renderer = Renderer.for_illuminant(illuminant)
    refl = SpectralUpsampler(spectra, renderer, **settings).upsample(srgb_decode(srgb))
    return (refl * renderer.spd.astype(np.float32)).astype(np.float32)


def render_srgb(cube: np.ndarray, illuminant: str = "D65") -> np.ndarray:
    """(H, W, 31) radiance cube over :data:`WAVELENGTHS_NM` → (H, W, 3) sRGB in [0, 1]."""
    return Renderer.for_illuminant(illuminant).render_radiance(cube)


def check_bands(wavelengths: Sequence[float] | None) -> None:
    """Refuse spectral data that is not on the 400–700 nm / 10 nm grid of this module."""
    if wavelengths is None or len(wavelengths) != WAVELENGTHS_NM.size or \
            not np.allclose(wavelengths, WAVELENGTHS_NM):
        raise InputError("synthetic cubes use 31 bands at 400–700 nm in 10 nm steps")
