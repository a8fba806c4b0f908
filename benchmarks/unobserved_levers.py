"""Levers for the unobserved split: finetune on two scenes' proxies, score the other scenes.

Reads a label folder written by ``benchmarks/adaptation.py`` (``<out>/<task>-<set>/labels-<source>/``
with ``proxies/``, ``observed/``, ``clean/`` and, for ``synth:ROW``, that row's ``synth/``),
finetunes the shipped source model on the first two scenes' proxies (400 steps, the
library's FinetuneConfig, networks alone: no fusion, one pass) and scores every scene.
Variants, joined with ``+``:

  base            proxies only (the paper's proxy-only row)
  source          no finetuning (the source model)
  replayW         the source set (rebuilt as hiralign.replay does) mixed in at weight W
  gainA           every patch times a random smooth spectral gain exp(c·poly(λ)), |c| ≤ A
  lrX             finetuning learning rate X (default: FinetuneConfig's)
  synth:ROW       ROW's synthesized cubes of the two scenes at ratio 3:1 (ROW: a run folder)

Usage::

    python benchmarks/unobserved_levers.py bench-out/adapt5/complex-kaist/labels-subspace \\
        source base replay0.33 replay1.0 gain0.3 synth:unobserved+replay0.33

Appends one JSON line per variant to ``--log`` (default: the label folder's ``levers.jsonl``).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiralign import io  # noqa: E402
from hiralign.evaluate import score_cube  # noqa: E402
from hiralign.finetune import FinetuneConfig, aligned_sampler  # noqa: E402
from hiralign.models.checkpoint import load_checkpoint, read_provenance  # noqa: E402
from hiralign.proxy import restore_cube  # noqa: E402
from hiralign.replay import replay_cubes  # noqa: E402
from hiralign.resources import shipped_model  # noqa: E402
from hiralign.train import train  # noqa: E402


class SpectralGain:
    """Wraps a sampler: each patch times exp(c1·t + c2·(t² − 1/3) + c3·t³), t ∈ [−1, 1] over bands."""

    def __init__(self, inner, amplitude: float) -> None:
        self.inner, self.amplitude = inner, amplitude

    bands = property(lambda self: self.inner.bands)
    min_side = property(lambda self: self.inner.min_side)

    def sample(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        x = self.inner.sample(n, size, generator)
        t = torch.linspace(-1, 1, x.shape[1])
        c = (torch.rand((n, 3), generator=generator) * 2 - 1) * self.amplitude
        gain = torch.exp(c[:, :1] * t + c[:, 1:2] * (t ** 2 - 1 / 3) + c[:, 2:3] * t ** 3)
        return x * gain[:, :, None, None]


def run_variant(work: Path, task: str, variant: str, model_dir: Path | None = None) -> dict:
    model_dir = model_dir or shipped_model(task)
    names = sorted(p.stem for p in (work / "clean").glob("*.hdr"))
    model, ckpt = load_checkpoint(model_dir, "cpu")
    model = copy.deepcopy(model)
    proxies = [io.load(work / "proxies" / f"{n}.hdr") for n in names[:2]]
    parts = variant.split("+")
    synth_rows = [p[6:] for p in parts if p.startswith("synth:")]
    synthesized = [io.load(p) for row in synth_rows for n in names[:2]
                   for p in sorted((work / row / "synth").glob(f"{n}_g*.hdr"))]
    weight = next((float(p[6:]) for p in parts if p.startswith("replay")), 0.0)
    replay = replay_cubes(read_provenance(model_dir), proxies).cubes if weight else ()
    # the library's own sampler: proxies (+ synthesized at 3:1) (+ replay at its weight)
    lr = next((float(p[2:]) for p in parts if p.startswith("lr")), FinetuneConfig().lr)
    config = FinetuneConfig(mode="hiralign" if synthesized else "proxy-only", source_replay=weight, lr=lr)
    sampler = aligned_sampler(proxies, synthesized, config, replay)
    for part in parts:
        if part.startswith("gain"):
            sampler = SpectralGain(sampler, float(part[4:]))
        elif part not in ("base", "source") and not part.startswith(("synth:", "replay", "lr")):
            raise SystemExit(f"unknown variant part {part!r}")
    start = time.perf_counter()
    if variant != "source":
        train(model, sampler, config.train_config(task), device="cpu")
    out: dict = {"variant": variant, "train_s": round(time.perf_counter() - start, 1)}
    for n in names:
        observed, clean = io.load(work / "observed" / f"{n}.hdr"), io.load(work / "clean" / f"{n}.hdr")
        s = score_cube(restore_cube(model, observed, scale=ckpt.scale), clean)
        out[n] = [round(s.psnr, 2), round(s.sam, 2)]
    for key, part in (("seen", names[:2]), ("unseen", names[2:])):
        out[f"{key}_psnr"] = round(sum(out[n][0] for n in part) / len(part), 2)
        out[f"{key}_sam"] = round(sum(out[n][1] for n in part) / len(part), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels", type=Path, help="a labels-<source> folder of benchmarks/adaptation.py")
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None,
                        help="source model folder (default: the shipped 31-band one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = args.labels.parent.name.split("-")[0]
    log = args.log or args.labels / "levers.jsonl"
    for variant in args.variants:
        result = {"labels": str(args.labels), **run_variant(args.labels, task, variant, args.model)}
        print(json.dumps(result), flush=True)
        with log.open("a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
