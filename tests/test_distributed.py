"""Distributed adapt runs: launcher environment, sharding, DDP finetuning, command export."""
from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from hiralign import io
from hiralign.cli import build_parser
from hiralign.commands.adapt import build
from hiralign.config import AdaptConfig
from hiralign.cube import Cube
from hiralign.distributed import LaunchEnvironment, Workers, process_group, rank_state_path
from hiralign.errors import ConfigError
from hiralign.finetune import FinetuneConfig
from hiralign.launch import run_command, write_launch_files
from hiralign.models import build_model
from hiralign.models.checkpoint import CheckpointConfig, load_checkpoint, read_provenance, save_checkpoint
from hiralign.proxy import TileConfig

BANDS = 8
WL = np.linspace(450, 660, BANDS)
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny compact source checkpoint and three noisy 32×32×8 targets."""
    root = tmp_path_factory.mktemp("dist")
    torch.manual_seed(0)
    model = build_model("compact", bands=BANDS, features=8, depth=2)
    save_checkpoint(model, root / "source", CheckpointConfig(arch="compact", task="gaussian", bands=BANDS,
                                                             wavelengths=WL, args={"features": 8, "depth": 2}))
    targets = []
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)
        clean = gaussian_filter(rng.random((32, 32, BANDS)), sigma=(2, 2, 1.5))
        clean = (clean - clean.min()) / (clean.max() - clean.min())
        noisy = np.clip(clean + 0.05 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
        targets.append(io.save(Cube(noisy, wavelengths=WL), root / f"scene{seed}.hdr"))
    settings = root / "settings.json"
    settings.write_text(json.dumps({"warp": {"iterations": 5, "index": "exact"}}))
    return {"root": root, "ckpt": root / "source", "targets": targets, "settings": settings}


def _adapt_args(tiny: dict, out: Path) -> list[str]:
    """Every stage: classic guides (1 per target) and a short warp, so the run stays a few seconds."""
    return ["adapt", "--target", *map(str, tiny["targets"]), "--task", "gaussian", "--model", str(tiny["ckpt"]),
            "--out", str(out), "--generator", "classic", "--guides", "1", "--config", str(tiny["settings"]),
            "--steps", "4", "--batch-size", "2", "--patch-size", "16", "--tile", "32", "--overlap", "8",
            "--device", "cpu"]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    # one thread per process: two processes with two torch/faiss threads each on a busy
    # 2-core machine slow the warp >10× (FACTS.md); torchrun sets this itself
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(name, None)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=REPO)


def _layout(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*")}


# ------------------------------------------------------------------ launcher
def test_launch_environment_is_read_from_the_launcher_variables() -> None:
    assert LaunchEnvironment.from_env({}) is None
    env = LaunchEnvironment.from_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert (env.rank, env.world_size, env.local_rank) == (3, 8, 1)
    with pytest.raises(ConfigError, match="RANK=8"):
        LaunchEnvironment.from_env({"RANK": "8", "WORLD_SIZE": "8"})
    with pytest.raises(ConfigError, match="not integers"):
        LaunchEnvironment.from_env({"RANK": "x", "WORLD_SIZE": "2"})
    with process_group("cpu", environ={}) as workers:
        assert (workers.rank, workers.size, workers.is_main) == (0, 1, True)
    with process_group("cpu", environ={"RANK": "0", "WORLD_SIZE": "1"}) as workers:
        assert workers.size == 1 and not torch.distributed.is_initialized()


def test_shares_cover_every_item_once_whatever_is_already_done() -> None:
    items = [(i, f"scene{i}") for i in range(7)]
    done = {"scene0"}  # e.g. written by rank 0 before a slower rank listed its work
    shares = [Workers(rank=r, size=3).todo("proxy", items, lambda it: it[1] in done) for r in range(3)]
    handled = [name for share in shares for _, name in share]
    assert sorted(handled) == sorted(n for _, n in items if n not in done)
    assert len(handled) == len(set(handled))
    assert rank_state_path(Path("run/finetune_state.pt"), 1) == Path("run/finetune_state.rank1.pt")


# ------------------------------------------------------------ command export
def test_run_command_round_trips_through_the_cli(tmp_path: Path) -> None:
    config = AdaptConfig(task="sr4", model="/models/sr", generator="patchnn",
                         generator_config={"noise_std": 4.0}, guides=2, warp={"iterations": 50},
                         finetune=FinetuneConfig(steps=120, ratio=2.0, batch_size=8, patch_size=32, lr=1e-4, seed=7),
                         tiles=TileConfig(tile=96, overlap=12), consistency=False, seed=7, device="cuda")
    targets = [tmp_path / "a scene.mat", tmp_path / "b.mat"]
    script = write_launch_files(config, targets, tmp_path / "run", tmp_path / "export", processes=4,
                                load_options={"var": "cube", "wavelengths": [400, 410, 420]})
    line = script.read_text().strip().splitlines()[-1]
    argv = shlex.split(line)
    assert argv[:6] == ["accelerate", "launch", "--multi_gpu", "--num_processes", "4", "--num_machines"]
    hiralign_args = argv[argv.index("hiralign") + 1:]
    rebuilt = build(build_parser().parse_args(hiralign_args)).config
    assert rebuilt == config
    assert json.loads((tmp_path / "export" / "adapt_settings.json").read_text()) == \
        {"warp": {"iterations": 50}, "generator": {"noise_std": 4.0}}
    assert "--var" in hiralign_args and "400,410,420" in hiralign_args
    torchrun = run_command(config, targets, "run", launcher="torchrun", processes=2,
                           settings_file=tmp_path / "export" / "adapt_settings.json")
    assert torchrun[:5] == ["torchrun", "--standalone", "--nproc_per_node", "2", "-m"]
    assert run_command(AdaptConfig(task="gaussian"), targets, "run", processes=1)[:2] == ["hiralign", "adapt"]
    with pytest.raises(ConfigError, match="settings file"):
        run_command(config, targets, "run")
    with pytest.raises(ConfigError, match="final learning rate"):
        run_command(AdaptConfig(task="gaussian", finetune=FinetuneConfig(lr_min=1e-3)), targets, "run")
    with pytest.raises(ConfigError, match="launcher"):
        run_command(AdaptConfig(task="gaussian"), targets, "run", launcher="slurm")


# ------------------------------------------------------------- real 2-rank runs
def _ddp_worker(rank: int, port: int, folder: str) -> None:
    """One rank of the DDP finetuning check (runs in a spawned process)."""
    import torch.distributed as dist

    from hiralign.distributed import agree_on_resume, data_parallel, rank_state_path
    from hiralign.finetune import finetune

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    workers = Workers(rank=rank, size=2, barrier=dist.barrier)
    torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
    model = build_model("compact", bands=BANDS, features=8, depth=2)
    rng = np.random.default_rng(rank)
    cubes = [Cube(rng.random((24, 24, BANDS)).astype(np.float32), wavelengths=WL) for _ in range(2)]
    state = rank_state_path(Path(folder) / "finetune_state.pt", rank)
    config = FinetuneConfig(steps=3, batch_size=2, patch_size=16, mode="proxy-only", seed=rank)
    finetune(data_parallel(model, torch.device("cpu")), "gaussian", cubes, [], config, state_path=state,
             resume=True, device="cpu")
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(2)]
    dist.all_gather(gathered, flat)
    result = {"same_weights": bool(torch.equal(gathered[0], gathered[1])), "state_saved": state.is_file()}
    # a cancelled run can leave the ranks' states a step apart: both must start over
    if rank == 1:
        saved = torch.load(state, weights_only=True)
        saved["step"] = 2
        torch.save(saved, state)
    dist.barrier()
    result["resumed_from"] = agree_on_resume(state, workers)
    result["state_kept"] = state.is_file()
    (Path(folder) / f"result{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_finetuning_keeps_ranks_identical_and_resume_consistent(tmp_path: Path) -> None:
    # fork: the children inherit the imported modules (spawn would re-import torch twice)
    torch.multiprocessing.start_processes(_ddp_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True,
                                          start_method="fork")
    results = [json.loads((tmp_path / f"result{r}.json").read_text()) for r in range(2)]
    for result in results:
        assert result == {"same_weights": True, "state_saved": True, "resumed_from": None, "state_kept": False}


@pytest.mark.slow
def test_torchrun_adapt_matches_the_single_process_layout(tiny: dict, tmp_path: Path) -> None:
    single, double = tmp_path / "single", tmp_path / "double"
    alone = _run([sys.executable, "-m", "hiralign", *_adapt_args(tiny, single)])
    assert alone.returncode == 0, alone.stderr[-3000:]
    done = _run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                 "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                 "-m", "hiralign", *_adapt_args(tiny, double)])
    assert done.returncode == 0, done.stderr[-3000:]

    assert _layout(double) == _layout(single)
    names = {"scene1", "scene2", "scene3"}
    assert {p.stem for p in (double / "proxies").glob("*.hdr")} == names
    assert {p.stem for p in (double / "synth").glob("*.hdr")} == {f"{n}_g0" for n in names}
    assert set(json.loads((double / "warp.json").read_text())) == {f"{n}_g0" for n in names}
    for stage, items in (("proxy", names), ("generate", names), ("warp", {f"{n}_g0" for n in names}),
                         ("restore", names)):  # the ranks' own account of what each handled
        handled = [n for rank in (0, 1) for line in re.findall(
            rf"\[rank {rank}/2\] INFO: {stage}: rank {rank} of 2 handles (.*)", done.stderr)
            for n in line.split(", ")]
        assert sorted(handled) == sorted(items), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["processes"] == 2 and set(report["timings_s"]) == {"proxy", "generate", "warp", "finetune",
                                                                      "restore"}
    two, config2 = load_checkpoint(double / "checkpoint")
    one, config1 = load_checkpoint(single / "checkpoint")
    assert config1 == config2
    assert {k: v.shape for k, v in two.state_dict().items()} == {k: v.shape for k, v in one.state_dict().items()}
    assert read_provenance(double / "checkpoint")["processes"] == 2
    assert not list(double.glob("finetune_state*")) and not list(double.rglob("*.tmp*"))
    assert io.load(double / "restored" / "scene2.hdr").shape == (32, 32, BANDS)
