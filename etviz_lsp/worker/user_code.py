"""Which frames are the user's own code, and what name the user gave a call's result.

The user's files are the file run as ``__main__`` (a script, or a ``-m`` module even when it
is installed in site-packages) and the Python files in the run's folder tree (the script's
folder; the working folder for ``-m``), minus installed packages (a virtual environment
inside the project is not the user's code) and the interpreter's own library. Errors are
reported at the deepest such frame, so a failure inside torch points at the user's line
that called into torch; captured programs are named after it too.

Which calls are captured is not decided by folder but by the call chain
(:func:`inside_library_internals`): a library's quantizer exporting pattern graphs is not a
user program, an ExecuTorch builder exporting the user's model is.
"""

from __future__ import annotations

import ast
import os
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import FrameType, TracebackType

from etviz_lsp.graph.core.source import is_user_file


@dataclass(frozen=True, slots=True)
class Site:
    file: str
    line: int
    column: int | None = None

    @property
    def short(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"


# Library code whose own export calls make helper graphs, never a user's program:
# quantization traces small pattern graphs (torchao's prepare_pt2e exports each pattern).
_QUANTIZATION_PACKAGES = ("torchao.quantization", "torch.ao.quantization")


class UserCode:
    """``main_file`` runs as ``__main__``; ``root`` (default: its folder) is the user's tree."""

    def __init__(self, main_file: Path, root: Path | None = None) -> None:
        self.script = main_file.resolve()
        folder = root.resolve() if root is not None else self.script.parent
        self.root = str(folder).rstrip(os.sep) + os.sep

    def owns(self, file: str) -> bool:
        """The main file or a file of the user's tree (errors are reported there)."""
        if not file or file.startswith("<"):
            return False
        return file == str(self.script) or self.in_tree(file)

    def in_tree(self, file: str) -> bool:
        if not file or file.startswith("<"):
            return False
        path = os.path.abspath(file)
        return path.startswith(self.root) and is_user_file(path)

    def inside_library_internals(self, frame: FrameType | None) -> bool:
        """Whether the call chain from ``frame`` outwards passes through quantizer internals
        (torchao / torch.ao quantization, a backend's ``quantizer`` package).

        The user's own frames never count (a user module may well be called ``quantizer``).
        """
        while frame is not None:
            name = frame.f_globals.get("__name__")
            if (
                isinstance(name, str)
                and _is_quantization_module(name)
                and not self.owns(frame.f_code.co_filename)
            ):
                return True
            frame = frame.f_back
        return False

    def caller_site(self, frame: FrameType | None) -> Site | None:
        """The deepest frame of the user's tree from ``frame`` outwards, else ``frame``'s own
        (a library builder's line, say in ``LLMEdgeManager``: still a file one can open)."""
        first: Site | None = None
        while frame is not None:
            file = frame.f_code.co_filename
            if self.in_tree(file) or file == str(self.script) and is_user_file(file):
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


def _is_quantization_module(name: str) -> bool:
    if name.startswith(_QUANTIZATION_PACKAGES):
        return True
    return any(part.startswith("quantizer") for part in name.split("."))


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
