"""The language server the VS Code extension carries (issue 27, item 1).

``scripts/bundle_server.py`` fetches the server's libraries from PyPI (for this Python only,
to keep the test short) beside a copy of this checkout's ``etviz_lsp``; the extension runs
``bundled/launch.py`` with the user's interpreter. Checked here with real interpreters: a
venv with nothing installed starts the server and answers ``initialize``; ``--check`` names
what it lacks; an old ``etviz_lsp`` and a broken ``pygls`` earlier on the user's path are
never imported; the worker borrows msgspec and psutil only when the user's interpreter has
none, and still ends what a run left behind there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import etviz_lsp
from tests.conftest import REPO_ROOT

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("extension") / "bundled"
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "bundle_server.py"),
                    "--target", "linux-x64", "--pythons", PYTHON_VERSION, "--out", str(out)],
                   check=True, capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """This Python in a venv with nothing installed: no pygls, msgspec, torch or etviz."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return str(venv / "bin" / "python")


def user_env(**extra: str) -> dict[str, str]:
    """The editor's environment: no PYTHONPATH pointing at this checkout (the suite's)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return env | extra


def test_launcher_check_names_the_interpreter_and_what_it_lacks(bundled: Path, bare_python: str):
    done = subprocess.run([bare_python, str(bundled / "launch.py"), "--check"],
                          capture_output=True, text=True, env=user_env(), check=True)
    report = json.loads(done.stdout)
    assert report["python"] == bare_python and report["server"] == etviz_lsp.__version__
    assert report["missing"] == ["torch", "executorch", "model_explorer"]
    assert report["message"].startswith(f"{bare_python}: torch is not installed (")
    assert "ai-edge-model-explorer is not installed (shows the graphs" in report["message"]


def test_server_starts_in_a_python_with_nothing_installed(bundled: Path, bare_python: str):
    answer, stderr = initialize([bare_python, str(bundled / "launch.py"), "--stdio"], user_env(),
                                {"extensionVersion": etviz_lsp.__version__})
    assert answer["serverInfo"] == {"name": "etviz-lsp", "version": etviz_lsp.__version__}
    # what the extension's version check reads (issue 27, item 3): the bundled code answered
    assert answer["capabilities"]["experimental"]["etviz"]["server"] == {
        "version": etviz_lsp.__version__, "location": str(bundled / "tool" / "etviz_lsp")}
    assert "different builds" not in stderr
    assert "etviz.server.visualize" in answer["capabilities"]["executeCommandProvider"]["commands"]


def test_versions_earlier_on_the_users_path_do_not_leak_in(bundled: Path, tmp_path: Path):
    """This venv has its own pygls and etviz_lsp; PYTHONPATH adds an old etviz_lsp and a
    pygls that cannot be imported: the server is still the bundled one."""
    shadows = tmp_path / "user-site"
    for name, why in (("etviz_lsp", "an old etviz_lsp"), ("pygls", "the user's pygls")):
        (shadows / name).mkdir(parents=True)
        (shadows / name / "__init__.py").write_text(f"raise ImportError('{why} was imported')\n")
    env = user_env(PYTHONPATH=str(shadows))
    launcher = str(bundled / "launch.py")
    answer, stderr = initialize([sys.executable, launcher, "--stdio"], env)
    assert answer["serverInfo"]["version"] == etviz_lsp.__version__, stderr


def test_worker_borrows_msgspec_and_psutil_only_where_the_interpreter_has_none(
    bundled: Path, bare_python: str
):
    lent = [bundled / "libs" / name for name in ("msgspec", "psutil")]
    code = (
        "import importlib.util, os, sys\n"
        "spec = importlib.util.spec_from_file_location('lent', sys.argv[1])\n"
        "lent = importlib.util.module_from_spec(spec); spec.loader.exec_module(lent)\n"
        "lent.borrow(['3', '--lean', '--lend', sys.argv[2], '--lend', sys.argv[3]])\n"
        "import msgspec, psutil\n"
        "print(msgspec.__file__, psutil.__file__, msgspec.json.encode({'ok': [1, 2]}).decode(),"
        " psutil.Process().ppid() == os.getppid())\n"
    )
    module = str(REPO_ROOT / "etviz_lsp" / "worker" / "lent_libraries.py")
    for python, lender in ((bare_python, True), (sys.executable, False)):
        done = subprocess.run([python, "-c", code, module, *map(str, lent)], capture_output=True,
                              text=True, env=user_env(), check=True)
        msgspec_file, psutil_file, encoded, works = done.stdout.split()
        assert encoded == '{"ok":[1,2]}' and works == "True"
        homes = [Path(msgspec_file).parent, Path(psutil_file).parent]
        if lender:  # none of its own: the bundle's copies
            assert homes == lent
        else:  # its own copies win
            assert not set(homes) & set(lent)


def test_a_worker_in_a_user_env_without_psutil_still_ends_what_a_run_left(
    tmp_path: Path,
) -> None:
    """A real run in an interpreter with torch but neither psutil nor msgspec: the worker
    borrows both from the caller, and a process the script started outside its group
    (found only as a descendant, through psutil) is gone when the run ends."""
    python = _user_env_without(tmp_path, ("psutil", "msgspec"))
    script = tmp_path / "project" / "leaves_a_daemon.py"  # the user's tree: not the venv's
    script.parent.mkdir()
    script.write_text(
        "import subprocess, sys, torch\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],\n"
        "                         start_new_session=True)\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
        "class M(torch.nn.Module):\n"
        "    def forward(self, x): return x.relu()\n"
        "ep = torch.export.export(M(), (torch.ones(2),))\n"
    )
    pid_file = tmp_path / "daemon.pid"
    caller = (
        "import sys\n"
        "from pathlib import Path\n"
        "from etviz_lsp.worker import RunTarget, WarmWorker\n"
        "with WarmWorker(python=sys.argv[1], log_dir=Path(sys.argv[2]), warm_up=False,"
        " preload=False) as worker:\n"
        "    target = RunTarget(script=Path(sys.argv[3]), args=(sys.argv[4],))\n"
        "    result = worker.run(target, Path(sys.argv[5]), timeout=300)\n"
        "    print(len(result.graphs))\n"
    )
    # the caller is the language server: this checkout, with psutil and msgspec
    env = user_env(PYTHONPATH=os.pathsep.join((str(REPO_ROOT), str(tmp_path / "user-site"))))
    done = subprocess.run(
        [sys.executable, "-c", caller, python, str(tmp_path / "logs"), str(script),
         str(pid_file), str(tmp_path / "out.json")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["1"]
    import psutil

    daemon = int(pid_file.read_text())
    assert not psutil.pid_exists(daemon) or psutil.Process(daemon).status() == "zombie"


def _user_env_without(tmp_path: Path, hidden: tuple[str, ...]) -> str:
    """A venv of this Python whose packages are this one's (torch, ExecuTorch) except
    ``hidden``: each site-packages entry linked into a folder that is put on PYTHONPATH."""
    import sysconfig

    venv = tmp_path / "user-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = tmp_path / "user-site"
    site.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.split("-")[0].split(".")[0].lower()
        if name in hidden or entry.suffix == ".pth" or name.startswith(("etviz", "__editable")):
            continue
        (site / entry.name).symlink_to(entry)
    return str(venv / "bin" / "python")


def initialize(
    command: list[str], env: dict[str, str], options: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """``initialize``, ``shutdown``, ``exit`` over stdio; the answer and the server's stderr."""
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"processId": None, "rootUri": None, "capabilities": {},
                    "initializationOptions": options or {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
        {"jsonrpc": "2.0", "method": "exit"},
    ]
    request = b"".join(
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in (json.dumps(m).encode() for m in messages)
    )
    done = subprocess.run(command, input=request, capture_output=True, env=env, timeout=120,
                          check=False)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr[-3000:]
    for answer in _bodies(done.stdout):
        if answer.get("id") == 1:
            return answer["result"], stderr
    raise AssertionError(f"no initialize answer: {done.stdout[:500]!r} {stderr[-2000:]}")


def _bodies(stream: bytes) -> list[dict[str, Any]]:
    found = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        found.append(json.loads(rest[:length]))
        stream = rest[length:]
    return found


def test_another_build_imported_first_says_what_and_where_it_is(bundled: Path, tmp_path: Path):
    """The one way past the launcher: a ``sitecustomize`` of the user's environment that
    imports an older etviz_lsp before the launcher runs. That server answers with its own
    version and location (which the extension compares with its own, version_check.ts),
    and logs that the extension is another build."""
    old = tmp_path / "site"
    shutil.copytree(bundled / "tool" / "etviz_lsp", old / "etviz_lsp")
    init = old / "etviz_lsp" / "__init__.py"
    init.write_text(init.read_text().replace(
        f'__version__ = "{etviz_lsp.__version__}"', '__version__ = "0.0.9"'))
    (old / "sitecustomize.py").write_text("import etviz_lsp\n")
    answer, stderr = initialize(
        [sys.executable, str(bundled / "launch.py"), "--stdio"], user_env(PYTHONPATH=str(old)),
        {"extensionVersion": etviz_lsp.__version__},
    )
    assert answer["serverInfo"]["version"] == "0.0.9"
    assert answer["capabilities"]["experimental"]["etviz"]["server"]["location"] == str(
        old / "etviz_lsp")
    assert (f"etviz-lsp 0.0.9 (imported from {old / 'etviz_lsp'}) was started by the etviz "
            f"extension {etviz_lsp.__version__}: they belong to different builds") in stderr


# What each target's compiled parts are named there (msgspec per CPython, psutil abi3,
# watchdog's FSEvents on macOS):
# a bundle fetched for another system must hold that system's builds, never this one's.
_BUILDS = {
    "win32-x64": (f"_core.cp{PYTHON_VERSION.replace('.', '')}-win_amd64.pyd",
                  "_psutil_windows.pyd"),
    "darwin-arm64": (f"_core.cpython-{PYTHON_VERSION.replace('.', '')}-darwin.so",
                     "_psutil_osx.abi3.so",
                     f"_watchdog_fsevents.cpython-{PYTHON_VERSION.replace('.', '')}-darwin.so"),
}


@pytest.mark.parametrize("target", sorted(_BUILDS))
def test_a_bundle_for_windows_or_macos_holds_that_systems_builds(target: str, tmp_path: Path):
    """``make vsix VSIX_TARGET=win32-x64`` (or darwin-*): its libs are fetched for that
    system (wheel tag and markers: ``os_name`` "nt" on Windows); built here, not run there."""
    out = tmp_path / "bundled"
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "bundle_server.py"),
                    "--target", target, "--pythons", PYTHON_VERSION, "--out", str(out)],
                   check=True, capture_output=True, timeout=600)
    compiled = sorted(p.name for p in (out / "libs").rglob("*") if p.suffix in (".so", ".pyd"))
    assert compiled == sorted(_BUILDS[target])
    for name in ("pygls", "lsprotocol", "watchdog", "platformdirs"):
        assert (out / "libs" / name / "__init__.py").is_file(), name
    assert (out / "tool" / "etviz_lsp" / "worker" / "handoff.py").is_file()
    assert (out / "launch.py").is_file()
