"""The synthetic source domain and the embedded demo target set (PROTOCOL.md "Domains").

Both are built on a fresh machine from material that ships inside installed packages, no
download: RGB layouts (scikit-image's bundled sample photographs, or procedural
"dead-leaves" scenes textured with its bundled grey textures) are given per-pixel
reflectances by :mod:`hiralign.rgb_spectra` from measured spectra bundled with
colour-science, and rendered as radiance under an illuminant.

* **source set** (``hiralign make-source``): crops of six photographs, the ``source``
  reflectance library (CIE 2017 + RAW-to-ACES, 289 spectra), daylight D65;
* **demo target set** (``hiralign make-demo``): procedural layouts, the disjoint ``target``
  library (colour checkers, CIE/NIST test colours), incandescent light A — a real domain
  gap in layouts, materials and illumination.

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
from hiralign.rgb_spectra import WAVELENGTHS_NM, Renderer, SpectralUpsampler, reflectance_library, srgb_decode

MANIFEST = "manifest.json"
#: Photographs bundled inside scikit-image (``skimage/data``) used as source layouts.
SOURCE_LAYOUTS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg",
                  "motorcycle_left.png", "motorcycle_right.png")
#: Bundled grey textures shading the procedural demo layouts.
TEXTURES = ("grass.png", "gravel.png", "brick.png")


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
    """

    n: int = 24
    size: int = 128
    seed: int = 0
    illuminant: str = "D65"
    library: str = "source"
    subset: float = 0.75
    min_zoom: float = 0.35

    def __post_init__(self) -> None:
        if self.n < 1 or self.size < 16:
            raise ConfigError(f"need at least 1 cube of at least 16 pixels (got n={self.n}, size={self.size})")
        if not 0.05 <= self.subset <= 1.0 or not 0.0 < self.min_zoom <= 1.0:
            raise ConfigError("subset must be in [0.05, 1] and min_zoom in (0, 1]")


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
    library = reflectance_library(config.library)
    if extra_spectra is not None:
        library = np.concatenate([library, np.asarray(extra_spectra, dtype=np.float64)])
    renderer = Renderer.for_illuminant(config.illuminant)
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
        cubes.append(Cube(data=data, wavelengths=WAVELENGTHS_NM.copy(), name=f"source_{i:03d}",
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
        manifest = {**description, "wavelengths_nm": WAVELENGTHS_NM.tolist(), "cubes": list(entries)}
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
    spectra = np.concatenate([read_spectra_csv(p) for p in extra_spectra]) if extra_spectra else None
    cubes = make_source_cubes(config, layouts, spectra, progress)
    description = {"kind": "hiralign synthetic source set", "hiralign_version": __version__,
                   "config": dataclasses.asdict(config), "layouts": [n for n, _ in layouts],
                   "extra_spectra": [str(p) for p in extra_spectra], "values": "radiance = reflectance × illuminant"
                   " spectral power (maximum 1)"}
    files = {f"{c.name}.npz": c for c in cubes}
    entries = [{"file": f"{c.name}.npz", "shape": list(c.shape), **c.metadata} for c in cubes]
    return write_cube_set(out, files, entries, description)


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """How the embedded demo target set is made (a deliberate domain gap to the source set).

    Attributes:
        n: number of scenes.
        size: side of each square scene, pixels.
        seed: seeds the procedural layouts.
        illuminant: light of the target scenes (the source set uses D65).
        library: reflectance library (disjoint from the source set's).
        task: degradation of the observed cubes.
        degrade_seed: seed of that degradation (PROTOCOL.md: 0).
        shapes: occluding shapes per procedural layout.
    """

    n: int = 4
    size: int = 96
    seed: int = 0
    illuminant: str = "A"
    library: str = "target"
    task: str = "gaussian"
    degrade_seed: int = 0
    shapes: int = 200


def dead_leaves_layout(size: int, rng: np.random.Generator, colours: np.ndarray,
                       textures: Sequence[np.ndarray], shapes: int = 200) -> np.ndarray:
    """A procedural scene: occluding discs, boxes and ellipses with textured shading.

    Radii follow the scale-invariant r⁻³ law of natural images' "dead leaves" model; each
    shape has one material colour modulated by a bundled grey texture, and the scene gets
    a smooth illumination gradient.

    Args:
        size: side in pixels.
        rng: random source.
        colours: (K, 3) linear-RGB material colours.
        textures: grey (h, w) textures in [0, 1], each at least ``size`` on a side.
        shapes: number of shapes.

    Returns:
        (size, size, 3) *linear* RGB in [0, 1].
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    image = np.empty((size, size, 3), dtype=np.float32)
    image[:] = colours[rng.integers(len(colours))]
    r_min, r_max = size / 48, size / 2
    for _ in range(shapes):
        u = rng.random()
        radius = (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5
        cy, cx = rng.uniform(-radius, size + radius, 2)
        kind = rng.integers(3)
        if kind == 0:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
        elif kind == 1:
            aspect = rng.uniform(0.4, 1.0)
            mask = (np.abs(yy - cy) <= radius * aspect) & (np.abs(xx - cx) <= radius)
        else:
            angle, aspect = rng.uniform(0, np.pi), rng.uniform(0.3, 0.9)
            dy, dx = yy - cy, xx - cx
            a = dx * np.cos(angle) + dy * np.sin(angle)
            b = -dx * np.sin(angle) + dy * np.cos(angle)
            mask = (a / radius) ** 2 + (b / (radius * aspect)) ** 2 <= 1.0
        if not mask.any():
            continue
        texture = textures[rng.integers(len(textures))]
        top = rng.integers(0, texture.shape[0] - size + 1)
        left = rng.integers(0, texture.shape[1] - size + 1)
        patch = texture[top:top + size, left:left + size]
        shade = 1.0 - rng.uniform(0.2, 0.6) * (1.0 - patch)
        image[mask] = colours[rng.integers(len(colours))] * shade[mask, None]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy) / size
    light = 0.55 + 0.45 * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    return np.clip(image * light[..., None], 0.0, 1.0)


def make_demo_cubes(config: DemoConfig = DemoConfig(), progress: Progress | None = None) -> list[Cube]:
    """The clean demo target scenes (procedural layouts, target library, target light)."""
    from hiralign.rgb_spectra import srgb_encode

    progress = as_progress(progress)
    library = reflectance_library(config.library)
    renderer = Renderer.for_illuminant(config.illuminant)
    textures = [_grey_texture(skimage_image(name)) for name in TEXTURES]
    if min(min(t.shape) for t in textures) < config.size:
        raise ConfigError(f"demo scenes are limited to {min(min(t.shape) for t in textures)} pixels")
    upsampler = SpectralUpsampler(library, renderer)
    colours = np.clip(renderer.linear_rgb(library), 0.0, 1.0)
    cubes = []
    for i in range(config.n):
        progress.check()
        rng = np.random.default_rng([config.seed, 1000 + i])
        linear = dead_leaves_layout(config.size, rng, colours * rng.uniform(0.6, 1.0, (len(colours), 1)),
                                    textures, config.shapes)
        # Round-trip through 8-bit sRGB, as the source layouts are photographs.
        srgb = np.round(srgb_encode(linear) * 255) / 255
        data = upsampler.upsample(srgb_decode(srgb)) * renderer.spd.astype(np.float32)
        cubes.append(Cube(data=data, wavelengths=WAVELENGTHS_NM.copy(), name=f"scene_{i:02d}",
                          metadata={"layout": "dead leaves", "illuminant": config.illuminant,
                                    "library": config.library}))
        progress.report(i + 1, config.n, f"scene {i + 1}/{config.n}")
    return cubes


def make_demo_set(out: str | Path, config: DemoConfig = DemoConfig(), progress: Progress | None = None) -> Path:
    """Write the demo target set: ``observed/<scene>.npz`` (degraded), ``clean/<scene>.npz``.

    The manifest's entries give ``file`` (the observation) and ``clean`` (its reference);
    :func:`load_cube_set` reads either.
    """
    from hiralign import __version__
    from hiralign.degrade import degrade_cube

    clean = make_demo_cubes(config, progress)
    files: dict[str, Cube] = {}
    entries = []
    for cube in clean:
        observed = degrade_cube(cube, config.task, config.degrade_seed)
        files[f"observed/{cube.name}.npz"] = observed.with_data(observed.data, name=cube.name)
        files[f"clean/{cube.name}.npz"] = cube
        entries.append({"file": f"observed/{cube.name}.npz", "clean": f"clean/{cube.name}.npz",
                        "shape": list(cube.shape), **cube.metadata})
    description = {"kind": "hiralign demo target set", "hiralign_version": __version__,
                   "config": dataclasses.asdict(config),
                   "observed": f"clean cubes degraded by task {config.task!r} with seed {config.degrade_seed}",
                   "values": "radiance = reflectance × illuminant spectral power (maximum 1)",
                   "rebuild": "hiralign make-demo --out resources/demo"}
    return write_cube_set(out, files, entries, description)


def _grey_texture(path: Path) -> np.ndarray:
    """A bundled texture as grey float32 with its contrast stretched to [0, 1]."""
    from hiralign.io import load_rgb

    grey = load_rgb(path).mean(axis=2)
    low, high = np.percentile(grey, [1, 99])
    return np.clip((grey - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def _json_default(obj: object) -> object:
    from hiralign.atomic import _json_default as default

    return default(obj)
