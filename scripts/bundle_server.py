"""The language server the VS Code extension carries: ``vscode-extension/bundled/``.

    python scripts/bundle_server.py --target linux-x64

writes ``bundled/tool/etviz_lsp`` (this checkout's package) and ``bundled/libs`` (what the
language server imports: pygls, lsprotocol, cattrs, attrs, msgspec, watchdog and their
own dependencies), for every CPython the launcher accepts, at the pins of
``requirements/constraints.txt``. ``bundled/launch.py`` (kept in git) puts them first on
the path of the user's interpreter.

Distributions are fetched with ``pip install --target --only-binary :all: --platform``
per Python version (wheels only: nothing is compiled, only PyPI is reached). pip evaluates
environment markers for the Python running it, not the one named by ``--python-version``,
so this script evaluates them itself: the constraints' markers before pip sees them, and
after each install the requirements pip left out (cattrs needs ``exceptiongroup`` on 3.10
only), which a second ``--no-deps`` pass adds. Then the stages are merged: each distribution
goes to ``libs/`` once, at the version most Pythons got (msgspec's compiled
``_core.cpython-3XY-*.so`` files differ by name, so all of them sit side by side in one
package; ``exceptiongroup``, for 3.10 only, is merely unused elsewhere); a Python that got
another version (watchdog 7 needs 3.11: 3.10 gets 6) finds it in ``libs/cp3XY/``, which the
launcher puts before ``libs/`` for that Python only.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "vscode-extension" / "bundled"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
# What `python -m etviz_lsp` imports in the language server (the worker and Model
# Explorer run in the user's interpreter with the user's torch; the worker borrows only
# msgspec and psutil from here, see etviz_lsp/worker/lent_libraries.py).
SERVER_REQUIREMENTS = ("pygls", "msgspec", "watchdog", "psutil", "platformdirs")
# The Pythons the launcher accepts; keep in step with launch.py's PYTHONS.
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")


@dataclass(frozen=True)
class Platform:
    wheel_tag: str  # what pip asks PyPI for (older tags of the same kind are accepted too)
    sys_platform: str
    machine: str
    system: str  # platform.system() there
    os_name: str = "posix"


# vsce's --target -> the platform's wheels and markers
PLATFORMS = {
    "linux-x64": Platform("manylinux2014_x86_64", "linux", "x86_64", "Linux"),
    "linux-arm64": Platform("manylinux2014_aarch64", "linux", "aarch64", "Linux"),
    "darwin-x64": Platform("macosx_11_0_x86_64", "darwin", "x86_64", "Darwin"),
    "darwin-arm64": Platform("macosx_11_0_arm64", "darwin", "arm64", "Darwin"),
    "win32-x64": Platform("win_amd64", "win32", "AMD64", "Windows", "nt"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(PLATFORMS), default="linux-x64")
    parser.add_argument("--out", type=Path, default=BUNDLED)
    parser.add_argument("--pythons", default=",".join(PYTHONS),
                        help="comma-separated CPython versions (default: all the launcher takes)")
    args = parser.parse_args(argv)
    platform, pythons = PLATFORMS[args.target], args.pythons.split(",")
    with tempfile.TemporaryDirectory(prefix="etviz-bundle-") as tmp:
        stages = {v: fetch(v, platform, Path(tmp) / v) for v in pythons}
        for generated in ("tool", "libs"):
            shutil.rmtree(args.out / generated, ignore_errors=True)
        merge(stages, args.out / "libs")
    shutil.copytree(ROOT / "etviz_lsp", args.out / "tool" / "etviz_lsp",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    launcher = args.out / "launch.py"
    if not launcher.exists():  # a bundle made elsewhere (a test's) gets the launcher too
        shutil.copy2(BUNDLED / "launch.py", launcher)
    print(f"bundled the server for {args.target} ({', '.join(pythons)}) in {args.out}")
    return 0


def fetch(python: str, platform: Platform, stage: Path) -> Path:
    """The server's requirements for one CPython on one platform, as pip installs them."""
    environment = marker_environment(python, platform)
    pins = stage.parent / f"constraints-{python}.txt"
    pins.write_text("".join(f"{r}\n" for r in pinned(CONSTRAINTS, environment)))
    pip = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--target", str(stage), "--python-version", python, "--implementation", "cp",
        "--platform", platform.wheel_tag, "--only-binary", ":all:", "--no-compile",
        "-c", str(pins),
    ]
    subprocess.run([*pip, *SERVER_REQUIREMENTS], check=True)
    while missing := left_out(stage, environment):
        subprocess.run([*pip, "--upgrade", "--no-deps", *missing], check=True)
    return stage


def marker_environment(python: str, platform: Platform) -> dict[str, str]:
    return {
        "python_version": python, "python_full_version": f"{python}.0",
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "sys_platform": platform.sys_platform, "platform_machine": platform.machine,
        "platform_system": platform.system, "os_name": platform.os_name,
        "extra": "",
    }


def pinned(constraints: Path, environment: dict[str, str]) -> list[Requirement]:
    """The constraints that apply to the target Python, markers dropped."""
    found = []
    for line in constraints.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirement.marker = None
            found.append(requirement)
    return found


def left_out(stage: Path, environment: dict[str, str]) -> list[str]:
    """Requirements of the installed distributions that the target Python needs and that
    pip skipped (it judged their markers by the Python running it)."""
    installed = {canonicalize_name(name_version(info)[0]) for info in stage.glob("*.dist-info")}
    missing = set()
    for info in stage.glob("*.dist-info"):
        metadata = Parser().parsestr((info / "METADATA").read_text())
        for text in metadata.get_all("Requires-Dist") or []:
            requirement = Requirement(text)
            needed = requirement.marker is None or requirement.marker.evaluate(environment)
            if needed and canonicalize_name(requirement.name) not in installed:
                requirement.marker = None
                missing.add(str(requirement))
    return sorted(missing)


def merge(stages: dict[str, Path], libs: Path) -> None:
    """One ``libs/`` with each distribution at the version most Pythons got, ``libs/cp3XY/``
    for a Python that got another version."""
    versions: dict[str, Counter[str]] = defaultdict(Counter)  # dist -> version -> Pythons
    for stage in stages.values():
        for info in stage.glob("*.dist-info"):
            name, version = name_version(info)
            versions[name][version] += 1
    for python, stage in stages.items():
        for info in stage.glob("*.dist-info"):
            name, version = name_version(info)
            common = versions[name].most_common(1)[0][0]
            into = libs if version == common else libs / f"cp{python.replace('.', '')}"
            for relative in installed_files(info):
                target = into / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(stage / relative, target)


def name_version(info: Path) -> tuple[str, str]:
    """``attrs-26.1.0.dist-info`` -> ("attrs", "26.1.0")."""
    name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
    return name, version


def installed_files(info: Path) -> list[str]:
    """The files a distribution put into the target folder (its RECORD), scripts left out."""
    rows = (line.split(",")[0] for line in (info / "RECORD").read_text().splitlines())
    return [row for row in rows if row and not row.startswith(("..", "bin/"))
            and "__pycache__" not in row]


if __name__ == "__main__":
    raise SystemExit(main())
