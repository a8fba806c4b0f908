"""Failed writes (disk full, permission denied, folder removed) keep the previous output, leave
no temporary and raise one error naming the path and the reason; a run resumes afterwards.

Three ways of failing: errors injected in-process (fast, every saver, every stage of the
write), the kernel refusing writes past ``RLIMIT_FSIZE`` (real partial writes through each
library, in a subprocess), and a really full 4 MiB tmpfs (in a private mount namespace,
where the machine allows it).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from bad_inputs import tiny_adapt_args, tiny_adapt_inputs

from hiralign import cli
from hiralign.atomic import TEMP_NAME, OutputError
from hiralign.errors import HiralignError

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------ the savers
def _cube(big: bool, seed: int = 0):
    from hiralign.cube import Cube

    side = 64 if big else 8
    data = np.random.default_rng(seed).random((side, side, 8)).astype(np.float32)
    return Cube(data, wavelengths=np.linspace(450, 660, 8), name="c")


def _save_cube(suffix: str) -> Callable[[Path, bool], Path]:
    def save(folder: Path, big: bool) -> Path:
        from hiralign import io

        return io.save(_cube(big), folder / f"cube{suffix}")

    return save


def _save_guide(bits: int) -> Callable[[Path, bool], Path]:
    def save(folder: Path, big: bool) -> Path:
        from hiralign import io

        side = 160 if big else 8
        rgb = np.random.default_rng(1).random((side, side, 3)).astype(np.float32)
        return io.save_rgb(rgb, folder / f"guide{bits}.png", bits=bits)

    return save


def _model(big: bool):
    import torch

    from hiralign.models import build_model

    torch.manual_seed(0)
    return build_model("compact", bands=8, features=48 if big else 8, depth=4 if big else 2)


def _save_checkpoint(folder: Path, big: bool) -> Path:
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint

    args = {"features": 48, "depth": 4} if big else {"features": 8, "depth": 2}
    return save_checkpoint(_model(big), folder / "checkpoint",
                           CheckpointConfig(arch="compact", task="gaussian", bands=8, args=args), {"kind": "test"})


def _save_json(folder: Path, big: bool) -> Path:
    from hiralign.atomic import write_json

    write_json(folder / "report.json", {"values": list(range(40000 if big else 3))})
    return folder / "report.json"


def _save_train_state(folder: Path, big: bool) -> Path:
    import torch

    from hiralign.patches import CubeSampler
    from hiralign.train import TrainConfig, train

    torch.set_num_threads(1)
    path = folder / "finetune_state.pt"
    train(_model(big), CubeSampler([_cube(False)]), TrainConfig(task="gaussian", steps=1, batch_size=1, patch_size=8),
          state_path=path, resume=False, device="cpu")
    return path


#: name → saver(folder, big) writing one output of each kind hiralign writes.
SAVERS: dict[str, Callable[[Path, bool], Path]] = {
    "cube-envi": _save_cube(".hdr"), "cube-npy": _save_cube(".npy"), "cube-mat": _save_cube(".mat"),
    "cube-tif": _save_cube(".tif"), "guide-png16": _save_guide(16), "rgb-png8": _save_guide(8),
    "checkpoint": _save_checkpoint, "json": _save_json, "train-state": _save_train_state,
}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (temporaries included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def temporaries(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if TEMP_NAME.match(p.name) or p.name.endswith(".old")]


# ------------------------------------------------------------------------- injected failures
def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_writer(original: Callable) -> Callable:
    """``original`` replaced by one that writes a few bytes to its temporary and runs out of space."""

    def write(*args, **kwargs):
        for arg in args:
            if isinstance(arg, (str, os.PathLike)) and any(TEMP_NAME.match(part) for part in Path(arg).parts):
                Path(arg).parent.mkdir(parents=True, exist_ok=True)
                with open(arg, "wb") as fh:
                    fh.write(b"half a file")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(arg))
            name = getattr(arg, "name", None)  # an open file of a temporary (torch.save writes to one)
            if hasattr(arg, "write") and isinstance(name, str) and TEMP_NAME.match(Path(name).name):
                arg.write(b"half a file")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        return original(*args, **kwargs)

    return write


# The function that puts the bytes of each output on disk, made to fail after writing some.
_LIBRARY_WRITERS = {
    "cube-npy": ("numpy", "save"), "cube-mat": ("scipy.io", "savemat"), "cube-tif": ("tifffile", "imwrite"),
    "cube-envi": ("spectral.io.envi", "write_envi_header"),
    "guide-png16": ("pathlib", "Path.write_bytes"), "rgb-png8": ("pathlib", "Path.write_bytes"),
    "checkpoint": ("safetensors.torch", "save_file"), "json": ("pathlib", "Path.write_text"),
    "train-state": ("torch", "save"),
}


def _inject(monkeypatch: pytest.MonkeyPatch, how: str, saver: str) -> None:
    import importlib

    if how == "fsync-enospc":  # a delayed-allocation filesystem reports the full disk only at fsync
        monkeypatch.setattr(os, "fsync", _enospc)
    elif how == "rename-eacces":
        def refuse(*_args, **_kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

        monkeypatch.setattr(os, "replace", refuse)
    elif how == "midwrite-enospc":
        module_name, attr = _LIBRARY_WRITERS[saver]
        owner = importlib.import_module(module_name)
        if "." in attr:
            cls_name, attr = attr.split(".")
            owner = getattr(owner, cls_name)
        monkeypatch.setattr(owner, attr, _half_writer(getattr(owner, attr)))


INJECTIONS = [(how, saver) for how in ("fsync-enospc", "rename-eacces", "midwrite-enospc") for saver in SAVERS
              if how != "midwrite-enospc" or saver in _LIBRARY_WRITERS]
# Known holes, strict: each turns into a failure ("XPASS") once fixed, so the marker goes too.
KNOWN_HOLES: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("how, saver", [
    pytest.param(h, s, id=f"{h}-{s}", marks=[pytest.mark.xfail(strict=True, reason=KNOWN_HOLES[h, s])]
                 if (h, s) in KNOWN_HOLES else []) for h, s in INJECTIONS])
def test_a_failed_save_keeps_the_previous_output_and_names_path_and_reason(tmp_path, monkeypatch, one_thread,
                                                                         how, saver) -> None:
    save = SAVERS[saver]
    target = save(tmp_path, False)
    before = snapshot(tmp_path)
    with monkeypatch.context() as patch:
        _inject(patch, how, saver)
        with pytest.raises(HiralignError) as failed:
            save(tmp_path, True)
    reason = "Permission denied" if how == "rename-eacces" else "No space left on device"
    message = str(failed.value)
    assert message.count("\n") == 0 and reason in message and "cannot write" in message, message
    assert str(target if saver != "cube-envi" else tmp_path / "cube") in message
    assert snapshot(tmp_path) == before, temporaries(tmp_path)  # previous output intact, no temporary
    save(tmp_path, True)  # space freed: the same save now succeeds
    assert snapshot(tmp_path) != before and not temporaries(tmp_path)


@pytest.mark.parametrize("saver", ["cube-envi", "json", "checkpoint"])
def test_a_folder_removed_while_writing_is_reported_not_crashed(tmp_path, monkeypatch, saver) -> None:
    real_replace = os.replace
    out = tmp_path / "out"

    def vanish_then_replace(src, dst):
        shutil.rmtree(Path(dst).parent, ignore_errors=True)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", vanish_then_replace)
    with pytest.raises(HiralignError, match="was removed while writing"):
        SAVERS[saver](out, False)


def test_opaque_library_errors_are_recognised_by_their_errno(tmp_path) -> None:
    from hiralign.atomic import atomic_path

    for raised, reason in ((RuntimeError("Error while serializing: I/O error: File too large (os error 27)"),
                            "File too large"),
                           (RuntimeError("unable to extend file properly, errno = 28, error message = 'x'"),
                            "No space left on device")):
        with pytest.raises(OutputError, match=reason):
            with atomic_path(tmp_path / "x.bin") as tmp:
                tmp.write_bytes(b"1")
                raise raised
    with pytest.raises(RuntimeError, match="a bug"):  # not a write failure: passes through unchanged
        with atomic_path(tmp_path / "x.bin"):
            raise RuntimeError("a bug")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------- real failing filesystems
PROBE = """
import json, os, resource, shutil, signal, sys
from pathlib import Path
sys.path.insert(0, {here!r})
import torch
torch.set_num_threads(1)
from test_failed_writes import SAVERS, snapshot, temporaries
folder, mode = Path(sys.argv[1]), sys.argv[2]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past RLIMIT_FSIZE, write() fails with EFBIG
results = {{}}
for name, save in SAVERS.items():
    work = folder / name
    work.mkdir()
    save(work, False)
    before = snapshot(work)
    filler = folder / "filler"
    if mode == "fsize":
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))
    else:  # fill the disk, leaving 8 KiB
        with open(filler, "wb") as fh:
            fh.write(b"\\0" * max(0, shutil.disk_usage(folder).free - 8192))
    try:
        save(work, True)
        outcome = {{"error": None}}
    except BaseException as exc:
        outcome = {{"error": type(exc).__name__, "message": str(exc),
                    "hiralign": exc.__class__.__module__.startswith("hiralign")}}
    finally:
        if mode == "fsize":
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        filler.unlink(missing_ok=True)
    outcome["intact"] = snapshot(work) == before
    outcome["temporaries"] = temporaries(work)
    save(work, True)  # space freed: the save goes through
    outcome["after"] = snapshot(work) != before and not temporaries(work)
    results[name] = outcome
    shutil.rmtree(work)
print(json.dumps(results))
"""


def _probe(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        pytest.fail(f"probe failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fsize_results(tmp_path_factory) -> dict:
    if not hasattr(os, "setrlimit") and sys.platform == "win32":
        pytest.skip("RLIMIT_FSIZE is POSIX")
    folder = tmp_path_factory.mktemp("fsize")
    return _probe([sys.executable, "-c", PROBE.format(here=str(HERE)), str(folder), "fsize"])


@pytest.fixture(scope="module")
def full_disk_results(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("tmpfs")
    unshare = shutil.which("unshare")
    if sys.platform != "linux" or unshare is None or os.geteuid() != 0:
        pytest.skip("a small tmpfs needs root and unshare (Linux)")
    trial = subprocess.run([unshare, "-m", "sh", "-c", f"mount -t tmpfs -o size=4m none '{folder}'"],
                           capture_output=True, text=True)
    if trial.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {trial.stderr.strip()}")
    script = PROBE.format(here=str(HERE))
    return _probe([unshare, "-m", "sh", "-c", 'mount -t tmpfs -o size=4m none "$1" && exec "$2" -c "$3" "$1" full',
                   "sh", str(folder), sys.executable, script])


def _check_real_failure(outcome: dict, reasons: tuple[str, ...]) -> None:
    assert outcome["error"] is not None, "the write did not fail: the probe's limit is too generous"
    assert outcome["hiralign"], f"{outcome['error']}: {outcome['message']}"
    assert any(r in outcome["message"] for r in reasons) and "cannot write" in outcome["message"], outcome
    assert outcome["intact"] and not outcome["temporaries"], outcome
    assert outcome["after"], outcome


@pytest.mark.slow
@pytest.mark.parametrize("saver", list(SAVERS))
def test_writes_cut_short_by_the_kernel_keep_the_previous_output(fsize_results, saver) -> None:
    # numpy and tifffile drop the errno of a short write: "only part of the data could be written"
    _check_real_failure(fsize_results[saver], ("File too large", "only part of the data could be written"))


@pytest.mark.slow
@pytest.mark.parametrize("saver", list(SAVERS))
def test_a_really_full_disk_keeps_the_previous_output(full_disk_results, saver) -> None:
    _check_real_failure(full_disk_results[saver], ("No space left on device",))


# ------------------------------------------------------------------------ a run, then a resume
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tiny")
    inputs = tiny_adapt_inputs(root)
    inputs["settings"] = root / "fast-warp.json"
    inputs["settings"].write_text(json.dumps({"warp": {"iterations": 3}}))
    return inputs


def _fail_when_writing(monkeypatch: pytest.MonkeyPatch, predicate: Callable[[Path], bool]) -> list[Path]:
    """Make os.replace onto a matching target fail with ENOSPC (the commit of an atomic write)."""
    real_replace, refused = os.replace, []

    def replace(src, dst, **kwargs):
        if predicate(Path(dst)):
            refused.append(Path(dst))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return refused


def _stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and p.name != ".hiralign.lock"}


@pytest.mark.slow
@pytest.mark.parametrize("predicate, redone", [
    (lambda p: p.parent.name == "guides" and p.name == "target2_g0.png", set()),
    # the failed warp's diagnostics were written before its cube: that warp is redone
    (lambda p: p.parent.name == "synth" and p.name == "target2_g0.img", {"synth/target2_g0.json"}),
    (lambda p: p.name == "checkpoint", set()),
    (lambda p: p.parent.name == "restored" and p.name == "target2.img", set()),
    (lambda p: p.name == "report.json", set()),
], ids=["guide", "synthesized-cube", "checkpoint", "restored-cube", "report"])
def test_adapt_stopped_by_a_full_disk_resumes_after_space_is_freed(tiny, tmp_path, monkeypatch, capsys, one_thread,
                                                                   predicate, redone) -> None:
    out = tmp_path / "run"
    args = tiny_adapt_args(tiny, out, steps=4, guides=1) + ["--config", str(tiny["settings"])]
    with monkeypatch.context() as patch:
        refused = _fail_when_writing(patch, predicate)
        code = cli.main(args)
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2 and refused, err
    # io.save names the file it was asked for (an ENVI cube by its header), the rest the file itself
    named = {str(refused[0]), str(refused[0].with_suffix(".hdr"))}
    assert any(last == f"hiralign adapt: error: {n}: cannot write: No space left on device" for n in named), err
    assert "Traceback" not in err
    assert not (out / "report.json").exists() and not temporaries(out)
    before = _stamps(out)
    assert before, "the earlier stages' outputs are kept"
    assert cli.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["resumed"] is True
    after = _stamps(out)
    # the training state is consumed once the checkpoint is written, warp.json summarises the warps
    # on every run; every other finished output stays as it was
    recomputed = {k for k, v in before.items() if after.get(k) != v and not k.startswith("finetune_state")}
    assert recomputed - {"warp.json"} == redone, "finished outputs were recomputed"
    if "finetune_state.pt" in before:  # stopped after training: the saved state is resumed, not retrained
        provenance = json.loads((out / "checkpoint" / "provenance.json").read_text())
        assert provenance["training"]["resumed_from"] == 4
    for name in ("proxies/target2.hdr", "guides/target2_g0.png", "synth/target2_g0.hdr", "checkpoint/config.json",
                 "restored/target2.hdr", "report.json"):
        assert (out / name).is_file(), name
    assert not temporaries(out)
