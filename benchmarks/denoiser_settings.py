"""The subspace denoiser's settings on every noise set there is: what the ``auto`` proxies (and ``restored/``) get.

For ``gaussian`` / ``complex`` runs ``restored/`` is the subspace denoiser's restoration
(``hiralign.classical``, at ``--fuse-proxies 1``), so its settings are what a scientist gets.
Each line scores one :class:`~hiralign.classical.SubspaceConfig` (the defaults overridden by
a JSON object) against the clean references on:

  bench    the 256² KAIST (4) and CAVE (3) scenes degraded with seed 0 — the observations of
           ``benchmarks/adaptation.py`` (``g-kaist``, ``g-cave``, ``c-kaist``, ``c-cave``)
  held     the same scenes with seed 7 and the four airborne crops of ``../shared/data/remote``
           (AVIRIS, MUUFL, Pavia, Salton Sea; 72–224 bands, each divided by its 99.9th percentile)
  sensor   the simulated IMEC captures of ``benchmarks/real_sensor.py`` (real noise, 4× variance,
           4× darker), denoised on the stabilised capture with the noise model estimated from them,
           PSNR with the clean maximum as peak (that benchmark's)

Usage::

    python benchmarks/denoiser_settings.py '{}' '{"min_components": 3, "strength": 0.6, "wiener_patch": 8}'
    python benchmarks/denoiser_settings.py --sets sensor '{"stabilised_strength": 0.8}'

Prints one JSON line per config (PSNR dB / SAM ° per set, means over its cubes) and appends it
to ``--log``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from labels import SHARED, load_set  # noqa: E402

from hiralign import io  # noqa: E402
from hiralign.classical import SubspaceConfig, subspace_denoise  # noqa: E402
from hiralign.cube import Cube  # noqa: E402
from hiralign.degrade import degrade_cube  # noqa: E402
from hiralign.evaluate import score_cube  # noqa: E402

SETS = ("bench", "held", "sensor")


def remote_crops() -> list[Cube]:
    cubes = []
    for path in sorted((SHARED / "remote").glob("*.mat")):
        cube = io.load(path)
        data = np.clip(cube.data / np.percentile(cube.data, 99.9), 0, 1).astype(np.float32)
        cubes.append(cube.with_data(data, name=path.stem))
    return cubes


def protocol_rows(config: SubspaceConfig, groups: dict[str, list[Cube]], seed: int) -> dict[str, list[float]]:
    out = {}
    for task in ("gaussian", "complex"):
        for name, cubes in groups.items():
            scores = [score_cube(subspace_denoise(degrade_cube(c, task, seed), config), c) for c in cubes]
            out[f"{task[0]}-{name}" + ("" if seed == 0 else f"-s{seed}")] = [
                round(float(np.mean([s.psnr for s in scores])), 2), round(float(np.mean([s.sam for s in scores])), 2)]
    return out


def sensor_rows(config: SubspaceConfig, kaist: list[Cube]) -> dict[str, list[float]]:
    import real_sensor

    from hiralign.intensity import noise_on_network_scale, scale_for_task
    from hiralign.noise import estimate_noise

    noise, wavelengths = real_sensor.real_noise()
    out = {}
    for variant, (p99, factor) in real_sensor.VARIANTS.items():
        pairs = [real_sensor.simulate(c, wavelengths, noise, p99, factor, seed=1000 + i) for i, c in enumerate(kaist)]
        # the captures as the files hold them (uint16 counts), as hiralign adapt reads them
        captures = [Cube(np.round(n.data * 65535).astype(np.uint16).astype(np.float32) / 65535,
                         wavelengths=n.wavelengths, name=n.name) for _, n in pairs]
        scale = scale_for_task("sensor", captures)
        model = estimate_noise(captures)
        rows = []
        for (ref, _), capture in zip(pairs, captures):
            per_band = scale.per_band(capture.n_bands)
            normalised = capture.with_data((capture.data / per_band).astype(np.float32))
            denoised = subspace_denoise(normalised, config, noise=noise_on_network_scale(model, scale))
            rows.append(real_sensor.scores(denoised.data * per_band, ref.data))
        out[f"sensor-{variant}"] = [round(float(np.mean([r["psnr"] for r in rows])), 2),
                                    round(float(np.mean([r["sam"] for r in rows])), 2)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="*", default=["{}"], help="JSON objects of SubspaceConfig overrides")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args()
    import warnings

    warnings.simplefilter("ignore", UserWarning)  # the KAIST bands, the dark simulated captures
    kaist, cave = load_set("kaist"), load_set("cave")
    remote = remote_crops() if "held" in args.sets else []
    for text in args.configs:
        overrides = json.loads(text)
        config = SubspaceConfig(**overrides)
        start = time.perf_counter()
        result: dict = {"config": overrides}
        if "bench" in args.sets:
            result.update(protocol_rows(config, {"kaist": kaist, "cave": cave}, 0))
        if "held" in args.sets:
            result.update(protocol_rows(config, {"kaist": kaist, "cave": cave, "remote": remote}, 7))
        if "sensor" in args.sets:
            result.update(sensor_rows(config, kaist))
        result["wall_s"] = round(time.perf_counter() - start, 1)
        print(json.dumps(result), flush=True)
        if args.log:
            with args.log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
