"""What the user's interpreter needs for etviz's work there, and one line saying what it lacks.

torch and ExecuTorch are the user's: etviz never installs or pins them (a wheel that
required them could downgrade a user's torch, or pull a CUDA build). It needs them only
in the interpreter that runs an export script; Model Explorer only where the graph server
starts. So they are checked where they are used (the worker at start, the editor
extension through its launcher's ``--check``), through installed metadata: no import, a
few milliseconds. Stdlib only: the extension's launcher runs this before anything else.

The minimum versions here and the ``export`` extra in ``pyproject.toml`` say the same
(a test compares them).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Requirement:
    module: str  # the import name
    distribution: str  # the name pip knows it by
    minimum: tuple[int, ...]
    needed_for: str


TORCH = Requirement("torch", "torch", (2, 10), "runs export scripts")
EXECUTORCH = Requirement("executorch", "executorch", (1, 5), "lowers and makes .pte programs")
MODEL_EXPLORER = Requirement(
    "model_explorer", "ai-edge-model-explorer", (0, 1, 30), "shows the graphs"
)
REQUIREMENTS = (TORCH, EXECUTORCH, MODEL_EXPLORER)


@dataclass(frozen=True, slots=True)
class Found:
    requirement: Requirement
    version: str | None  # None: not installed; "" installed without metadata (a source tree)

    @property
    def installed(self) -> bool:
        return self.version is not None

    @property
    def too_old(self) -> bool:
        return bool(self.version) and _numbers(self.version or "") < self.requirement.minimum

    @property
    def ok(self) -> bool:
        return self.installed and not self.too_old

    def problem(self) -> str | None:
        """``torch is not installed (runs export scripts; needs >= 2.10)``, or None."""
        req = self.requirement
        wanted = f"{req.needed_for}; needs >= {_dotted(req.minimum)}"
        if not self.installed:
            return f"{req.distribution} is not installed ({wanted})"
        if self.too_old:
            return f"{req.distribution} {self.version} is too old ({wanted})"
        return None


def find(requirement: Requirement) -> Found:
    """Whether this interpreter has it, and which version, without importing it."""
    try:
        if importlib.util.find_spec(requirement.module) is None:
            return Found(requirement, None)
    except (ImportError, ValueError):
        return Found(requirement, None)
    try:
        return Found(requirement, importlib.metadata.version(requirement.distribution))
    except importlib.metadata.PackageNotFoundError:
        return Found(requirement, "")


def problems_line(found: list[Found], python: str | None = None) -> str | None:
    """One line naming the interpreter and everything it lacks, or None when nothing."""
    problems = [p for p in (f.problem() for f in found) if p is not None]
    if not problems:
        return None
    return f"{python or sys.executable}: {'; '.join(problems)}"


def for_runs() -> str | None:
    """What stops an export script from running here (the worker's check at start): torch
    missing or too old, or an ExecuTorch too old for etviz's capture. ExecuTorch missing is
    no reason: a script that only calls ``torch.export`` runs without it."""
    torch, executorch = find(TORCH), find(EXECUTORCH)
    return problems_line([torch] + ([executorch] if executorch.too_old else []))


def report() -> dict[str, object]:
    """Everything the editor extension tells the user about this interpreter, as JSON."""
    found = [find(requirement) for requirement in REQUIREMENTS]
    return {
        "python": sys.executable,
        "version": _dotted(sys.version_info[:3]),
        "missing": [f.requirement.module for f in found if not f.ok],
        "message": problems_line(found),
    }


def _numbers(version: str) -> tuple[int, ...]:
    """``2.13.0+cpu`` -> (2, 13, 0); ``1.5.0.dev20250101`` -> (1, 5, 0)."""
    numbers = []
    for part in version.split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group()))
        if match.end() < len(part):
            break
    return tuple(numbers)


def _dotted(numbers: tuple[int, ...]) -> str:
    return ".".join(str(n) for n in numbers)
