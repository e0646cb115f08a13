"""``etviz-lsp --once`` run options through the real CLI: ``-m``, arguments after ``--``,
``--cwd``, ``--env``; progress on a real pseudo-terminal; a run that only wrote files."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_worker_targets import make_package

SCRIPTS = Path(__file__).parent / "scripts"


def cli(cwd: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "cache")}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "etviz_lsp", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kw,
    )


def test_module_with_args_cwd_and_env_from_elsewhere(tmp_path: Path):
    project = make_package(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli(elsewhere, "--once", "-m", "pkg.export", "--cwd", str(project),
               "--env", "ETVIZ_TEST_VALUE=a=b", "--", "--width", "5")
    assert done.returncode == 0, done.stderr
    # default output: the run's folder's .etviz/, named after the module
    graphs = json.loads((project / ".etviz" / "pkg.export.json").read_text())["graphs"]
    assert [g["id"] for g in graphs] == ["ep @ export.py:10 (exported)"]
    seen = json.loads((project / "seen.json").read_text())
    assert seen["argv"] == [str(project / "pkg" / "export.py"), "--width", "5"]
    assert (seen["cwd"], seen["env"], seen["package"]) == (str(project), "a=b", "pkg")
    assert "ep @ export.py:10 (exported): 2 operator calls" in done.stdout


def test_a_run_that_only_wrote_files_names_them(tmp_path: Path):
    script = tmp_path / "writes_pte.py"
    script.write_text(
        "import torch\n"
        "with open('model.pte', 'wb') as f:\n"
        "    f.write(b'not a real program')\n"
    )
    done = cli(tmp_path, "--once", str(script), "-o", str(tmp_path / "out.json"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("etviz-lsp: error")]
    assert errors == [
        "etviz-lsp: error: writes_pte.py: the script ran to its end and wrote model.pte, but "
        "made no program etviz could capture; call torch.export.export / to_edge / "
        "to_edge_transform_and_lower, or keep an ExportedProgram in a global variable "
        "(a .pt2 it wrote can be opened directly)"
    ]
    assert not (tmp_path / "out.json").exists()


def test_progress_on_a_terminal_is_one_updating_line(tmp_path: Path):
    """stderr is a real pseudo-terminal: the line is redrawn in place, then cleared."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "etviz_lsp", "--once", str(SCRIPTS / "to_edge.py"),
         "-o", str(tmp_path / "out.json")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=secondary, text=True,
    )
    os.close(secondary)
    screen = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None or time.monotonic() - started > 300:
            break
    os.close(primary)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, screen.decode(errors="replace")
    text = screen.decode()
    assert "\n" not in text.replace("\r\n", "\n").strip("\n"), "one line only, redrawn"
    redraws = text.split("\r\x1b[K")
    assert len(redraws) > 3
    shown = [part for part in redraws if part]
    assert any(p.startswith("etviz: to_edge.py: exporting (") for p in shown), shown
    assert any(p.startswith("etviz: to_edge.py: lowering (") for p in shown), shown
    assert text.endswith("\r\x1b[K"), "the line is cleared when the run ends"
    assert "wrote " in stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--once", "x.py", "-m", "pkg.mod"], "x.py: give a FILE or -m MODULE, not both"),
        (["--once"], "--once: expected a FILE or -m MODULE"),
        (["--once", "m.pt2", "--", "a"], "m.pt2: arguments, --cwd and --env are for a script"),
        (["-m", "pkg.mod", "--env", "NOVALUE"], "NOVALUE: expected KEY=VALUE for --env"),
        (["-m", "not a module"], "not a module: not a module name"),
    ],
)
def test_bad_run_options_are_one_line(tmp_path: Path, args: list[str], error: str):
    done = cli(tmp_path, *args)
    assert done.returncode == 1
    assert done.stderr.strip().startswith(f"etviz-lsp: error: {error}"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
