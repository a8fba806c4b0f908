"""The synthetic source domain and the embedded demo target set (PROTOCOL.md "Domains").

Both are built on a fresh machine from material that ships inside installed packages, no
download: RGB layouts (scikit-image's bundled sample photographs) are given per-pixel
reflectances by :mod:`hiralign.rgb_spectra` from measured spectra bundled with
colour-science, and rendered as radiance under an illuminant.

* **source set** (``hiralign make-source``): crops of six photographs, the ``source``
  reflectance library (CIE 2017 + RAW-to-ACES, 289 spectra), daylight D65; 31 bands at
  400–700 nm, or (``grid="fine"``) 81 bands at 380–780 nm in 5 nm steps, from which
  :class:`hiralign.patches.BandLayoutSampler` draws any band layout for the band-agnostic
  restorers;
* **demo target set** (``hiralign make-demo``, built by :mod:`hiralign.demo`): other
  photographs, the disjoint ``target`` library (colour checkers, CIE/NIST test colours),
  daylight D50 — a real domain gap in layouts, materials and illumination.

A set is a folder of ``.npz`` cubes plus ``manifest.json`` describing how each was made.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError, MissingFileError
from hiralign.progress import Progress, as_progress
from hiralign.rgb_spectra import GRIDS, WAVELENGTHS_NM, Renderer, SpectralUpsampler, reflectance_library, srgb_decode

MANIFEST = "manifest.json"
#: Photographs bundled inside scikit-image (``skimage/data``) used as source layouts.
SOURCE_LAYOUTS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg",
                  "motorcycle_left.png", "motorcycle_right.png")


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    """How the synthetic source set is made.

    Attributes:
        n: number of cubes.
        size: side of each square cube, pixels.
        seed: seeds crops, zooms, flips and library subsets.
        illuminant: colour-science illuminant name.
        library: built-in reflectance library (:data:`hiralign.rgb_spectra.LIBRARIES`).
        subset: share of the library each cube draws its spectra from (metamer variety).
        min_zoom: smallest down-scaling of a layout before cropping (1 = full resolution).
        grid: wavelength grid (:data:`hiralign.rgb_spectra.GRIDS`): ``"31"`` (400–700 nm,
            10 nm) or ``"fine"`` (380–780 nm, 5 nm; any band layout can be sampled from it).
    """

    n: int = 24
    size: int = 128
    seed: int = 0
    illuminant: str = "D65"
    library: str = "source"
    subset: float = 0.75
    min_zoom: float = 0.35
    grid: str = "31"

    def __post_init__(self) -> None:
        if self.n < 1 or self.size < 16:
            raise ConfigError(f"need at least 1 cube of at least 16 pixels (got n={self.n}, size={self.size})")
        if not 0.05 <= self.subset <= 1.0 or not 0.0 < self.min_zoom <= 1.0:
            raise ConfigError("subset must be in [0.05, 1] and min_zoom in (0, 1]")
        if self.grid not in GRIDS:
            raise ConfigError(f"unknown wavelength grid {self.grid!r}; choose {' or '.join(GRIDS)}")

    @property
    def wavelengths(self) -> np.ndarray:
        """(B,) band centres of the set's cubes, nm."""
        return GRIDS[self.grid].copy()


def skimage_image(name: str) -> Path:
    """Path of an image bundled in scikit-image's package data (never fetched)."""
    import skimage.data

    path = Path(skimage.data.__file__).parent / name
    if not path.is_file():
        raise MissingFileError(f"scikit-image's bundled image {name} is missing from {path.parent}")
    return path


def load_layouts(extra: Sequence[str | Path] = ()) -> list[tuple[str, np.ndarray]]:
    """The source layouts as (name, (H, W, 3) sRGB float32) pairs, bundled ones first."""
    from hiralign.io import load_rgb

    paths = [skimage_image(n) for n in SOURCE_LAYOUTS] + [Path(p) for p in extra]
    return [(p.stem, load_rgb(p)) for p in paths]


def make_source_cubes(config: SourceConfig = SourceConfig(), layouts: Sequence[tuple[str, np.ndarray]] | None = None,
                      extra_spectra: np.ndarray | None = None, progress: Progress | None = None) -> list[Cube]:
    """Synthesize the source set in memory.

    Cube ``i`` is a random zoom/crop/flip of layout ``i mod L`` upsampled with a random
    ``subset`` of the library (plus ``extra_spectra``), as radiance under the illuminant.
    """
    from skimage.transform import rescale

    progress = as_progress(progress)
    layouts = list(layouts) if layouts is not None else load_layouts()
    wavelengths = config.wavelengths
    library = reflectance_library(config.library, wavelengths)
    if extra_spectra is not None:
        library = np.concatenate([library, np.asarray(extra_spectra, dtype=np.float64)])
    renderer = Renderer.for_illuminant(config.illuminant, wavelengths)
    cubes = []
    for i in range(config.n):
        progress.check()
        rng = np.random.default_rng([config.seed, i])
        name, image = layouts[i % len(layouts)]
        short = min(image.shape[:2])
        if short < config.size:
            raise InputError(f"layout {name} ({image.shape[1]}×{image.shape[0]}) is smaller than the cube "
                             f"size {config.size}")
        zoom = rng.uniform(max(config.min_zoom, config.size / short), 1.0)
        if zoom < 0.999:
            image = rescale(image, zoom, channel_axis=-1, anti_aliasing=True, order=3).astype(np.float32)
        top = int(rng.integers(0, image.shape[0] - config.size + 1))
        left = int(rng.integers(0, image.shape[1] - config.size + 1))
        crop = np.clip(image[top:top + config.size, left:left + config.size], 0.0, 1.0)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        chosen = rng.choice(len(library), size=max(4, int(round(config.subset * len(library)))), replace=False)
        upsampler = SpectralUpsampler(library[np.sort(chosen)], renderer)
        data = upsampler.upsample(srgb_decode(crop)) * renderer.spd.astype(np.float32)
        cubes.append(Cube(data=data, wavelengths=wavelengths.copy(), name=f"source_{i:03d}",
                          metadata={"layout": name, "zoom": round(float(zoom), 4), "crop": [top, left],
                                    "illuminant": config.illuminant, "library": config.library}))
        progress.report(i + 1, config.n, f"cube {i + 1}/{config.n} from {name}")
    return cubes


def write_cube_set(out: str | Path, files: dict[str, Cube], entries: Sequence[dict[str, Any]],
                   description: dict[str, Any]) -> Path:
    """Write ``files`` (relative path → cube) and ``manifest.json`` into ``out``, atomically.

    Args:
        out: the set folder (replaced only once complete).
        files: cubes to save, by relative path (the suffix picks the format, e.g. ``.npz``).
        entries: one JSON object per cube for the manifest's ``cubes`` list.
        description: top-level manifest fields (how the set was made).
    """
    from hiralign.atomic import atomic_dir
    from hiralign.io import save

    out = Path(out)
    with atomic_dir(out) as tmp:
        for rel, cube in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            save(cube, tmp / rel, compress=True)  # small sets; clean cubes deflate well
        first = next(iter(files.values()), None)
        wavelengths = first.wavelengths if first is not None and first.wavelengths is not None else WAVELENGTHS_NM
        manifest = {**description, "wavelengths_nm": np.asarray(wavelengths).tolist(), "cubes": list(entries)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return out


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a cube set folder."""
    path = Path(folder) / MANIFEST
    if not Path(folder).is_dir():
        raise MissingFileError(f"cube set folder {folder} does not exist")
    if not path.is_file():
        raise InputError(f"{folder} is not a cube set: {MANIFEST} is missing (make one with hiralign make-source)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def load_cube_set(folder: str | Path, key: str = "file") -> list[Cube]:
    """Load the cubes a ``manifest.json`` lists (``key`` picks the column, e.g. ``"clean"``)."""
    from hiralign.io import load

    folder = Path(folder)
    manifest = read_manifest(folder)
    entries = manifest.get("cubes") or []
    if not entries:
        raise InputError(f"{folder / MANIFEST} lists no cubes")
    cubes = []
    for entry in entries:
        if key not in entry:
            raise InputError(f"{folder / MANIFEST}: an entry has no {key!r}")
        cube = load(folder / entry[key])
        cube.name = Path(entry[key]).stem
        cubes.append(cube)
    return cubes


def make_source_set(out: str | Path, config: SourceConfig = SourceConfig(), *,
                    extra_layouts: Sequence[str | Path] = (), extra_spectra: Sequence[str | Path] = (),
                    progress: Progress | None = None) -> Path:
    """Build the source set into ``out`` (see :func:`make_source_cubes`); returns ``out``."""
    from hiralign import __version__
    from hiralign.rgb_spectra import read_spectra_csv

    layouts = load_layouts(extra_layouts)
    spectra = np.concatenate([read_spectra_csv(p, config.wavelengths) for p in extra_spectra]) if extra_spectra \
        else None
    cubes = make_source_cubes(config, layouts, spectra, progress)
    description = {"kind": "hiralign synthetic source set", "hiralign_version": __version__,
                   "config": dataclasses.asdict(config), "layouts": [n for n, _ in layouts],
                   "extra_spectra": [str(p) for p in extra_spectra], "values": "radiance = reflectance × illuminant"
                   " spectral power (maximum 1)"}
    files = {f"{c.name}.npz": c for c in cubes}
    entries = [{"file": f"{c.name}.npz", "shape": list(c.shape), **c.metadata} for c in cubes]
    return write_cube_set(out, files, entries, description)


def _json_default(obj: object) -> object:
    from hiralign.atomic import _json_default as default

    return default(obj)
