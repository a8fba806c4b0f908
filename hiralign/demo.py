"""The embedded demo target set (``hiralign make-demo``): recognisable scenes as cubes.

The demo's targets are photographs bundled inside scikit-image (``skimage/data``, never
fetched) — a stained tissue section, a retina, scikit-image's logo and a patch of the
Hubble deep field — turned into 31-band cubes by :mod:`hiralign.rgb_spectra`. None of
them is among the source set's layouts (:data:`hiralign.source.SOURCE_LAYOUTS`), and
the materials (the ``target`` reflectance library) and the light (D50 instead of the
source set's D65) differ too: a real domain gap in layouts, materials and illumination,
in scenes a person recognises on the first screen.

Each clean cube is degraded with the task's D_task (:func:`hiralign.degrade.degrade_cube`,
seed 0 as in PROTOCOL.md) into the observation the application adapts to. Clean cubes
and observations are stored at 12-bit precision (values rounded to multiples of 2⁻¹², as
a 12-bit sensor records them; a change of at most 1.2e-4, a thousand times below the
demo's noise), the clean cube before it is degraded, so the files stay small (deflate
packs the zero low mantissa bits) and the stored reference is exactly the one degraded.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.progress import Progress, as_progress
from hiralign.rgb_spectra import WAVELENGTHS_NM, Renderer, SpectralUpsampler, reflectance_library, srgb_decode

#: Demo scenes: name -> (scikit-image file, square crop (top, left, side) in pixels of the file).
SCENES: dict[str, tuple[str, tuple[int, int, int]]] = {
    "histology": ("ihc.png", (0, 0, 512)),
    "retina": ("retina.jpg", (300, 100, 800)),
    "logo": ("logo.png", (0, 0, 500)),
    "galaxies": ("hubble_deep_field.jpg", (300, 300, 300)),
}
#: The command that rebuilds ``resources/demo`` (recorded in its manifest).
REBUILD_COMMAND = "hiralign make-demo --out resources/demo"


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """How the demo target set is made.

    Attributes:
        scenes: names from :data:`SCENES`, in display order.
        size: side of each square cube, pixels (the crop is resized to it).
        illuminant: light of the target scenes (the source set uses D65).
        library: reflectance library (disjoint from the source set's ``source``).
        task: degradation D_task of the observed cubes.
        degrade_seed: seed of that degradation (PROTOCOL.md: 0).
        bits: precision the clean and observed cubes are stored at (0 = full float32).
    """

    scenes: tuple[str, ...] = tuple(SCENES)
    size: int = 128
    illuminant: str = "D50"
    library: str = "target"
    task: str = "gaussian"
    degrade_seed: int = 0
    bits: int = 12

    def __post_init__(self) -> None:
        unknown = [s for s in self.scenes if s not in SCENES]
        if not self.scenes or unknown:
            raise ConfigError(f"unknown demo scene(s) {', '.join(unknown) or '(none given)'}; "
                              f"known: {', '.join(SCENES)}")
        if not 16 <= self.size <= 512:
            raise ConfigError(f"demo scenes must be 16–512 pixels on a side (got {self.size})")
        if self.bits != 0 and not 8 <= self.bits <= 24:
            raise ConfigError(f"bits must be 0 (float32) or 8–24 (got {self.bits})")


def scene_srgb(name: str, size: int) -> np.ndarray:
    """The sRGB-encoded (size, size, 3) float32 picture of demo scene ``name``, in [0, 1]."""
    from skimage.transform import resize

    from hiralign.io import load_rgb
    from hiralign.source import skimage_image

    if name not in SCENES:
        raise InputError(f"unknown demo scene {name!r}; known: {', '.join(SCENES)}")
    file, (top, left, side) = SCENES[name]
    image = load_rgb(skimage_image(file))
    crop = image[top:top + side, left:left + side]
    if crop.shape[:2] != (side, side):
        raise InputError(f"{file} ({image.shape[1]}×{image.shape[0]}) does not hold the {side}-px crop at "
                         f"({top}, {left}) of demo scene {name}")
    # Anti-aliased area resize, then 8-bit rounding: the scene stays a photograph's pixels.
    small = resize(crop, (size, size), order=1, anti_aliasing=True).astype(np.float32)
    return np.round(np.clip(small, 0.0, 1.0) * 255) / 255


def make_demo_cubes(config: DemoConfig = DemoConfig(), progress: Progress | None = None) -> list[Cube]:
    """The clean demo cubes: radiance = reflectance × illuminant (maximum 1), (size, size, 31).

    Values are rounded to ``config.bits`` bits (see :func:`quantize`).

    Args:
        config: scenes, size, light and library.
        progress: reports one step per scene and checks for cancellation.
    """
    progress = as_progress(progress)
    renderer = Renderer.for_illuminant(config.illuminant)
    upsampler = SpectralUpsampler(reflectance_library(config.library), renderer)
    spd = renderer.spd.astype(np.float32)
    cubes = []
    for k, name in enumerate(config.scenes):
        progress.check()
        data = upsampler.upsample(srgb_decode(scene_srgb(name, config.size))) * spd
        cubes.append(Cube(data=quantize(data, config.bits), wavelengths=WAVELENGTHS_NM.copy(), name=name,
                          metadata={"layout": SCENES[name][0], "crop": list(SCENES[name][1]),
                                    "illuminant": config.illuminant, "library": config.library}))
        progress.report(k + 1, len(config.scenes), f"scene {k + 1}/{len(config.scenes)}: {name}")
    return cubes


def quantize(data: np.ndarray, bits: int) -> np.ndarray:
    """Values rounded to multiples of 2⁻ᵇⁱᵗˢ (``bits`` = 0 leaves them unchanged), float32."""
    if bits == 0:
        return np.asarray(data, dtype=np.float32)
    step = np.float32(2.0 ** -bits)
    return (np.round(np.asarray(data, dtype=np.float32) / step) * step).astype(np.float32)


def make_demo_set(out: str | Path, config: DemoConfig = DemoConfig(), progress: Progress | None = None) -> Path:
    """Write the demo set: ``observed/<scene>.npz`` (degraded), ``clean/<scene>.npz``, ``manifest.json``.

    The manifest's entries give ``file`` (the observation) and ``clean`` (its reference);
    :func:`hiralign.source.load_cube_set` reads either. The folder is replaced only once
    complete.
    """
    from hiralign import __version__
    from hiralign.degrade import check_task, degrade_cube
    from hiralign.source import write_cube_set

    check_task(config.task)
    clean = make_demo_cubes(config, progress)
    files: dict[str, Cube] = {}
    entries: list[dict[str, Any]] = []
    for cube in clean:
        observed = degrade_cube(cube, config.task, config.degrade_seed)
        files[f"observed/{cube.name}.npz"] = observed.with_data(quantize(observed.data, config.bits), name=cube.name)
        files[f"clean/{cube.name}.npz"] = cube
        entries.append({"file": f"observed/{cube.name}.npz", "clean": f"clean/{cube.name}.npz",
                        "shape": list(observed.shape), **cube.metadata})
    precision = f"{config.bits}-bit (multiples of 2^-{config.bits})" if config.bits else "float32"
    description = {"kind": "hiralign demo target set", "hiralign_version": __version__,
                   "config": dataclasses.asdict(config),
                   "source_images": "scikit-image's bundled sample data (skimage/data), none of them a source-set "
                                    "layout",
                   "observed": f"clean cubes degraded by task {config.task!r} with seed {config.degrade_seed}; both "
                               f"stored at {precision} precision",
                   "values": "radiance = reflectance × illuminant spectral power (maximum 1)",
                   "rebuild": REBUILD_COMMAND}
    return write_cube_set(out, files, entries, description)
