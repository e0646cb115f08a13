"""The wheel installs anywhere without touching the user's torch (issue 27, item 2).

``python -m build`` makes a wheel and an sdist from a copy of this checkout's sources; the
wheel goes into a fresh venv that sees torch and ExecuTorch (this venv's, through a
``.pth`` to its site-packages, the cheapest stand-in for a user's environment that has
them) but not this checkout; there ``etviz-lsp --once`` reads a ``.pt2`` and runs an
export script. pip runs offline (``--no-index``): had the wheel required anything the
environment lacks (a torch of another version, a CUDA build), it would fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import torch

import etviz_lsp
from tests.conftest import REPO_ROOT
from tests.corpus import nested_convnet

SCRIPTS = Path(__file__).parent / "scripts"
SOURCES = ("pyproject.toml", "MANIFEST.in", "README.md", "ARCHITECTURE.md", "LICENSE")


def clean_env(tmp: Path) -> dict[str, str]:
    """No PYTHONPATH (the suite's points at this checkout), caches under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return env | {"XDG_CACHE_HOME": str(tmp / "cache"), "XDG_STATE_HOME": str(tmp / "state")}


def run(command: list[str], tmp: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, env=clean_env(tmp),
                          timeout=600, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wheel + sdist by ``python -m build`` from a copy of the sources (the checkout stays
    clean); no isolation: this venv's setuptools, offline."""
    tmp = tmp_path_factory.mktemp("build")
    source = tmp / "src"
    shutil.copytree(REPO_ROOT / "etviz_lsp", source / "etviz_lsp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in SOURCES:
        shutil.copy2(REPO_ROOT / name, source / name)
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp / "dist"),
         str(source)], tmp)
    return tmp / "dist"


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv that sees this venv's torch / ExecuTorch, with the wheel installed."""
    tmp = tmp_path_factory.mktemp("venv")
    env = tmp / "env"
    run([sys.executable, "-m", "venv", "--without-pip", str(env)], tmp)
    site = next(env.glob("lib/python3*/site-packages"))
    # Paths in a .pth are added after the venv's own site-packages; the .pth files in the
    # added folder are not run, so this venv's editable etviz_lsp finder stays out.
    (site / "user_torch_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("etviz_lsp-*.whl"))
    pip = [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install",
           "--no-index", "--no-cache-dir", "--disable-pip-version-check"]
    # even the standalone extra finds its torch / ExecuTorch already there: only etviz comes
    plan = run([*pip, "--dry-run", f"{wheel}[export]"], tmp).stdout.splitlines()
    assert [line for line in plan if line.startswith("Would install")] == [
        f"Would install etviz-lsp-{etviz_lsp.__version__}"]
    run([*pip, str(wheel)], tmp)
    return env


def test_build_makes_a_wheel_and_an_sdist_with_complete_metadata(dist: Path):
    wheel = next(dist.glob("etviz_lsp-*-py3-none-any.whl"))
    assert (dist / f"etviz_lsp-{etviz_lsp.__version__}.tar.gz").is_file()
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"etviz_lsp-{etviz_lsp.__version__}.dist-info"
        metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert metadata["Version"] == etviz_lsp.__version__
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert f"{info}/licenses/LICENSE" in names and "etviz_lsp/py.typed" in names
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or [])
    assert "etviz-lsp = etviz_lsp.cli:run" in entry_points
    assert not [n for n in names if not n.startswith(("etviz_lsp/", info))]  # no tests, no docs
    requires = metadata.get_all("Requires-Dist") or []
    plain = [r for r in requires if "extra ==" not in r]
    assert sorted(r.split("<")[0].split(">")[0] for r in plain) == [
        "ai-edge-model-explorer", "msgspec", "platformdirs", "psutil", "pygls", "watchdog"]
    assert 'torch>=2.10; extra == "export"' in requires


def test_installed_wheel_reads_a_pt2_and_runs_a_script(venv: Path, tmp_path: Path):
    python, command = venv / "bin" / "python", venv / "bin" / "etviz-lsp"
    # what runs is the wheel's copy, beside torch 2.13 CPU, which pip left alone
    where = run([str(python), "-c", "import etviz_lsp, torch; "
                 "print(etviz_lsp.__file__); print(torch.__version__)"], tmp_path, cwd=tmp_path)
    package, torch_version = where.stdout.split()
    assert Path(package).is_relative_to(venv) and torch_version == torch.__version__
    installed = {p.name for p in next(venv.glob("lib/python3*/site-packages")).iterdir()}
    assert installed == {  # pip installed the wheel and nothing else
        "etviz_lsp", f"etviz_lsp-{etviz_lsp.__version__}.dist-info", "user_torch_env.pth"}

    pt2 = tmp_path / "convnet.pt2"
    torch.export.save(nested_convnet(), str(pt2))
    run([str(command), "--once", str(pt2), "-o", str(tmp_path / "pt2.json")], tmp_path,
        cwd=tmp_path)
    graphs = json.loads((tmp_path / "pt2.json").read_text())["graphs"]
    assert [g["id"] for g in graphs] == ["convnet"] and len(graphs[0]["nodes"]) > 20

    script = shutil.copy(SCRIPTS / "to_edge.py", tmp_path / "to_edge.py")
    run([str(command), "--once", str(script), "-o", str(tmp_path / "script.json")], tmp_path,
        cwd=tmp_path)
    graphs = json.loads((tmp_path / "script.json").read_text())["graphs"]
    assert [g["id"] for g in graphs] == [
        "exported @ to_edge.py:5 (exported)", "edge @ to_edge.py:6 (edge)"]
