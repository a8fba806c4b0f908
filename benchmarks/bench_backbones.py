"""Time one training iteration (forward + backward + Adam step) of every registered backbone.

Batch 8, 31 bands, 32×32 target patches (super-resolvers get the 8×8 low-resolution input),
L1 loss. Rounds are interleaved — every round runs each model once — so load from other
processes on a shared machine spreads over all models instead of hitting one; each model's
median and spread are reported, with its ratio to a fixed reference convolution net timed in
the same rounds (the ratio is the number to compare across runs and machines).

Usage:
    python benchmarks/bench_backbones.py [--rounds 5] [--threads 2] [--device cpu]
        [--arch sert_small --arch qrnn3d ...] [--json out.json]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn as nn

from hiralign.device import configure_torch, resolve_device
from hiralign.models import ARCHS, build_model
from hiralign.models.blocks import count_parameters

BATCH, BANDS, PATCH = 8, 31, 32
#: Scale each super-resolution backbone is timed at (all others: 1).
SR_SCALE = {"gdrrn": 4, "essaformer": 4}
REFERENCE = "reference-conv8x64"


def reference_net(bands: int) -> nn.Module:
    """Fixed baseline workload: 8 plain 3×3 conv layers, 64 channels (≈0.26 M parameters)."""
    layers: list[nn.Module] = [nn.Conv2d(bands, 64, 3, padding=1), nn.ReLU()]
    for _ in range(6):
        layers += [nn.Conv2d(64, 64, 3, padding=1), nn.ReLU()]
    layers.append(nn.Conv2d(64, bands, 3, padding=1))
    return nn.Sequential(*layers)


def make_step(model: nn.Module, scale: int, device: torch.device) -> Callable[[], None]:
    """A closure running one forward + backward + Adam step on a fixed random batch."""
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(BATCH, BANDS, PATCH, PATCH, generator=generator).to(device)
    source = (torch.nn.functional.avg_pool2d(target, scale) if scale > 1
              else target + 0.1 * torch.randn(target.shape, generator=generator).to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step() -> None:
        loss = torch.nn.functional.l1_loss(model(source), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--arch", action="append", help="architectures (default: all)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    configure_torch()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = args.arch or sorted(ARCHS)
    torch.manual_seed(0)
    models = {REFERENCE: reference_net(BANDS).to(device)}
    models.update({name: build_model(name, BANDS, scale=SR_SCALE.get(name, 1)).to(device)
                   for name in names})
    steps = {name: make_step(model, SR_SCALE.get(name, 1), device)
             for name, model in models.items()}
    for step in steps.values():  # warm-up: allocator, kernels, first Adam state
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
        print(f"round {round_index + 1}/{args.rounds}: "
              + ", ".join(f"{name} {samples[-1]:.2f}s" for name, samples in times.items()),
              flush=True)

    reference = statistics.median(times[REFERENCE])
    rows = []
    print(f"device {device}, threads {args.threads}, batch {BATCH}, {BANDS} bands, "
          f"{PATCH}² targets, {args.rounds} rounds")
    print(f"{'arch':<20}{'params':>10}{'median s':>10}{'min':>8}{'max':>8}{'× ref':>8}")
    for name, samples in times.items():
        median = statistics.median(samples)
        params = count_parameters(models[name])
        rows.append(dict(arch=name, params=params, median_s=median, min_s=min(samples),
                         max_s=max(samples), ratio_to_reference=median / reference,
                         samples_s=samples))
        print(f"{name:<20}{params / 1e6:>9.3f}M{median:>10.3f}{min(samples):>8.3f}"
              f"{max(samples):>8.3f}{median / reference:>8.2f}")
    if args.json:
        from hiralign.atomic import write_json

        write_json(args.json, dict(device=str(device), threads=args.threads, batch=BATCH,
                                   bands=BANDS, patch=PATCH, rounds=args.rounds, rows=rows))


if __name__ == "__main__":
    main()
