"""Opening a file never runs its code: ``torch.export.load`` (which unpickles) only with the
user's opt-in for that run (``--allow-pickle``, ``etviz.allowPickle``), never because the
file was named on the command line or the workspace is trusted.

The crafted archive is a real one whose ``lin.bias`` weight is a pickle that creates a
marker file, and whose program claims schema version 99.0: the direct reader does not
know it, so only the unpickling fallback could open it.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch
from pygls.exceptions import JsonRpcException

from tests import corpus
from tests.conftest import PYTHON
from tests.lsp_session import lsp_session
from tests.test_pt2_archive import booby_trapped, rewrite, with_schema_version


@pytest.fixture(scope="module")
def mutation_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("safe-open") / "mutation_model.pt2"
    torch.export.save(corpus.CORPUS["mutation_model"](), str(path))
    return path


def crafted(source: Path, folder: Path) -> tuple[Path, Path]:
    """(the crafted archive, the marker its payload creates when unpickled)."""
    marker = folder / "payload-ran"
    trapped = booby_trapped(source, folder / "trapped.pt2", marker)
    target = rewrite(trapped, folder / "crafted.pt2", with_schema_version(99))
    with zipfile.ZipFile(target) as archive:  # the trap survived the rewrite
        assert any(b"payload-ran" in archive.read(n) for n in archive.namelist())
    return target, marker


def once(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "etviz_lsp", "--once", *args],
        capture_output=True, text=True, timeout=300, cwd=cwd,
    )


def test_naming_a_crafted_pt2_never_runs_its_payload(mutation_pt2: Path, tmp_path: Path) -> None:
    source, marker = crafted(mutation_pt2, tmp_path)
    out = tmp_path / "graph.json"
    done = once(str(source), "-o", str(out), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(source) in lines[0] and "schema version 99.0" in lines[0]
    assert "unpickles" in lines[0] and "--allow-pickle" in lines[0], lines[0]
    assert not marker.exists(), "the payload ran without the opt-in"
    assert not out.exists()


def test_allow_pickle_really_reaches_torch_export_load(
    mutation_pt2: Path, tmp_path: Path
) -> None:
    """Control for the test above: with the opt-in the same file is unpickled (the payload
    runs), so the refusal above is the opt-in's doing, not a file that cannot run."""
    source, marker = crafted(mutation_pt2, tmp_path)
    done = once(str(source), "-o", str(tmp_path / "graph.json"), "--allow-pickle", cwd=tmp_path)
    assert marker.exists(), done.stderr
    # torch.export.load still refuses schema 99 after unpickling: told in one line
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "torch.export.load failed" in lines[0], done.stderr


def test_allow_pickle_leaves_readable_archives_on_the_direct_reader(
    mutation_pt2: Path, tmp_path: Path
) -> None:
    """The opt-in only matters once the direct reader could not read the file: a readable
    archive with a pickled weight still never gets unpickled."""
    marker = tmp_path / "payload-ran"
    source = booby_trapped(mutation_pt2, tmp_path / "trapped.pt2", marker)
    out = tmp_path / "graph.json"
    done = once(str(source), "-o", str(out), "--allow-pickle", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    assert json.loads(out.read_text())["graphs"]


async def test_a_trusted_workspace_without_the_setting_refuses_to_unpickle(
    mutation_pt2: Path, tmp_path: Path
) -> None:
    async with lsp_session(tmp_path, trusted=True) as session:
        source, marker = crafted(mutation_pt2, session.root / "workspace")
        with pytest.raises(JsonRpcException) as caught:
            await session.visualize(source)
        message = str(caught.value)
        assert "\n" not in message and source.name in message, message
        assert "unpickles" in message and "etviz.allowPickle" in message, message
        assert not marker.exists(), "a trusted workspace unpickled without etviz.allowPickle"
        assert await session.close() == []


async def test_the_editor_setting_reaches_torch_export_load(
    mutation_pt2: Path, tmp_path: Path
) -> None:
    """Control for the test above: ``allowPickle`` in initializationOptions does unpickle."""
    async with lsp_session(tmp_path, trusted=True, allowPickle=True) as session:
        source, marker = crafted(mutation_pt2, session.root / "workspace")
        with pytest.raises(JsonRpcException, match="torch.export.load failed"):
            await session.visualize(source)
        assert marker.exists()
        assert await session.close() == []
