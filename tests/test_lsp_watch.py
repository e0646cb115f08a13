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


def test_imported_files_are_watched_one_by_one_bounded_and_only_in_the_workspace(
    tmp_path: Path,
) -> None:
    """What a run imported: workspace files only (a library elsewhere is not watched), at
    most MAX_FILES, each file on its own (never the whole tree); a later run that no longer
    imports a file stops watching it; a real rewrite of an imported file is seen."""
    from etviz_lsp.lsp.imported_files import MAX_FILES, ImportedFiles

    workspace, elsewhere = tmp_path / "ws", tmp_path / "site-packages"
    (workspace / "pkg").mkdir(parents=True)
    elsewhere.mkdir()
    script, model = workspace / "export.py", workspace / "pkg" / "model.py"
    many = [workspace / "pkg" / f"m{i}.py" for i in range(MAX_FILES + 50)]
    for path in (script, model, *many, elsewhere / "lib.py"):
        path.write_text("x = 1\n")
    seen = Seen()
    watcher = FileWatcher(seen)
    imported = ImportedFiles(watcher, lambda path: path == script)
    imported.watch(True)
    watcher.watch(script)  # the visualized file itself (the visualizer watches it)
    try:
        imported.update(script, [script, model, elsewhere / "lib.py"], [workspace])
        assert watcher.watched() == {script, model}
        assert imported.sources_using(model) == [script]
        assert imported.sources_using(elsewhere / "lib.py") == []
        model.write_text("x = 2\n")
        assert seen.wait() and model in seen.paths

        imported.update(script, [script, *many], [workspace])
        assert len(watcher.watched()) == MAX_FILES + 1  # the bound, plus the script
        assert model not in watcher.watched()  # no longer imported: no longer watched
        assert script in watcher.watched()  # still visualized: stays watched

        imported.watch(False)  # auto-refresh off
        assert watcher.watched() == {script}
    finally:
        watcher.close()
