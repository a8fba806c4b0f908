"""File ▸ Export ▸ run config: the clicked-together run becomes a launch.sh for a cluster."""
from __future__ import annotations

import shlex

import numpy as np
import pytest

from hiralign.cube import Cube

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]


@pytest.fixture
def window(qtbot, tmp_path):
    from app.main_window import MainWindow
    from app.settings import Preferences

    win = MainWindow(Preferences.at(tmp_path / "prefs.ini"))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def test_demo_run_exports_a_launch_script_the_cli_accepts(qtbot, window, tmp_path):
    from app.demo import DEMO_DIR
    from app.run_config import export_run_config
    from hiralign.cli import build_parser
    from hiralign.commands.adapt import build
    from hiralign.warp import WarpConfig

    window.open_demo()
    qtbot.waitUntil(lambda: len(window.session.targets) == 4 and not window.jobs.busy, timeout=30000)
    window.pipeline.warp_config = WarpConfig(iterations=50, stencil=5)
    window.pipeline.steps_spin.setValue(222)
    # hiralign.launch writes no --proxy-source yet, so the export refuses the demo's ensemble proxies
    # (test_the_proxy_source_is_a_setting_of_the_panel_read_from_its_dataclass); the CLI default it carries
    window.pipeline.proxy_box.setCurrentText("auto")
    config = window.pipeline.config()

    script = export_run_config(window.session, config, tmp_path / "export", "run-a", "torchrun", 3)

    argv = shlex.split(script.read_text().strip().splitlines()[-1])
    assert argv[:4] == ["torchrun", "--standalone", "--nproc_per_node", "3"]
    args = build_parser().parse_args(argv[argv.index("hiralign") + 1:])
    rebuilt = build(args).config
    assert rebuilt == config
    assert rebuilt.finetune.steps == 222 and rebuilt.guides == window.pipeline.guides_spin.value()
    assert rebuilt.warp == WarpConfig(iterations=50, stencil=5)
    assert [p for p in args.target] == [str(t.path) for t in window.session.targets]
    assert all(str(DEMO_DIR) in p for p in args.clean) and len(args.clean) == 4
    assert (tmp_path / "export" / "adapt_settings.json").exists()
    assert window.errors.history == []


def test_export_refuses_targets_without_files_with_one_message(qtbot, window, tmp_path):
    from app.run_config import export_run_config
    from hiralign.errors import ConfigError

    with pytest.raises(ConfigError, match="no target cubes"):
        export_run_config(window.session, window.pipeline.config(), tmp_path, "run")
    window.session.add_target(Cube(np.zeros((8, 8, 31), np.float32), np.linspace(400, 700, 31), name="made"))
    with pytest.raises(ConfigError, match="made: not loaded from a file"):
        export_run_config(window.session, window.pipeline.config(), tmp_path, "run")
    window.exporter.now(lambda: export_run_config(window.session, window.pipeline.config(), tmp_path, "run"))
    qtbot.waitUntil(lambda: len(window.errors.history) == 1, timeout=5000)
    assert "made: not loaded from a file" in window.errors.history[0][0]
    assert not (tmp_path / "launch.sh").exists()
