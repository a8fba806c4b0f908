"""Can a finetuned network improve on the classical proxies it is taught by? (issue 13, a negative result)

With ``auto`` proxies for ``gaussian`` / ``complex``, ``restored/`` is the subspace denoiser's
restoration D(y) (40.96 dB on the KAIST scenes) and the finetuned network alone ends 3.4 dB
below it. This script tries the network as a *refiner* of D: trained on re-degraded proxies
(input D(p + n'), label p, K noise draws per proxy, the denoiser re-run on each), then
applied to D(y) itself. Two forms, both from the shipped source model with its spectral path
made the identity and its output branch zeroed (so it starts as the identity):

  input      g(D(y)) = D(y) + branch(D(y))          the network sees the denoised cube only
  residual   g(y, D(y)) = D(y) + branch(y)          the branch sees the noisy cube, D(y) is the base

Reads a label folder of ``benchmarks/adaptation.py`` (``proxies/``, ``observed/``, ``clean/``),
trains on every scene (the observed-target setting), 400 steps of 16 patches of 64², Adam at
``--lr`` with a cosine decay, and scores D(y), g and their mean against the clean scenes::

    python benchmarks/denoiser_refiner.py bench-out/adapt5/gaussian-kaist/labels-subspace --form input
    python benchmarks/denoiser_refiner.py bench-out/adapt5/gaussian-kaist/labels-subspace --form residual
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiralign import io  # noqa: E402
from hiralign.classical import subspace_denoise  # noqa: E402
from hiralign.degrade import degrade  # noqa: E402
from hiralign.evaluate import score_cube  # noqa: E402
from hiralign.models.checkpoint import load_checkpoint  # noqa: E402
from hiralign.resources import shipped_model  # noqa: E402


def chw(data: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))


def redegraded(folder: Path, names: list[str], task: str, draws: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """(D(p + n'), p + n') for ``draws`` seeded degradations of every proxy p (D cached as .npy)."""
    cache = folder.parent / "refiner-cache"
    cache.mkdir(exist_ok=True)
    pairs = []
    for name in names:
        proxy = io.load(folder / "proxies" / f"{name}.hdr")
        row = []
        for k in range(draws):
            noisy = degrade(chw(proxy.data), task, 1000 + k)
            path = cache / f"{name}_{k}.npy"
            if not path.exists():
                denoised = subspace_denoise(proxy.with_data(np.ascontiguousarray(noisy.numpy().transpose(1, 2, 0))))
                np.save(path, denoised.data)
            row.append((chw(np.load(path)), noisy))
        pairs.append(row)
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels", type=Path, help="a labels-<source> folder of benchmarks/adaptation.py")
    parser.add_argument("--form", choices=("input", "residual"), default="input")
    parser.add_argument("--draws", type=int, default=4, help="noise draws per proxy")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = args.labels.parent.name.split("-")[0]
    names = sorted(p.stem for p in (args.labels / "clean").glob("*.hdr"))
    proxies = [io.load(args.labels / "proxies" / f"{n}.hdr") for n in names]
    start = time.perf_counter()
    pairs = redegraded(args.labels, names, task, args.draws)
    denoise_s = time.perf_counter() - start
    model, _ = load_checkpoint(shipped_model(task), "cpu")
    model = copy.deepcopy(model)
    model.reset_spectral_identity()
    torch.nn.init.zeros_(model.tail.weight)
    torch.nn.init.zeros_(model.tail.bias)

    def refine(noisy: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
        branch_input = noisy if args.form == "residual" else denoised
        return denoised + model.shuffle(model.tail(model.body(model.fold(branch_input))))

    labels = [chw(p.data) for p in proxies]
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps, eta_min=1e-6)
    start = time.perf_counter()
    for _ in range(args.steps):
        noisy, denoised, target = [], [], []
        for _ in range(16):
            i = int(torch.randint(len(names), (1,), generator=generator))
            k = int(torch.randint(args.draws, (1,), generator=generator))
            h, w = labels[i].shape[1:]
            y0 = int(torch.randint(h - 63, (1,), generator=generator))
            x0 = int(torch.randint(w - 63, (1,), generator=generator))
            turns = int(torch.randint(4, (1,), generator=generator))
            for out, tensor in ((denoised, pairs[i][k][0]), (noisy, pairs[i][k][1]), (target, labels[i])):
                out.append(torch.rot90(tensor[:, y0:y0 + 64, x0:x0 + 64], turns, (1, 2)))
        loss = (refine(torch.stack(noisy), torch.stack(denoised)) - torch.stack(target)).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
    result: dict = {"labels": str(args.labels), "form": args.form, "draws": args.draws, "steps": args.steps,
                    "lr": args.lr, "denoise_s": round(denoise_s, 1), "train_s": round(time.perf_counter() - start, 1)}
    for key in ("proxies", "refined", "mean of both"):
        result[key] = []
    for name, proxy in zip(names, proxies):
        clean = io.load(args.labels / "clean" / f"{name}.hdr")
        observed = io.load(args.labels / "observed" / f"{name}.hdr")
        with torch.no_grad():
            refined = refine(chw(observed.data)[None], chw(proxy.data)[None])[0].numpy().transpose(1, 2, 0)
        both = 0.5 * (proxy.data + refined)
        for key, data in (("proxies", proxy.data), ("refined", refined), ("mean of both", both)):
            score = score_cube(proxy.with_data(np.asarray(data, dtype=np.float32)), clean)
            result[key].append([round(score.psnr, 2), round(score.sam, 2)])
    for key in ("proxies", "refined", "mean of both"):
        result[f"{key}_psnr"] = round(float(np.mean([s[0] for s in result[key]])), 2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
