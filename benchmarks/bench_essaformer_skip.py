"""ESSAformer ×4 with and without the bicubic skip (``bicubic_skip``), same short budget.

Trains both variants with the project's one training loop on the CAVE scenes of
../shared/data (task ``sr4``, identical seeds and settings), then scores them on the KAIST
scenes (centre crops, degraded with seed 0) next to plain bicubic interpolation. The
published model has no skip; this measures what the optional skip buys in a short budget.

Usage:
    python benchmarks/bench_essaformer_skip.py [--steps 100] [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from hiralign.device import configure_torch
from hiralign.io import load
from hiralign.metrics import all_metrics
from hiralign.models import build_model
from hiralign.patches import CubeSampler
from hiralign.train import TrainConfig, make_validation_set, train

DATA = Path(os.environ.get("HIRALIGN_SHARED_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    configure_torch()
    torch.set_num_threads(args.threads)

    source = [load(p) for p in sorted((DATA / "cave").glob("*.mat"))]
    target = [load(p) for p in sorted((DATA / "kaist").glob("*.mat"))]
    validation = make_validation_set(target, "sr4", seed=0, size=128)
    config = TrainConfig(task="sr4", steps=args.steps, batch_size=8, patch_size=32, lr=5e-4,
                         lr_min=1e-5, seed=0, state_every=0)
    rows = {}
    with torch.no_grad():
        bicubic = torch.nn.functional.interpolate(validation.degraded, scale_factor=4.0,
                                                  mode="bicubic", align_corners=False)
    rows["bicubic interpolation"] = dict(all_metrics(bicubic, validation.clean), wall_s=0.0)
    for skip in (False, True):
        torch.manual_seed(0)
        model = build_model("essaformer", 31, scale=4, bicubic_skip=skip)
        result = train(model, CubeSampler(source, "CAVE scenes"), config, device="cpu")
        model.eval()
        with torch.no_grad():
            restored = torch.cat([model(x[None]) for x in validation.degraded])
        rows[f"essaformer bicubic_skip={skip}"] = dict(all_metrics(restored, validation.clean),
                                                       wall_s=result.wall_s)
    print(f"ESSAformer x4, {args.steps} steps on CAVE, scored on KAIST centre crops")
    print(f"{'':<34}{'PSNR':>8}{'SSIM':>8}{'SAM°':>8}{'train s':>9}")
    for name, row in rows.items():
        print(f"{name:<34}{row['psnr']:>8.2f}{row['ssim']:>8.3f}{row['sam']:>8.2f}"
              f"{row['wall_s']:>9.0f}")
    if args.json:
        from hiralign.atomic import write_json

        write_json(args.json, dict(steps=args.steps, config=config.to_dict(), rows=rows))


if __name__ == "__main__":
    main()
