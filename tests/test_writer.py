"""Atomic writes: a failed write never leaves half a file or a temp behind."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from etviz_lsp.graph.core.writer import write_json_atomic


def test_writes_json_and_replaces_previous(tmp_path: Path) -> None:
    target = tmp_path / "g.json"
    target.write_text("old")
    size = write_json_atomic(target, {"label": "x", "graphs": []})
    assert json.loads(target.read_text()) == {"label": "x", "graphs": []}
    assert size == target.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


def test_failure_mid_write_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "g.json"
    target.write_text('{"label": "last good"}')
    with pytest.raises(TypeError):
        write_json_atomic(target, {"label": object()})  # not serializable: fails mid-way
    assert target.read_text() == '{"label": "last good"}'
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


def test_temps_of_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "g.json"
    abandoned = tmp_path / ".g.json.k1ll3d_x.tmp"  # what a SIGKILLed write leaves
    in_progress = tmp_path / ".g.json.wr1t1ng_.tmp"  # another write, still busy
    unrelated = tmp_path / ".notes.json.abcdefgh.tmp"
    for path in (abandoned, in_progress, unrelated):
        path.write_text("{")
    an_hour_ago = time.time() - 3600
    for path in (abandoned, unrelated):
        os.utime(path, (an_hour_ago, an_hour_ago))
    write_json_atomic(target, {"label": "x", "graphs": []})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [in_progress.name, unrelated.name, "g.json"]
    )
