"""Which frames are the user's own code, and what name the user gave a call's result.

The user's files are the Python files in the script's folder tree, minus installed packages
(a virtual environment inside the project is not the user's code) and the interpreter's own
library. Errors and captured programs are reported at the deepest such frame, so a failure
inside torch points at the user's line that called into torch.
"""

from __future__ import annotations

import ast
import os
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import FrameType, TracebackType

from etviz_lsp.graph.source import is_user_file


@dataclass(frozen=True, slots=True)
class Site:
    file: str
    line: int
    column: int | None = None

    @property
    def short(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"


class UserCode:
    def __init__(self, script: Path) -> None:
        self.script = script.resolve()
        self.root = str(self.script.parent).rstrip(os.sep) + os.sep

    def owns(self, file: str) -> bool:
        if not file or file.startswith("<"):
            return False
        if file == str(self.script):
            return True
        path = os.path.abspath(file)
        return path.startswith(self.root) and is_user_file(path)

    def calls_from_user(self, frame: FrameType) -> bool:
        """Whether ``frame`` is code the user wrote (anywhere), not a library's internals.

        prepare_pt2e, for one, exports small pattern graphs internally: not the user's call.
        """
        file = frame.f_code.co_filename
        return self.owns(file) or is_user_file(file)

    def caller_site(self, frame: FrameType | None) -> Site | None:
        """The deepest user frame on the stack from ``frame`` outwards."""
        first: Site | None = None
        while frame is not None:
            file = frame.f_code.co_filename
            if self.owns(file):
                return Site(file, frame.f_lineno)
            if first is None:
                first = Site(file, frame.f_lineno)
            frame = frame.f_back
        return first

    def failure_site(self, tb: TracebackType | None) -> Site | None:
        """The deepest user frame of a traceback (where the user's code called the failure)."""
        found: Site | None = None
        for summary in traceback.extract_tb(tb):
            if self.owns(summary.filename) and summary.lineno:
                column = getattr(summary, "colno", None)
                found = Site(summary.filename, summary.lineno, column + 1 if column else None)
        return found


def assigned_name(file: str, line: int) -> str | None:
    """``ep`` for ``ep = torch.export.export(...)`` on (or starting at) ``line``."""
    return _assignments(file).get(line)


@lru_cache(maxsize=64)
def _assignments(file: str) -> dict[int, str]:
    try:
        tree = ast.parse(Path(file).read_bytes(), filename=file)
    except (OSError, SyntaxError, ValueError):
        return {}
    names: dict[int, str] = {}
    for node in ast.walk(tree):
        target = _single_target(node)
        value = getattr(node, "value", None)
        if target is None or value is None:
            continue
        for call in ast.walk(value):
            if isinstance(call, ast.Call):
                names.setdefault(call.lineno, target)
    return names


def _single_target(node: ast.AST) -> str | None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        target = node.target
    else:
        return None
    try:
        return ast.unparse(target) if isinstance(target, (ast.Name, ast.Attribute)) else None
    except (ValueError, AttributeError):
        return None
