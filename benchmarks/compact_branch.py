"""Full-resolution vs pixel-unshuffled branch of the compact restorer, equal steps.

Trains ``compact`` with ``unshuffle=1`` (the FACTS.md prototype's full-resolution branch)
and ``unshuffle=2`` (the default) for the same number of ``gaussian`` steps on the source
set, from the same projector start, and reports wall time, CPU time, validation PSNR and
the PSNR/SSIM/SAM on the KAIST scenes degraded with seed 0.

    .venv/bin/python benchmarks/compact_branch.py --steps 120 --json .tmp/compact_branch.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--source", default=str(REPO / ".tmp" / "source"))
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from hiralign.evaluate import evaluate_models
    from hiralign.io import load
    from hiralign.models.compact import CompactRestorer, count_parameters
    from hiralign.patches import CubeSampler
    from hiralign.pretrain import PretrainSettings, _init_projector
    from hiralign.source import load_cube_set
    from hiralign.train import TrainConfig, make_validation_set, train

    cubes = load_cube_set(args.source)
    training, held_out = cubes[:-2], cubes[-2:]
    validation = make_validation_set(held_out, "gaussian")
    kaist = [load(f) for f in sorted(Path(args.data).glob("kaist/*.mat"))]
    rows = []
    for unshuffle in (2, 1):
        model = CompactRestorer(31, unshuffle=unshuffle)
        _init_projector(model, training, "gaussian", PretrainSettings(), 0)
        wall, cpu = time.perf_counter(), time.process_time()
        result = train(model, CubeSampler(training), TrainConfig(task="gaussian", steps=args.steps),
                       validation=validation, device="cpu")
        row = {"unshuffle": unshuffle, "parameters": count_parameters(model),
               "wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
               "val_psnr": round(result.final_psnr, 3)}
        if kaist:
            row["kaist"] = {k: round(v, 3) for k, v in
                            evaluate_models(kaist, "gaussian", [("m", model, 1)], seed=0)[0].mean.items()}
        rows.append(row)
        print(row, flush=True)
    if args.json:
        from hiralign.atomic import write_json

        write_json(args.json, {"steps": args.steps, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
