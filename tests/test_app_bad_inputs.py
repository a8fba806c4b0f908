"""The whole bad-input catalogue through the window: File ▸ Open, then the stages.

Every bad file must end in one dialog naming it (a user error, never "Internal error"),
leave the window usable (a good file opens afterwards) and keep what was opened before.
Dialogs are replaced so nothing blocks: the file dialogs return the bad path, message
boxes and prompts record what they were asked.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bad_inputs import BANDS, CATALOGUE, WAVELENGTHS, BadInput, tiny_adapt_inputs, tiny_scene
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from hiralign import io
from hiralign.cube import Cube

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    from app.main_window import MainWindow
    from app.settings import Preferences

    blocking: list[str] = []

    def refuse_to_block(name: str, answer):
        def record(*args, **_kwargs):
            blocking.append(f"{name}: {[a for a in args if isinstance(a, str)]}")
            return answer

        return record

    # Nothing may wait for a click: a static message box or prompt is recorded and dismissed.
    for name in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(refuse_to_block(f"QMessageBox.{name}",
                                                                            QMessageBox.StandardButton.Close)))
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(refuse_to_block("QInputDialog.getItem", ("", False))))
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(refuse_to_block("QInputDialog.getText", ("", False))))
    win = MainWindow(Preferences.at(tmp_path / "prefs.ini"))
    win.blocking = blocking
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.errors.close_all()
    win.close()


def _action(window, menu_title: str, text: str):
    """The QAction called ``text`` in the menu bar's ``menu_title`` menu (public UI, not attributes)."""
    for menu_action in window.menuBar().actions():
        if menu_action.text().replace("&", "") == menu_title:
            for action in menu_action.menu().actions():
                if action.text().replace("&", "") == text:
                    return action
    raise AssertionError(f"no {menu_title} ▸ {text} action")


def _file_open(qtbot, window, monkeypatch, path: Path) -> None:
    """File ▸ Open cubes… (or ▸ Open CAVE PNG folder… for a folder) answering the dialog with ``path``."""
    if path.is_dir():
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(path)))
        _action(window, "File", "Open CAVE PNG folder…").trigger()
    else:
        monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(path)], "")))
        _action(window, "File", "Open cubes…").trigger()
    qtbot.waitUntil(lambda: window.opener.pending == 0 and not window.jobs.busy, timeout=20000)
    qtbot.wait(20)  # queued dialogs and signals land


def _good_target(folder: Path, name: str = "good") -> tuple[Path, Cube]:
    cube = Cube(tiny_scene(5), wavelengths=WAVELENGTHS, name=name)
    return io.save(cube, folder / f"{name}.hdr"), cube


def _errors_since(window, count: int) -> list[str]:
    return [summary for summary, _details in window.errors.history[count:]]


@pytest.mark.parametrize("bad", CATALOGUE, ids=[b.id for b in CATALOGUE])
def test_file_open_of_a_bad_input_names_it_and_loses_nothing(qtbot, window, tmp_path, monkeypatch,
                                                           bad: BadInput) -> None:
    good_path, good = _good_target(tmp_path)
    _file_open(qtbot, window, monkeypatch, good_path)
    assert len(window.session.targets) == 1 and window.errors.history == []

    path = bad.make(tmp_path / "bad")
    asked: list[list[str]] = []
    window.opener.ask_variable = lambda _p, names: asked.append(sorted(names)) or None  # the user cancels
    _file_open(qtbot, window, monkeypatch, path)
    errors = _errors_since(window, 0)
    if bad.gui == "ask-variable":
        assert asked == [["first", "second"]] and errors == []
    else:
        assert len(errors) == 1, errors
        summary = errors[0]
        assert path.name in summary and bad.message in summary, summary
        assert not summary.startswith("Internal error") and "Traceback" not in summary
        assert window.errors.dialogs and window.errors.dialogs[0].text() == summary  # shown, not only logged
    assert window.blocking == []

    # nothing lost: the target opened before is still there, unchanged, and still current
    assert len(window.session.targets) == 1
    np.testing.assert_array_equal(window.session.targets[0].degraded.data, good.data)
    assert window.session.current == 0
    # still usable: the next good file opens
    window.errors.close_all()
    other_path, _ = _good_target(tmp_path, "other")
    _file_open(qtbot, window, monkeypatch, other_path)
    assert len(window.session.targets) == 2 and len(window.errors.history) == len(errors)


def test_a_wrong_wavelength_answer_is_refused_naming_the_file(qtbot, window, tmp_path, monkeypatch) -> None:
    path = tmp_path / "raw.npy"
    np.save(path, np.random.default_rng(0).random((6, 7, BANDS), dtype=np.float32))
    window.opener.ask_wavelengths = lambda _p, _bands, _default: "400:700:100"  # 4 values for 8 bands
    _file_open(qtbot, window, monkeypatch, path)
    errors = _errors_since(window, 0)
    assert len(errors) == 1 and "raw.npy" in errors[0] and not errors[0].startswith("Internal error")
    assert window.session.targets == []
    window.opener.ask_wavelengths = lambda _p, _bands, _default: "450:660:30"
    _file_open(qtbot, window, monkeypatch, path)
    assert len(window.session.targets) == 1


def test_a_bad_clean_reference_is_refused_and_the_target_kept(qtbot, window, tmp_path, monkeypatch) -> None:
    good_path, good = _good_target(tmp_path)
    _file_open(qtbot, window, monkeypatch, good_path)
    for bad in (CATALOGUE[0], next(b for b in CATALOGUE if b.id == "nan-inf")):
        path = bad.make(tmp_path / bad.id)
        before = len(window.errors.history)
        window.attach_clean(0, path)
        qtbot.waitUntil(lambda: window.opener.pending == 0 and not window.jobs.busy, timeout=20000)
        qtbot.wait(20)
        errors = _errors_since(window, before)
        assert len(errors) == 1 and path.name in errors[0] and bad.message in errors[0], errors
        assert window.session.targets[0].clean is None
    # a clean reference on other bands (4 instead of 8): refused naming it, target unchanged
    other = io.save(Cube(np.zeros((40, 40, 4), np.float32), wavelengths=[450, 500, 550, 600]), tmp_path / "c4.hdr")
    before = len(window.errors.history)
    window.attach_clean(0, other)
    qtbot.waitUntil(lambda: window.opener.pending == 0 and not window.jobs.busy, timeout=20000)
    qtbot.wait(20)
    errors = _errors_since(window, before)
    assert len(errors) == 1 and "c4.hdr" in errors[0] and "bands" in errors[0]
    assert window.session.targets[0].clean is None
    np.testing.assert_array_equal(window.session.targets[0].degraded.data, good.data)
    assert window.blocking == []


# ------------------------------------------------------------------------------ the stages
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    return tiny_adapt_inputs(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def staged(qtbot, window, tiny, tmp_path, monkeypatch, one_thread):
    """The window with the two tiny targets opened (File ▸ Open) and the tiny source model set."""
    window.runner.work_dir = tmp_path / "runs"
    for path in tiny["targets"]:
        _file_open(qtbot, window, monkeypatch, path)
    panel = window.pipeline
    panel.set_source_model(tiny["model"])
    panel.device_box.setCurrentText("cpu")
    panel.steps_spin.setValue(4)
    assert len(window.session.targets) == 2 and window.errors.history == []
    return window


def _click(qtbot, window, stage: str) -> str:
    """Click a stage's button; returns how the stage ended."""
    button = window.pipeline.buttons[stage]
    assert button.isEnabled(), button.toolTip()
    with qtbot.waitSignal(window.runner.stage_ended, timeout=120000) as ended:
        button.click()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=20000)
    qtbot.wait(20)
    return ended.args[1]


def _one_user_error(window, before: int) -> str:
    errors = _errors_since(window, before)
    assert len(errors) == 1, errors
    assert not errors[0].startswith("Internal error") and "Traceback" not in errors[0], errors[0]
    return errors[0]


def test_a_model_on_other_bands_fails_the_proxy_stage_and_keeps_the_proxies(qtbot, staged, tmp_path) -> None:
    window = staged
    assert _click(qtbot, window, "proxy") == "finished"
    proxies = [t.proxy.data.copy() for t in window.session.targets]
    wrong = tmp_path / "wrong"
    from hiralign.models import build_model
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint

    save_checkpoint(build_model("compact", bands=8, features=8, depth=2), wrong,
                    CheckpointConfig(arch="compact", task="gaussian", bands=8, wavelengths=np.linspace(900, 1000, 8),
                                     args={"features": 8, "depth": 2}))
    window.pipeline.set_source_model(wrong)
    before = len(window.errors.history)
    assert _click(qtbot, window, "proxy") == "failed"
    message = _one_user_error(window, before)
    assert "target1" in message and "900" in message, message  # names the target and the model's bands
    for target, old in zip(window.session.targets, proxies):
        np.testing.assert_array_equal(target.proxy.data, old)
    window.errors.close_all()
    window.pipeline.set_source_model(staged_model := Path(window.session.targets[0].path).parent / "source")
    assert staged_model.is_dir() and _click(qtbot, window, "proxy") == "finished"  # usable again


def test_a_nan_target_cannot_reach_a_stage(qtbot, staged) -> None:
    window = staged
    cube = Cube(tiny_scene(9), wavelengths=WAVELENGTHS, name="nan target")
    cube.data[3, 4, 2] = np.nan
    window.session.add_target(cube)  # e.g. a plug-in or a script adding it, not File ▸ Open (which refuses it)
    before = len(window.errors.history)
    ended = _click(qtbot, window, "proxy")
    errors = _errors_since(window, before)
    assert ended == "failed" and len(errors) == 1 and "nan target" in errors[0] and "NaN" in errors[0], errors
    assert not errors[0].startswith("Internal error")
    assert window.session.targets[2].proxy is None  # the good targets' proxies (done before it) are kept


def test_a_clean_reference_on_other_wavelengths_is_refused(qtbot, staged, tmp_path) -> None:
    window = staged
    shifted = io.save(Cube(tiny_scene(1), wavelengths=WAVELENGTHS + 300, name="shifted"), tmp_path / "shifted.hdr")
    before = len(window.errors.history)
    window.attach_clean(0, shifted)
    qtbot.waitUntil(lambda: window.opener.pending == 0 and not window.jobs.busy, timeout=20000)
    qtbot.wait(20)
    errors = _errors_since(window, before)
    assert len(errors) == 1 and "shifted.hdr" in errors[0] and "nm" in errors[0], errors
    assert window.session.targets[0].clean is None


def test_the_window_refuses_a_run_folder_another_process_writes(qtbot, staged) -> None:
    import json
    import subprocess
    import sys

    window = staged
    assert _click(qtbot, window, "proxy") == "finished"
    folder = window.runner.run_folder.root
    proxies = [t.proxy.data.copy() for t in window.session.targets]
    # while the window holds its folder, a CLI run on it is refused, naming the application
    probe = subprocess.run([sys.executable, "-c", "import sys; from hiralign.runfolder import RunFolder; "
                            "RunFolder(sys.argv[1]).claim({})", str(folder)], capture_output=True, text=True,
                           timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert probe.returncode != 0 and f"in use by process {__import__('os').getpid()}" in probe.stderr
    assert "hiralign desktop application" in probe.stderr
    # and the other way round: a process holding the folder makes the window's next stage fail, writing nothing
    window.runner.run_folder.release()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, json; from hiralign.runfolder import RunFolder; "
                               "r = RunFolder(sys.argv[1], owner='hiralign adapt'); "
                               "r.claim(json.loads(open(sys.argv[2]).read())); print('held', flush=True); "
                               "sys.stdin.read()", str(folder), str(folder / "config.json")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        files = sorted(p.name for p in folder.rglob("*"))
        before = len(window.errors.history)
        assert _click(qtbot, window, "generate") == "failed"
        message = _one_user_error(window, before)
        assert f"{folder} is in use by process {holder.pid} (hiralign adapt" in message, message
        assert sorted(p.name for p in folder.rglob("*")) == files
        for target, old in zip(window.session.targets, proxies):
            np.testing.assert_array_equal(target.proxy.data, old)
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    json.loads((folder / "config.json").read_text())


def test_a_clean_reference_of_another_size_stops_evaluate_naming_it(qtbot, staged, tmp_path) -> None:
    window = staged
    small = io.save(Cube(tiny_scene(1, side=20), wavelengths=WAVELENGTHS, name="small"), tmp_path / "small.hdr")
    window.attach_clean(0, small)
    qtbot.waitUntil(lambda: window.opener.pending == 0 and not window.jobs.busy, timeout=20000)
    qtbot.wait(20)
    before = len(window.errors.history)
    if window.session.targets[0].clean is None:  # refused when attached: that is fine too
        assert "small.hdr" in _one_user_error(window, 0)
        return
    window.pipeline.mode_box.setCurrentText("proxy-only")  # no guides needed: quick
    for stage in ("proxy", "finetune"):
        assert _click(qtbot, window, stage) == "finished", window.errors.history
    adapted = window.session.adapted_checkpoint
    assert _click(qtbot, window, "evaluate") == "failed"
    message = _one_user_error(window, before)
    assert "clean reference shape (20, 20, 8)" in message, message
    # nothing lost: the adapted model and the proxies stay, the clean reference stays attached
    assert window.session.adapted_checkpoint == adapted and all(t.proxy is not None for t in window.session.targets)
    assert window.session.targets[0].clean is not None
    assert "small.hdr" in message, message


def test_many_bad_files_at_once_each_named_and_no_traceback_in_the_window(qtbot, window, tmp_path, monkeypatch) -> None:
    paths = [bad.make(tmp_path / bad.id) for bad in CATALOGUE if bad.gui == "error"]
    window.open_paths(paths)  # e.g. a folder of broken files dropped on the window
    qtbot.waitUntil(lambda: window.opener.pending == 0 and not window.jobs.busy, timeout=60000)
    qtbot.wait(50)
    errors = _errors_since(window, 0)
    assert len(errors) == len(paths)
    # a few dialogs at most (an error storm must not bury the window); every file is named in
    # a dialog or in the Messages dock, and no traceback is shown outside "Show Details…"
    shown = [d.text() for d in window.errors.dialogs] + window.messages.messages()
    for path in paths:
        assert any(path.name in text for text in shown), path
    assert len(window.errors.dialogs) <= 3
    assert not [text for text in shown if "Traceback" in text]
    assert "Traceback" not in window.statusBar().currentMessage()
    assert window.session.targets == [] and window.blocking == []


def test_a_full_disk_in_a_stage_names_the_file_and_the_stage_reruns(qtbot, staged, monkeypatch) -> None:
    import errno
    import os

    window = staged
    real_replace = os.replace

    def full_for_target2(src, dst, **kwargs):
        if Path(dst).parent.name == "proxies" and Path(dst).name.startswith("target2"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", full_for_target2)
        assert _click(qtbot, window, "proxy") == "failed"
    message = _one_user_error(window, 0)
    assert "proxies/target2" in message and "cannot write: No space left on device" in message, message
    folder = window.runner.run_folder.root
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name]  # no partial file
    assert window.session.targets[0].proxy is not None and window.session.targets[1].proxy is None
    window.errors.close_all()
    assert _click(qtbot, window, "proxy") == "finished"  # space freed: the stage completes
    assert all(t.proxy is not None for t in window.session.targets)
