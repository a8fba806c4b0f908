"""Issue 14's rough edges, each checked on the widgets: options this machine cannot run are
greyed out with the reason, settings are remembered, the variable picker shows shapes,
clean references stay out of Open recent, typed-in wavelengths are said where they stay,
and the export says where things went (and never writes private or blank files)."""
from __future__ import annotations

import stat

import numpy as np
import pytest
import scipy.io

from hiralign.cube import Cube

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]


def _window(qtbot, prefs_path):
    from app.main_window import MainWindow
    from app.settings import Preferences

    win = MainWindow(Preferences.at(prefs_path))
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    return win


@pytest.fixture
def window(qtbot, tmp_path):
    win = _window(qtbot, tmp_path / "prefs.ini")
    yield win
    win.close()


def _enabled(box, text: str) -> bool:
    return box.model().item(box.findText(text)).isEnabled()


def test_generators_and_devices_this_machine_cannot_run_are_greyed_out_with_the_reason(qtbot, window):
    import torch

    from app.analysis import availability
    from hiralign.generate.unclip_weights import weights_available

    panel = window.pipeline
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)  # the availability check
    if not weights_available():
        assert not _enabled(panel.generator_box, "unclip")
        tip = panel.generator_box.itemData(panel.generator_box.findText("unclip"), 3)  # ToolTipRole
        assert tip.startswith("Not available on this machine") and "--model" not in tip
    assert _enabled(panel.generator_box, "patchnn")
    assert _enabled(panel.device_box, "cuda") == torch.cuda.is_available()
    # a made-up machine without a GPU, where cuda was saved last time
    panel._saved_device = "cuda"
    panel.device_box.setCurrentText("cuda")
    panel.set_availability({**availability(), "cuda": False})
    assert panel.device_box.currentText() == "auto" and window.prefs.device == "auto"
    assert not _enabled(panel.device_box, "cuda")
    qtbot.waitUntil(lambda: any("saved device cuda" in m for m in window.messages.messages()), timeout=5000)


def test_pipeline_settings_are_remembered_but_the_demo_budget_is_not(qtbot, tmp_path):
    from app.panels.pipeline_panel import DEMO_BUDGET
    from hiralign.config import AdaptConfig, field_default

    prefs = tmp_path / "prefs.ini"
    first = _window(qtbot, prefs)
    panel = first.pipeline
    panel.task_box.setCurrentText("complex")
    panel.ratio_spin.setValue(2.5)
    panel.seed_spin.setValue(7)
    panel.mode_box.setCurrentText("proxy-only")
    panel.apply_demo(type("Demo", (), {"task": "complex"})())  # the demo's budget: not the user's choice
    first.close()
    second = _window(qtbot, prefs)
    panel = second.pipeline
    assert (panel.task_box.currentText(), panel.ratio_spin.value(), panel.seed_spin.value(),
            panel.mode_box.currentText()) == ("complex", 2.5, 7, "proxy-only")
    assert panel.guides_spin.value() == field_default(AdaptConfig, "guides") != DEMO_BUDGET["guides"]
    panel.steps_spin.setValue(222)  # the user's own budget is kept
    second.close()
    third = _window(qtbot, prefs)
    assert third.pipeline.steps_spin.value() == 222
    third.close()


def test_the_variable_picker_lists_shapes_and_clean_references_stay_out_of_recent(qtbot, window, tmp_path, rng):
    from app.opener import candidate_label
    from hiralign import io

    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"first": rng.random((8, 9, 31)), "second": rng.random((12, 13, 31)),
                            "wavelengths": np.arange(400, 701, 10.0)})
    offered = []
    window.opener.ask_variable = lambda _p, names: offered.append(dict(names)) or "second"
    window.open_paths([path])
    qtbot.waitUntil(lambda: len(window.session.targets) == 1 and not window.jobs.busy, timeout=30000)
    assert offered == [{"first": (8, 9, 31), "second": (12, 13, 31)}]
    assert candidate_label("second", (12, 13, 31)) == "second  (12×13×31)"

    clean = io.save(Cube(rng.random((12, 13, 31), dtype=np.float32), wavelengths=np.arange(400, 701, 10.0)),
                    tmp_path / "clean.hdr")
    window.attach_clean(0, clean)
    qtbot.waitUntil(lambda: window.session.targets[0].clean is not None, timeout=30000)
    assert window.prefs.recent_files == [str(path.resolve())]


def test_typed_in_wavelengths_are_said_in_the_messages_dock(qtbot, window, tmp_path, rng):
    path = tmp_path / "raw.npy"
    np.save(path, rng.random((10, 12, 31), dtype=np.float32))
    window.opener.ask_wavelengths = lambda _p, _bands, default: default  # the pre-filled 400:700:10, accepted
    window.open_paths([path])
    qtbot.waitUntil(lambda: len(window.session.targets) == 1, timeout=30000)
    qtbot.waitUntil(lambda: any("no wavelengths; using 400–700 nm (31 bands) as entered" in m
                                for m in window.messages.messages()), timeout=5000)


def test_the_checkpoint_export_asks_before_replacing_and_writes_shareable_files(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from app.export import export_checkpoint

    source = tmp_path / "bundle"
    source.mkdir()
    for name in ("config.json", "model.safetensors"):
        (source / name).write_text("{}")
        (source / name).chmod(0o600)  # as the atomic writer leaves them
    out = export_checkpoint(source, tmp_path / "exported")
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044 for p in out.iterdir())

    window.session.adapted_checkpoint = source
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    asked = []
    window.exporter.confirm = lambda question: asked.append(question) or False
    (tmp_path / f"hiralign-adapted-{window.session.task}").mkdir()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)  # the start-up availability check
    window.exporter.checkpoint_dialog()
    assert asked and "Replace" in asked[0] and not window.jobs.busy  # refused: nothing written
    window.exporter.confirm = lambda question: True
    window.exporter.checkpoint_dialog()
    qtbot.waitUntil(lambda: any("adapted checkpoint bundle written to" in m for m in window.messages.messages()),
                    timeout=10000)


def test_an_exported_run_config_says_what_it_cannot_carry(qtbot, window, tmp_path, rng):
    from app.run_config import export_run_config
    from hiralign import io

    for k, (start, clean) in enumerate(((400, True), (410, False))):
        cube = Cube(rng.random((16, 16, 31), dtype=np.float32), wavelengths=np.arange(start, start + 301, 10.0))
        path = io.save(cube, tmp_path / f"t{k}.hdr")
        window.session.add_target(io.load(path), path, clean=cube if clean else None,
                                  clean_path=path if clean else None)
    export_run_config(window.session, window.pipeline.config(), tmp_path / "export", "run", launcher="none")
    qtbot.waitUntil(lambda: sum("launch.sh:" in m for m in window.messages.messages()) == 2, timeout=5000)
    messages = [m for m in window.messages.messages() if "launch.sh:" in m]
    assert "1 of 2 targets have a clean reference" in messages[0] and "different wavelengths" in messages[1]


def test_the_proxy_source_is_a_setting_of_the_panel_read_from_its_dataclass(qtbot, window, tmp_path):
    from app.analysis import availability
    from app.panels.pipeline_panel import DEMO_BUDGET
    from hiralign.config import field_help
    from hiralign.ensemble import PROXY_SOURCES, ProxyConfig

    panel = window.pipeline
    assert [panel.proxy_box.itemText(i) for i in range(panel.proxy_box.count())] == list(PROXY_SOURCES)
    assert panel.config().proxy == ProxyConfig()  # the CLI's default: auto
    assert panel.proxy_box.toolTip().startswith(field_help(ProxyConfig, "source"))
    assert "Here, for gaussian:" in panel.proxy_box.toolTip()
    panel.proxy_box.setCurrentText("blend")
    panel.proxy_config = ProxyConfig(blend_weight=0.4)  # as the Settings… dialog returns it
    assert panel.config().proxy == ProxyConfig(source="blend", blend_weight=0.4)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)
    panel.set_availability({**availability(), "bm4d": False})
    assert not _enabled(panel.proxy_box, "bm4d")
    assert all(_enabled(panel.proxy_box, s) for s in ("blend", "subspace", "ensemble"))
    panel.set_availability({**availability(), "bm4d": True, "bm3d": False})
    assert not _enabled(panel.proxy_box, "subspace-bm3d") and _enabled(panel.proxy_box, "bm4d")
    panel.set_availability({**availability(), "bm3d": True})
    assert _enabled(panel.proxy_box, "subspace-bm3d")
    # launch.sh carries it: the exported command line parses back to the same proxy settings
    from hiralign.cli import build_parser
    from hiralign.commands.adapt import adapt_config
    from hiralign.launch import adapt_arguments

    arguments = adapt_arguments(panel.config(), ["t.hdr"], tmp_path / "run")
    assert adapt_config(build_parser().parse_args(arguments)).proxy == panel.config().proxy
    panel.apply_demo(type("Demo", (), {"task": "gaussian"})())
    assert panel.config().proxy.source == DEMO_BUDGET["proxy"] == "ensemble"  # the source model's own proxies
    assert "ensemble" in panel.budget_note.text() and "Training tab" in panel.budget_note.toolTip()


def test_the_consistency_is_a_checkbox_shown_for_noise_free_tasks_only_and_exported(qtbot, window, tmp_path,
                                                                                      monkeypatch):
    from hiralign.cli import build_parser
    from hiralign.commands.adapt import adapt_config
    from hiralign.config import AdaptConfig, field_help
    from hiralign.launch import adapt_arguments

    panel = window.pipeline
    for task, shown in (("gaussian", False), ("deblur", False), ("inpaint", True), ("bandmiss", True)):
        panel.task_box.setCurrentText(task)
        assert panel.consistency_check.isHidden() is not shown, task
    panel.task_box.setCurrentText("inpaint")  # completed without a network, by a shipped model's run
    panel.proxy_box.setCurrentText("auto")
    assert panel.proxy_box.toolTip().endswith("for inpaint: interpolate")
    assert panel.model_box.currentText() == "shipped: inpaint"
    panel.task_box.setCurrentText("sr4")
    assert not panel.consistency_check.isHidden() and panel.consistency_check.isChecked()
    assert panel.config().consistency and panel.consistency_check.toolTip().startswith(
        field_help(AdaptConfig, "consistency")[:40])
    panel.consistency_check.setChecked(False)
    assert not panel.config().consistency
    arguments = adapt_arguments(panel.config(), ["t.hdr"], tmp_path / "run")
    assert "--no-consistency" in arguments and not adapt_config(build_parser().parse_args(arguments)).consistency
    # new captures: unticked turns the checkpoint's projection off, ticked keeps its recorded recipe
    import hiralign.restoration

    asked: list = []
    monkeypatch.setattr(hiralign.restoration, "restore_files", lambda *a, **k: asked.append(k["consistency"]) or {})
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)
    window.exporter.restore_new(tmp_path / "ckpt", [tmp_path / "new.hdr"], tmp_path / "out")
    qtbot.waitUntil(lambda: len(asked) == 1 and not window.jobs.busy, timeout=30000)
    panel.consistency_check.setChecked(True)
    window.exporter.restore_new(tmp_path / "ckpt", [tmp_path / "new.hdr"], tmp_path / "out")
    qtbot.waitUntil(lambda: len(asked) == 2 and not window.jobs.busy, timeout=30000)
    assert asked == [False, None]
    panel.task_box.setCurrentText("gaussian")


def test_new_captures_are_restored_with_the_adapted_models_recipe(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from hiralign import io
    from hiralign.classical import subspace_denoise
    from hiralign.config import AdaptConfig
    from hiralign.models.checkpoint import CheckpointConfig, save_checkpoint
    from hiralign.models.compact import compact

    wavelengths = np.arange(400, 701, 10.0)
    checkpoint = save_checkpoint(compact(31, features=4, depth=2), tmp_path / "ckpt",
                                 CheckpointConfig(arch="compact", task="gaussian", bands=31,
                                                  wavelengths=tuple(wavelengths), args={"features": 4, "depth": 2}),
                                 {"kind": "hiralign-adapted", "settings": AdaptConfig(task="gaussian").to_dict()})
    rng = np.random.default_rng(0)
    capture = Cube((0.5 + 0.1 * rng.standard_normal((24, 24, 31))).astype(np.float32), wavelengths=wavelengths,
                   name="new")
    good = io.save(capture, tmp_path / "new.hdr")
    broken = tmp_path / "broken.hdr"
    broken.write_text("garbage\n", encoding="utf-8")
    window.session.adapted_checkpoint = checkpoint
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)
    out = tmp_path / "restored"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(good), str(broken)], ""))
    window.exporter.restore_dialog()  # one bad file: refused, nothing written, the window stays usable
    qtbot.waitUntil(lambda: any("broken.hdr" in summary for summary, _ in window.errors.history), timeout=30000)
    assert not list(out.iterdir())
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(good)], ""))
    window.exporter.restore_dialog()
    qtbot.waitUntil(lambda: any("1 new capture(s) restored" in m for m in window.messages.messages()), timeout=30000)
    np.testing.assert_allclose(io.load(out / "new.hdr").data, subspace_denoise(capture).data, atol=1e-6)
    asked = []
    window.exporter.confirm = lambda question: asked.append(question) or False
    window.exporter.restore_dialog()
    assert asked and "Replace" in asked[0] and not window.jobs.busy
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))  # the captures' own
    window.exporter.restore_dialog()
    qtbot.waitUntil(lambda: any("would overwrite them" in summary for summary, _ in window.errors.history),
                    timeout=5000)
    assert len(asked) == 1 and not window.jobs.busy
