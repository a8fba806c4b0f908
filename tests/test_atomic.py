import os
import stat
from pathlib import Path

import pytest

from hiralign.atomic import atomic_dir, atomic_path, write_json


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_file_appears_complete_with_normal_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(mask)
    assert (tmp_path / "a.json").read_text().strip().startswith("{")
    assert _mode(tmp_path / "a.json") & 0o044  # readable by group/others like open() would give
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_atomic_dir_replaces_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    with atomic_dir(target) as tmp:
        (tmp / "f").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "f").write_text("2")
            raise RuntimeError("cancel")
    assert (target / "f").read_text() == "1"
    assert _mode(target) & 0o055
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
