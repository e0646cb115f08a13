"""Bad inputs on the command line: one line naming the file and the cause, exit code 1, no
traceback, the previous output untouched.

The tests run as root, for whom no file is unreadable and no folder read-only: the rows
about permissions run the real CLI as the unprivileged user ``nobody`` (``setpriv``).
Rows already proven elsewhere (missing file, random bytes, directory, missing output
folder: ``test_cli_once.py``; truncated archive: ``test_pt2_archive.py``) are not repeated.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests import corpus
from tests.conftest import PYTHON
from tests.test_pt2_archive import rewrite, with_schema_version

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
PREVIOUS = '{"label": "last good graph", "graphs": []}'


@pytest.fixture(scope="module")
def good_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "symint.pt2"
    torch.export.save(corpus.symint_model(), str(path))
    return path


def cli(*args: str, user: list[str] | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd or Path.cwd()), "HOME": "/nonexistent"}
    return subprocess.run(
        [*(user or []), PYTHON, "-m", "etviz_lsp", *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
    )


def one_line_error(done: subprocess.CompletedProcess[str], path: Path, cause: str) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    # no traceback, no warnings: one line besides a script run's progress lines
    lines = [line for line in done.stderr.strip().splitlines()
             if not line.startswith(f"etviz: {path.name}: ")]
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("etviz-lsp: error: "), line
    named = path.name if path.suffix == ".py" else str(path)  # script errors: file:line
    assert named in line and cause in line, line
    return line


def world_folder(tmp_path: Path, name: str, owner: int = 0, mode: int = 0o755) -> Path:
    """A folder ``nobody`` can reach (pytest's own temp folders are private to root)."""
    for parent in [tmp_path, *tmp_path.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o111)  # traverse only, nothing listed
    folder = tmp_path / name
    folder.mkdir()
    os.chown(folder, owner, owner)
    folder.chmod(mode)
    return folder


def zip_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def not_a_program(source: Path, target: Path) -> Path:
    """A real archive whose program JSON is a JSON object that is no program."""
    return rewrite(source, target, lambda n, d: b'{"hello": "world"}' if "/models/" in n else d)


AOTI = {
    "compiled/archive_format": b"pt2",
    "compiled/archive_version": b"0",
    "compiled/data/aotinductor/model/model.wrapper.so": b"\x7fELF",
}

CASES: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "empty-pt2": (lambda d, g: _write(d / "empty.pt2", b""), "not a .pt2 archive"),
    "zip-not-pt2": (
        lambda d, g: _write(d / "photos.pt2", zip_bytes({"photos/cat.jpg": b"\xff\xd8"})),
        "not a torch.export .pt2 archive",
    ),
    "aotinductor": (lambda d, g: _write(d / "aoti.pt2", zip_bytes(AOTI)), "AOTInductor package"),
    # Named on the command line means trusted: torch.export.load is tried, its refusal told.
    "unknown-schema": (
        lambda d, g: rewrite(g, d / "future.pt2", with_schema_version(99)),
        "torch.export.load failed",
    ),
    "json-in-pt2-not-a-program": (
        lambda d, g: not_a_program(g, d / "odd.pt2"), "torch.export.load failed"
    ),
    "json-not-a-graph": (
        lambda d, g: _write(d / "notes.json", b'{"todo": [1, 2]}'), "unsupported file type '.json'"
    ),
    "empty-script": (lambda d, g: _write(d / "empty.py", b""), "made no program"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_keeps_the_previous_output(
    case: str, good_pt2: Path, tmp_path: Path
) -> None:
    make, cause = CASES[case]
    source = make(tmp_path, good_pt2)
    out = tmp_path / "graph.json"
    out.write_text(PREVIOUS)
    one_line_error(cli("--once", str(source), "-o", str(out), cwd=tmp_path), source, cause)
    assert out.read_text() == PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("name", ["model.pt2", "export.py"])
def test_unreadable_input_as_an_unprivileged_user(
    name: str, good_pt2: Path, tmp_path: Path
) -> None:
    folder = world_folder(tmp_path, "work", owner=NOBODY)
    source = folder / name
    if name.endswith(".pt2"):
        shutil.copy(good_pt2, source)
    else:
        source.write_text("import torch\n")
    source.chmod(0o000)  # root may still read it; nobody may not
    out = folder / "graph.json"
    out.write_text(PREVIOUS)
    os.chown(out, NOBODY, NOBODY)
    done = cli("--once", str(source), "-o", str(out), user=AS_NOBODY, cwd=folder)
    one_line_error(done, source, "ermission denied")
    assert out.read_text() == PREVIOUS


def test_output_in_a_read_only_folder_as_an_unprivileged_user(
    good_pt2: Path, tmp_path: Path
) -> None:
    folder = world_folder(tmp_path, "work", owner=NOBODY)
    source = folder / "model.pt2"
    shutil.copy(good_pt2, source)
    source.chmod(0o644)
    read_only = world_folder(folder, "read-only", owner=NOBODY, mode=0o555)
    out = read_only / "graph.json"
    done = cli("--once", str(source), "-o", str(out), user=AS_NOBODY, cwd=folder)
    one_line_error(done, out, "ermission denied")
    assert list(read_only.iterdir()) == []
    # without -o the graph goes to .etviz/ beside the input: that folder cannot be made
    folder.chmod(0o555)
    done = cli("--once", str(source), user=AS_NOBODY, cwd=folder)
    one_line_error(done, folder / ".etviz", "cannot create output folder")


def test_the_unprivileged_user_really_lacks_the_permission(tmp_path: Path) -> None:
    """Control for the two tests above: ``nobody`` cannot read a mode-000 file."""
    folder = world_folder(tmp_path, "work", owner=NOBODY)
    secret = folder / "secret"
    secret.write_text("x")
    secret.chmod(0)
    done = subprocess.run([*AS_NOBODY, "cat", str(secret)], capture_output=True, text=True)
    assert done.returncode != 0 and "Permission denied" in done.stderr
    assert subprocess.run([*AS_NOBODY, "id", "-u"], capture_output=True, text=True
                          ).stdout.strip() == str(NOBODY)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
