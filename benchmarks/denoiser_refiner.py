"""Can a finetuned network improve on the classical proxies it is taught by? (issue 13, a negative result)

With ``auto`` proxies for ``gaussian`` / ``complex``, ``restored/`` is the subspace denoiser's
restoration D(y) and the finetuned network alone ends 3.4–5 dB below it. This script tries the
network as a *refiner* of D, from the shipped source model with its spectral path made the
identity and its output branch zeroed (so it starts as the identity), in two forms:

  input      g(D(y)) = D(y) + branch(D(y))          the network sees the denoised cube only
  residual   g(y, D(y)) = D(y) + branch(y)          the branch sees the noisy cube, D(y) is the base

and with four training targets (``--target``):

  proxies    re-degraded proxies: input D(p + n'), label p, ``--draws`` seeded noise draws per
             proxy, the denoiser re-run on each; D(y) is the folder's proxies (session 7)
  clean      the observations y themselves against the clean scenes: the refiner's upper
             bound (what perfect labels on these scenes could give)
  r2r        recorrupted-to-recorrupted (Pang et al., CVPR 2021), no clean data: with z ~ N(0, σ_b²)
             per band, input ŷ = y + αz (and D(ŷ)), target ỹ = y − z/α, L2
  sure       Stein's unbiased risk estimate on y itself, no clean data: ‖D(y) + r(y) − y‖² plus
             2 Σ σ_b² ∂r_b/∂y_b, the divergence by one Monte-Carlo probe per step (Ramani et al.
             2008); D's own divergence does not depend on the weights, so it is left out

``clean``, ``r2r`` and ``sure`` use today's denoiser for D(y) (cached under the folder's
``refiner-cache/``) and the blind per-band σ of :func:`hiralign.classical.noise_sigma`.

Reads a label folder of ``benchmarks/adaptation.py`` (``proxies/``, ``observed/``, ``clean/``),
trains on every scene (the observed-target setting), ``--steps`` steps of 16 patches of 64²,
Adam at ``--lr`` with a cosine decay, and scores D(y), g and their mean against the clean scenes::

    python benchmarks/denoiser_refiner.py bench-out/adapt5/gaussian-kaist/labels-subspace --form input
    python benchmarks/denoiser_refiner.py bench-out/adapt5/gaussian-kaist/labels-subspace --form residual
    python benchmarks/denoiser_refiner.py bench-out/adapt5/gaussian-kaist/labels-subspace --form residual --target clean
    python benchmarks/denoiser_refiner.py bench-out/adapt5/gaussian-kaist/labels-subspace --form residual --target sure
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
from hiralign.classical import noise_sigma, subspace_denoise  # noqa: E402
from hiralign.degrade import degrade  # noqa: E402
from hiralign.evaluate import score_cube  # noqa: E402
from hiralign.models.checkpoint import load_checkpoint  # noqa: E402
from hiralign.resources import shipped_model  # noqa: E402

#: one training example: (branch input, base the branch corrects, target, per-band variance (B, 1, 1))
Example = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def chw(data: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(data, dtype=np.float32).transpose(2, 0, 1)))


def cached_denoise(path: Path, data: np.ndarray, like: io.Cube) -> np.ndarray:
    """D(data) with today's subspace denoiser, cached as .npy (the denoiser dominates a run)."""
    if not path.exists():
        np.save(path, subspace_denoise(like.with_data(np.asarray(data, dtype=np.float32))).data)
    return np.load(path)


def redegraded(folder: Path, names: list[str], task: str, draws: int) -> list[list[Example]]:
    """(p + n', D(p + n'), p) for ``draws`` seeded degradations of every proxy p."""
    cache = folder.parent / "refiner-cache"
    cache.mkdir(exist_ok=True)
    examples = []
    for name in names:
        proxy = io.load(folder / "proxies" / f"{name}.hdr")
        row = []
        for k in range(draws):
            noisy = degrade(chw(proxy.data), task, 1000 + k)
            denoised = cached_denoise(cache / f"{name}_{k}.npy", noisy.numpy().transpose(1, 2, 0), proxy)
            row.append((noisy, chw(denoised), chw(proxy.data), torch.zeros(proxy.n_bands, 1, 1)))
        examples.append(row)
    return examples


def on_observations(folder: Path, names: list[str], target: str, draws: int, alpha: float,
                    ) -> tuple[list[list[Example]], list[np.ndarray]]:
    """Training examples made from the observations y, and today's D(y) for every scene."""
    cache = folder.parent / "refiner-cache" / "today"
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    examples, bases = [], []
    for name in names:
        observed = io.load(folder / "observed" / f"{name}.hdr")
        y = observed.data
        base = cached_denoise(cache / f"{name}_D.npy", y, observed)
        bases.append(base)
        sigma = noise_sigma(y).astype(np.float32)
        variance = torch.from_numpy(sigma ** 2)[:, None, None]
        if target == "clean":
            clean = io.load(folder / "clean" / f"{name}.hdr").data
            examples.append([(chw(y), chw(base), chw(clean), variance)])
        elif target == "sure":
            examples.append([(chw(y), chw(base), chw(y), variance)])
        else:
            row = []
            for k in range(draws):
                z = rng.standard_normal(y.shape).astype(np.float32) * sigma
                noisier = y + alpha * z
                denoised = cached_denoise(cache / f"{name}_a{alpha}_{k}.npy", noisier, observed)
                row.append((chw(noisier), chw(denoised), chw(y - z / alpha), variance))
            examples.append(row)
    return examples, bases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels", type=Path, help="a labels-<source> folder of benchmarks/adaptation.py")
    parser.add_argument("--form", choices=("input", "residual"), default="input")
    parser.add_argument("--target", choices=("proxies", "clean", "r2r", "sure"), default="proxies")
    parser.add_argument("--draws", type=int, default=4, help="noise draws per proxy (proxies, r2r)")
    parser.add_argument("--alpha", type=float, default=0.5, help="r2r's recorruption scale")
    parser.add_argument("--probe", type=float, default=1e-3, help="sure's Monte-Carlo step ε (data units)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = args.labels.parent.name.split("-")[0]
    names = sorted(p.stem for p in (args.labels / "clean").glob("*.hdr"))
    start = time.perf_counter()
    if args.target == "proxies":
        examples = redegraded(args.labels, names, task, args.draws)
        bases = [io.load(args.labels / "proxies" / f"{n}.hdr").data for n in names]
    else:
        examples, bases = on_observations(args.labels, names, args.target, args.draws, args.alpha)
    denoise_s = time.perf_counter() - start
    model, _ = load_checkpoint(shipped_model(task), "cpu")
    model = copy.deepcopy(model)
    model.reset_spectral_identity()
    torch.nn.init.zeros_(model.tail.weight)
    torch.nn.init.zeros_(model.tail.bias)

    def branch(inputs: torch.Tensor) -> torch.Tensor:
        return model.shuffle(model.tail(model.body(model.fold(inputs))))

    def refine(noisy: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
        return denoised + branch(noisy if args.form == "residual" else denoised)

    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps, eta_min=1e-6)
    start = time.perf_counter()
    for _ in range(args.steps):
        batch: list[list[torch.Tensor]] = [[], [], [], []]
        for _ in range(16):
            i = int(torch.randint(len(names), (1,), generator=generator))
            k = int(torch.randint(len(examples[i]), (1,), generator=generator))
            h, w = examples[i][k][0].shape[1:]
            y0 = int(torch.randint(h - 63, (1,), generator=generator))
            x0 = int(torch.randint(w - 63, (1,), generator=generator))
            turns = int(torch.randint(4, (1,), generator=generator))
            for out, tensor in zip(batch[:3], examples[i][k][:3]):
                out.append(torch.rot90(tensor[:, y0:y0 + 64, x0:x0 + 64], turns, (1, 2)))
            batch[3].append(examples[i][k][3])
        noisy, denoised, target, variance = (torch.stack(b) for b in batch)
        residual = refine(noisy, denoised) - target
        if args.target == "proxies":
            loss = residual.abs().mean()  # the session-7 runs' L1
        else:
            loss = (residual * residual).mean()  # L2: r2r and SURE are unbiased only for the MSE
        if args.target == "sure":
            probe = torch.randn(noisy.shape, generator=generator)
            moved = branch(noisy + args.probe * probe) - (residual + target - denoised)
            loss = loss + 2 * (variance * probe * moved).mean() / args.probe
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
    result: dict = {"labels": str(args.labels), "form": args.form, "target": args.target, "draws": args.draws,
                    "steps": args.steps, "lr": args.lr, "denoise_s": round(denoise_s, 1),
                    "train_s": round(time.perf_counter() - start, 1)}
    for key in ("proxies", "refined", "mean of both"):
        result[key] = []
    for name, base in zip(names, bases):
        clean = io.load(args.labels / "clean" / f"{name}.hdr")
        observed = io.load(args.labels / "observed" / f"{name}.hdr")
        with torch.no_grad():
            refined = refine(chw(observed.data)[None], chw(base)[None])[0].numpy().transpose(1, 2, 0)
        both = 0.5 * (base + refined)
        for key, data in (("proxies", base), ("refined", refined), ("mean of both", both)):
            score = score_cube(clean.with_data(np.asarray(data, dtype=np.float32)), clean)
            result[key].append([round(score.psnr, 2), round(score.sam, 2)])
    for key in ("proxies", "refined", "mean of both"):
        result[f"{key}_psnr"] = round(float(np.mean([s[0] for s in result[key]])), 2)
        result[f"{key}_sam"] = round(float(np.mean([s[1] for s in result[key]])), 2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
