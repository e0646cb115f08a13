"""torch / ExecuTorch are the user's: what an interpreter lacks is one line naming it.

Real interpreters: this venv (which has everything), and bare venvs of the same Python
holding a stand-in distribution (a package and its ``.dist-info``, as pip would leave it)
of an old torch or ExecuTorch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from etviz_lsp import run_requirements
from etviz_lsp.run_requirements import EXECUTORCH, TORCH, Requirement
from etviz_lsp.worker import ScriptFailed, WarmWorker
from tests.conftest import REPO_ROOT

SCRIPTS = Path(__file__).parent / "scripts"


def bare_venv(where: Path, *installed: tuple[str, str]) -> str:
    """A venv of this Python with nothing but stand-ins ``(name, version)``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    site = next(where.glob("lib/python3*/site-packages"))
    for name, version in installed:
        (site / name).mkdir()
        (site / name / "__init__.py").write_text("")
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return str(where / "bin" / "python")


def test_this_interpreter_has_what_runs_and_the_server_need():
    report = run_requirements.report()
    assert report["python"] == sys.executable
    assert report["missing"] == [] and report["message"] is None
    assert run_requirements.for_runs() is None


def test_missing_and_too_old_are_named_with_the_interpreter():
    absent = Requirement("etviz_no_such_module", "etviz-no-such", (1, 0), "does a thing")
    old = Requirement("msgspec", "msgspec", (99, 0), "decodes")
    found = [run_requirements.find(absent), run_requirements.find(old)]
    version = found[1].version
    assert version  # msgspec is installed here, with its metadata
    assert run_requirements.problems_line(found, "/envs/x/bin/python") == (
        "/envs/x/bin/python: etviz-no-such is not installed (does a thing; needs >= 1.0); "
        f"msgspec {version} is too old (decodes; needs >= 99.0)"
    )


def test_local_version_labels_and_dev_builds_compare_by_their_numbers():
    def found(version: str) -> run_requirements.Found:
        return run_requirements.Found(TORCH, version)

    assert found("2.13.0+cpu").ok and found("2.10.0.dev20250101").ok and found("3.0").ok
    assert found("2.9.1+cu121").too_old and found("2.9").too_old
    assert found("").ok  # a source tree without metadata: present, version unknown


def test_export_extra_asks_for_the_same_minimums():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extra = sorted(project["optional-dependencies"]["export"])
    wanted = sorted(f"{r.distribution}>={'.'.join(map(str, r.minimum))}"
                    for r in (TORCH, EXECUTORCH))
    assert extra == wanted
    # and neither is a plain dependency: installing etviz never touches the user's torch
    assert not [d for d in project["dependencies"] if d.startswith(("torch", "executorch"))]


def test_worker_refuses_an_old_torch_in_one_line(tmp_path: Path):
    python = bare_venv(tmp_path / "old", ("torch", "2.9.0"))
    worker = WarmWorker(python=python, log_dir=tmp_path / "logs", warm_up=False, preload=False)
    with worker, pytest.raises(ScriptFailed) as caught:
        worker.run(SCRIPTS / "two_models.py", tmp_path / "o.json", timeout=60)
    assert caught.value.error.message == (
        f"{python}: torch 2.9.0 is too old (runs export scripts; needs >= 2.10)"
    )


def test_worker_refuses_an_old_executorch_but_runs_without_one(tmp_path: Path):
    python = bare_venv(tmp_path / "old", ("torch", "2.13.0"), ("executorch", "1.4.0"))
    assert run_requirements_of(python)["message"] == (
        f"{python}: executorch 1.4.0 is too old (lowers and makes .pte programs; needs "
        ">= 1.5); ai-edge-model-explorer is not installed (shows the graphs; "
        "needs >= 0.1.30)"
    )
    worker = WarmWorker(python=python, log_dir=tmp_path / "logs", warm_up=False, preload=False)
    with worker, pytest.raises(ScriptFailed) as caught:
        worker.run(SCRIPTS / "two_models.py", tmp_path / "o.json", timeout=60)
    assert caught.value.error.message == (
        f"{python}: executorch 1.4.0 is too old (lowers and makes .pte programs; needs >= 1.5)"
    )
    # without ExecuTorch the stand-in torch passes the check; a lean (CLI) worker imports
    # torch only when the script does, so the script fails at its own line
    python = bare_venv(tmp_path / "torch_only", ("torch", "2.13.0"))
    worker = WarmWorker(python=python, log_dir=tmp_path / "logs", warm_up=False, preload=False)
    with worker, pytest.raises(ScriptFailed) as caught:
        worker.run(SCRIPTS / "two_models.py", tmp_path / "o.json", timeout=60)
    assert caught.value.error.file.endswith("two_models.py")
    assert "module 'torch' has no attribute" in caught.value.error.message


def run_requirements_of(python: str) -> dict[str, object]:
    """The report as another interpreter makes it (this checkout's module, by path)."""
    code = ("import importlib.util, json, sys; spec = importlib.util.spec_from_file_location("
            "'rr', sys.argv[1]); m = importlib.util.module_from_spec(spec); "
            "sys.modules['rr'] = m; spec.loader.exec_module(m); print(json.dumps(m.report()))")
    module = REPO_ROOT / "etviz_lsp" / "run_requirements.py"
    done = subprocess.run([python, "-c", code, str(module)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)
