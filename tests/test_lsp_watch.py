"""The file watcher sees in-place writes and atomic saves (temp file + rename), natively
and by polling, and ignores other files in the same folder."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from etviz_lsp.lsp.watch import FileWatcher


class Seen:
    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.event = threading.Event()

    def __call__(self, path: Path) -> None:
        self.paths.append(path)
        self.event.set()

    def wait(self, seconds: float = 5.0) -> bool:
        hit = self.event.wait(seconds)
        self.event.clear()
        return hit


@pytest.fixture(params=[None, 0.1], ids=["native", "polling"])
def poll_interval(request: pytest.FixtureRequest) -> float | None:
    return request.param


def test_atomic_save_and_in_place_write_are_seen(tmp_path: Path, poll_interval) -> None:
    target = tmp_path / "export.py"
    target.write_text("a = 1\n")
    seen = Seen()
    watcher = FileWatcher(seen, poll_interval=poll_interval)
    try:
        watcher.watch(target)
        time.sleep(0.3)
        temp = tmp_path / ".export.py.tmp"
        temp.write_text("a = 2\n")
        os.replace(temp, target)
        assert seen.wait(), "atomic save not seen"
        assert set(seen.paths) == {target.resolve()}
        time.sleep(0.3)
        seen.paths.clear()
        target.write_text("a = 33\n")
        assert seen.wait(), "in-place write not seen"
        assert set(seen.paths) == {target.resolve()}
    finally:
        watcher.close()


def test_other_files_and_unwatched_files_are_ignored(tmp_path: Path) -> None:
    target = tmp_path / "model.pt2"
    target.write_bytes(b"x")
    seen = Seen()
    watcher = FileWatcher(seen)
    try:
        watcher.watch(target)
        (tmp_path / "other.txt").write_text("noise")
        assert not seen.wait(0.5)
        watcher.unwatch(target)
        target.write_bytes(b"y")
        assert not seen.wait(0.5)
        assert seen.paths == []
    finally:
        watcher.close()
