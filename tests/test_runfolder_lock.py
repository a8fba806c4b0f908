"""One writer per run folder: the OS lock of RunFolder.claim, across processes, kills and resumes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bad_inputs import tiny_adapt_args, tiny_adapt_inputs

from hiralign import cli
from hiralign.errors import ConfigError
from hiralign.runfolder import LOCK_FILE, FolderInUseError, RunFolder

REPO = Path(__file__).resolve().parents[1]
RECORD = {"settings": {"task": "gaussian", "seed": 0}}
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# A second process that claims the folder and holds it until its stdin closes (or it is killed).
HOLDER = """
import json, sys
from hiralign.runfolder import RunFolder
run = RunFolder(sys.argv[1], owner="hiralign adapt")
run.claim(json.loads(sys.argv[2]), lock=sys.argv[3] == "lock")
print("held", flush=True)
sys.stdin.read()
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _hold(folder: Path, record: dict = RECORD, lock: bool = True) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), json.dumps(record), "lock" if lock else "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=REPO)
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read()
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def _claimable_elsewhere(folder: Path) -> bool:
    """Whether another process can claim ``folder`` right now (it claims and exits at once)."""
    probe = subprocess.run([sys.executable, "-c", HOLDER, str(folder), json.dumps(RECORD), "lock"],
                           input="", capture_output=True, text=True, env=_env(), cwd=REPO, timeout=60)
    assert probe.returncode == 0 or "is in use by process" in probe.stderr, probe.stderr
    return probe.returncode == 0


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_process_is_refused_with_the_holder_named_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    holder = _hold(folder)
    try:
        before = _tree(folder)
        with pytest.raises(FolderInUseError) as refused:
            RunFolder(folder).claim(RECORD)
        message = str(refused.value)
        assert f"run folder {folder} is in use by process {holder.pid} (hiralign adapt, started " in message
        assert "choose another --out" in message
        assert _tree(folder) == before  # the refused run wrote nothing, not even its own lock description
        with pytest.raises(FolderInUseError):  # a different run, too: the lock comes before the settings check
            RunFolder(folder).claim({"settings": {"task": "other"}})
        info = RunFolder(folder).holder()
        assert info["pid"] == holder.pid and info["command"] == "hiralign adapt" and info["host"]
    finally:
        _stop(holder)


def test_a_sigkilled_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    holder = _hold(folder)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    _stop(holder)
    run = RunFolder(folder)
    assert run.claim(RECORD) is True  # a resume of the killed run's folder
    assert run.locked and run.holder()["pid"] == os.getpid()
    run.release()


def test_the_lock_is_released_on_release_close_exit_and_garbage_collection(tmp_path: Path) -> None:
    folder = tmp_path / "run"

    def others_can_claim() -> bool:
        return _claimable_elsewhere(folder)

    run = RunFolder(folder)
    run.claim(RECORD)
    assert not others_can_claim()
    run.release()
    assert others_can_claim() and not run.locked
    with RunFolder(folder) as run:
        run.claim(RECORD)
        assert not others_can_claim()
    assert others_can_claim()
    run = RunFolder(folder)
    with run.lock():
        assert run.locked and not others_can_claim()
    assert not run.locked and others_can_claim()
    run = RunFolder(folder)
    run.claim(RECORD)
    del run  # the GUI or a test dropping its Adaptation gives the folder back
    assert others_can_claim()


def test_runfolders_of_one_process_share_the_lock(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    first, second = RunFolder(folder), RunFolder(folder)
    assert first.claim(RECORD) is False and second.claim(RECORD) is True
    first.release()
    assert second.locked and not _claimable_elsewhere(folder)  # still held for the second object
    second.release()
    assert _claimable_elsewhere(folder)


def test_processes_of_one_distributed_job_follow_their_main_process(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    main = RunFolder(folder)
    main.claim(RECORD)
    follower = _hold(folder, lock=False)  # rank > 0: claim(lock=False) checks the settings only
    _stop(follower)
    main.release()


def test_a_refused_claim_gives_the_lock_back(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    RunFolder(folder).claim(RECORD)
    other = RunFolder(folder)
    with pytest.raises(ConfigError, match="other settings"):
        other.claim({"settings": {"task": "other"}})
    assert not other.locked
    _stop(_hold(folder))
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ConfigError, match="not empty"):
        RunFolder(foreign).claim(RECORD)
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]  # no lock file left in someone's folder


def test_a_folder_holding_only_a_lock_file_is_a_fresh_run(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_FILE).write_text("garbage from a run killed before it wrote config.json")
    run = RunFolder(folder)
    assert run.claim(RECORD) is False and json.loads(run.config_file.read_text()) == RECORD
    assert run.holder()["pid"] == os.getpid()
    run.release()


def test_claiming_removes_the_temporaries_of_a_killed_writer(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with RunFolder(folder) as run:
        run.claim(RECORD)
    (folder / "proxies").mkdir()
    stale = [folder / "proxies" / ".target1.ab12cd34.tmp.img", folder / ".report.x1y2z3w4.tmp.json"]
    for path in stale:
        path.write_bytes(b"half")
    (folder / ".checkpoint.q9w8e7r6.tmp").mkdir()
    aside = folder / ".checkpoint.old"  # killed between the two renames of a checkpoint swap
    aside.mkdir()
    (aside / "config.json").write_text("{}")
    keep = folder / "proxies" / "target1.hdr"
    keep.write_text("ENVI")
    with RunFolder(folder) as run:
        assert run.claim(RECORD) is True
    assert not any(p.exists() for p in stale) and not (folder / ".checkpoint.q9w8e7r6.tmp").exists()
    assert (folder / "checkpoint" / "config.json").is_file() and not aside.exists()
    assert keep.read_text() == "ENVI"


@pytest.mark.slow
def test_two_cli_runs_started_together_one_is_refused_and_a_killed_run_resumes(tmp_path: Path, capsys) -> None:
    inputs = tiny_adapt_inputs(tmp_path / "inputs")
    out = tmp_path / "run"
    args = tiny_adapt_args(inputs, out, steps=150)
    procs = [subprocess.Popen([sys.executable, "-m", "hiralign", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO) for _ in range(2)]
    try:
        deadline = time.monotonic() + 120
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        loser = next(p for p in procs if p.poll() is not None)
        winner = next(p for p in procs if p is not loser)
        _, err = loser.communicate()
        assert loser.returncode == 2, err
        assert f"run folder {out} is in use by process {winner.pid} (hiralign adapt, started" in err
        assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("hiralign adapt: error:")
        assert winner.poll() is None  # still running: SIGKILL it mid-run
        winner.send_signal(signal.SIGKILL)
        winner.communicate(timeout=30)
    finally:
        for p in procs:
            _stop(p)
    assert (out / "config.json").is_file() and not (out / "report.json").exists()
    # the killed run left its lock file and maybe temporaries: the same command resumes and finishes
    assert cli.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["resumed"] is True and (out / "checkpoint" / "model.safetensors").is_file()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_a_filesystem_without_locks_runs_unprotected_with_a_warning(tmp_path, monkeypatch, caplog) -> None:
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with RunFolder(tmp_path / "run") as run:
        assert run.claim(RECORD) is False and run.locked
    assert "does not support locks" in caplog.text


def test_a_second_holder_in_the_same_process_leaves_live_temporaries_alone(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    writer = RunFolder(folder)
    writer.claim(RECORD)
    live = folder / ".report.a1b2c3d4.tmp.json"  # being written by the first holder's job
    live.write_text("{")
    with RunFolder(folder) as other:
        assert other.claim(RECORD) is True
    assert live.exists()
    writer.release()
